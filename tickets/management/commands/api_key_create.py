"""Create a merchant API key and print it (the only time the plain key is shown)."""

from django.core.management.base import BaseCommand, CommandError

from tickets.errors import DomainError
from tickets.models import Merchant
from tickets.services import api_key_create


class Command(BaseCommand):
    help = "Crea una llave de API para un comercio e imprime la llave (solo se muestra esta vez)."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="Slug del comercio, p. ej. demo")
        parser.add_argument("--name", required=True, help="Nombre de la llave, p. ej. «POS tienda centro»")
        parser.add_argument("--scopes", default="tickets", help="Permisos separados por comas: tickets,invoices,webhooks")

    def handle(self, *args, **opts):
        merchant = Merchant.objects.filter(slug=opts["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No existe el comercio «{opts['merchant']}».")
        try:
            key, plain = api_key_create(merchant=merchant, name=opts["name"], scopes=opts["scopes"].split(","),
                                        actor="api_key_create")
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.details}") from exc
        self.stderr.write(f"Llave «{key.name}» ({', '.join(key.scopes)}) para {merchant.slug}; guárdala ahora:")
        self.stdout.write(plain)
