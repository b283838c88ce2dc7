"""Create a merchant API key and print it (the only time the plain key is shown)."""

from django.core.management.base import BaseCommand, CommandError

from infra.errors import DomainError
from tickets.models import Merchant
from tickets.services import api_key_create


class Command(BaseCommand):
    help = "Crea una llave de API para un comercio e imprime la llave (solo se muestra esta vez)."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="Slug del comercio, p. ej. demo")
        parser.add_argument("--name", required=True, help="Nombre de la llave, p. ej. «POS tienda centro»")
        parser.add_argument("--scopes", default="tickets", help="Permisos separados por comas: tickets,invoices,webhooks")
        parser.add_argument("--branch", default="", help="Clave de la sucursal del punto de venta (opcional): sus "
                                                         "tickets sin sucursal se registran en ella")

    def handle(self, *args, **opts):
        merchant = Merchant.objects.filter(slug=opts["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No existe el comercio «{opts['merchant']}».")
        branch = None
        if opts["branch"]:
            branch = merchant.branches.filter(code=opts["branch"]).first()
            if branch is None:
                raise CommandError(f"El comercio «{merchant.slug}» no tiene la sucursal «{opts['branch']}».")
        try:
            key, plain = api_key_create(merchant=merchant, name=opts["name"], scopes=opts["scopes"].split(","),
                                        actor="api_key_create", branch=branch)
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.details}") from exc
        self.stderr.write(f"Llave «{key.name}» ({', '.join(key.scopes)}) para {merchant.slug}; guárdala ahora:")
        self.stdout.write(plain)
