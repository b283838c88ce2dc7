"""Create the demo merchant, its branches, a CSD, ~50 tickets and an admin user. Safe to run twice."""

import datetime as dt
import random
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from invoicing.cfdi.csd import CsdError, read_certificate
from invoicing.cfdi.rfc import is_persona_moral
from invoicing.cfdi.samples import random_ticket
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.services.certificates import certificate_install
from tickets.models import Branch, Merchant, Ticket
from tickets.services import LineInput, demo_api_key, ticket_create

DEMO_RFC = "EKU9003173C9"
DEMO_NAME = "ESCUELA KEMPER URGATE"


def _line_input(line) -> LineInput:
    """An engine sample line (invoicing.cfdi.samples) as the ticket service takes it."""
    taxes = [{"tax": t.impuesto, "factor": t.factor, **({"rate": f"{t.rate:.6f}"} if t.rate is not None else {})}
             for t in line.taxes]
    return LineInput(product_code=line.clave_prod_serv, unit_code=line.clave_unidad, description=line.description,
                     quantity=line.quantity, unit_price=line.unit_price, taxes=taxes, discount=line.discount,
                     tax_object=line.objeto_imp)


class Command(BaseCommand):
    help = "Crea el comercio de demostración (sucursales, CSD, tickets y usuario administrador)."

    def add_arguments(self, parser):
        parser.add_argument("--cer", help="Archivo .cer de un CSD real (p. ej. el de pruebas del SAT)")
        parser.add_argument("--key", help="Archivo .key del CSD")
        parser.add_argument("--password", help="Contraseña de la llave del CSD")
        parser.add_argument("--tickets", type=int, default=50, help="Número de tickets a crear")
        parser.add_argument("--if-empty", action="store_true", help="Solo si no existe ningún comercio todavía")

    def handle(self, *args, **opts):
        if opts["if_empty"] and Merchant.objects.exists():
            self.stdout.write("La base de datos ya tiene datos; no se siembra la demostración.")
            self._print_credentials(self._admin_credentials())
            return
        csd = self._csd(opts)
        with transaction.atomic():
            merchant, branches = self._merchant(csd)
            self._certificate(merchant, csd)
            created = self._tickets(merchant, branches, opts["tickets"])
        credentials = self._admin_credentials()
        self.stdout.write(self.style.SUCCESS(
            f"Comercio de demostración «{merchant.legal_name}» ({merchant.rfc}), {created} tickets nuevos."
        ))
        self._print_credentials(credentials)

    def _csd(self, opts) -> tuple[bytes, bytes, str]:
        given = [opts["cer"], opts["key"], opts["password"]]
        if any(given) and not all(given):
            raise CommandError("Para usar un CSD propio da --cer, --key y --password juntos.")
        if all(given):
            try:
                return Path(opts["cer"]).read_bytes(), Path(opts["key"]).read_bytes(), opts["password"]
            except OSError as exc:
                raise CommandError(f"No se pudo leer el CSD: {exc}") from exc
        return generate_test_csd(DEMO_RFC, DEMO_NAME)

    def _merchant(self, csd):
        try:
            info = read_certificate(csd[0])
        except CsdError as exc:
            raise CommandError(str(exc)) from exc
        rfc, name = info.rfc, info.legal_name
        merchant, _ = Merchant.objects.get_or_create(
            slug="demo",
            defaults={
                "legal_name": name,
                "rfc": rfc,
                "tax_regime": "601" if is_persona_moral(rfc) else "612",
                "contact_email": "facturacion@demo.example",
                # What shoppers see: on the portal's pages, its error messages and the aviso de privacidad.
                "customer_email": "clientes@demo.example",
                "customer_phone": "55 1234 5678",
                "address": "Av. Reforma 100, Col. Juárez, Cuauhtémoc, 06600 Ciudad de México",
                "brand_color": "#0B5FFF",
            },
        )
        branches = []
        for code, branch_name, postal_code in (("CENTRO", "Sucursal Centro", "06600"),
                                               ("NORTE", "Sucursal Monterrey", "64000")):
            branch, _ = Branch.objects.get_or_create(
                merchant=merchant, code=code, defaults={"name": branch_name, "postal_code": postal_code}
            )
            branches.append(branch)
        return merchant, branches

    def _certificate(self, merchant, csd):
        if merchant.certificates.filter(is_active=True).exists():
            return
        cer_der, key_der, password = csd
        try:
            certificate_install(merchant=merchant, cer=cer_der, key=key_der, password=password, actor="seed_demo")
        except CsdError as exc:
            raise CommandError(f"CSD no válido: {exc}") from exc

    def _tickets(self, merchant, branches, count) -> int:
        rng = random.Random(20261122)  # same demo every time
        now = timezone.now()
        created = 0
        for i in range(1, count + 1):
            branch = branches[i % len(branches)]
            number = f"{branch.code[0]}{i:06d}"
            if Ticket.objects.filter(merchant=merchant, branch=branch, number=number).exists():
                continue
            # Spread over the last six weeks, during opening hours in the merchant's time zone.
            day = (now - dt.timedelta(days=rng.randint(0, 42))).astimezone(merchant.tzinfo)
            sold_at = day.replace(hour=rng.randint(9, 20), minute=rng.randint(0, 59), second=rng.randint(0, 59),
                                  microsecond=0)
            if sold_at > now:
                sold_at -= dt.timedelta(days=1)
            sample = random_ticket(rng, number, max_lines=4)
            ticket_create(merchant=merchant, branch=branch, number=number, sold_at=sold_at,
                          lines=[_line_input(line) for line in sample.lines], payment_form=sample.payment_form,
                          source=Ticket.Source.DEMO, actor="seed_demo")
            created += 1
        return created

    def _admin_credentials(self) -> tuple[str, str]:
        """The demo admin's password is random, kept under var/ so every run can print it again."""
        user_model = get_user_model()
        secret_file = Path(settings.VAR_DIR) / "demo-admin-password"
        user = user_model.objects.filter(username="admin").first()
        if user and secret_file.exists():
            return "admin", secret_file.read_text(encoding="utf-8").strip()
        password = secrets.token_urlsafe(9)
        if user is None:
            user = user_model.objects.create_superuser("admin", "admin@demo.example", password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        secret_file.write_text(password, encoding="utf-8")
        secret_file.chmod(0o600)
        return "admin", password

    def _staff(self, password: str) -> list[str]:
        """One person per role of the demo merchant (same password as the admin), to try the back office as each."""
        from infra.roles import Role
        from tickets.models import MerchantMembership

        merchant = Merchant.objects.order_by("pk").first()
        if merchant is None:
            return []
        user_model = get_user_model()
        names = []
        for username, role in (("dueno", Role.OWNER), ("contador", Role.ACCOUNTANT), ("cajero", Role.CASHIER)):
            user = user_model.objects.filter(username=username).first()
            if user is None:
                user = user_model.objects.create_user(username, f"{username}@demo.example", password, is_staff=True)
                MerchantMembership.objects.create(user=user, merchant=merchant, role=role)
            elif not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            names.append(f"«{username}» ({Role(role).label.lower()})")
        return names

    def _print_credentials(self, credentials):
        username, password = credentials
        self.stdout.write(f"Administración: usuario «{username}», contraseña «{password}»")
        staff = self._staff(password)
        if staff:
            self.stdout.write(f"Personal del comercio, misma contraseña: {', '.join(staff)}")
        api_key = demo_api_key()
        if api_key:
            self.stdout.write(f"API: encabezado «Authorization: Bearer {api_key}»")
