"""python manage.py sandbox_pac_certificate --out FILE: write the sandbox PAC's certificate (.cer, DER).

With it, ``python manage.py cfdi_verify --sat-cert FILE stamped.xml`` checks the SelloSAT of sandbox stamps.
The certificate is created on first use and shared by every worker through the database.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from invoicing.pac.sandbox import sandbox_certificate_row


class Command(BaseCommand):
    help = "Escribe el certificado (.cer) del PAC sandbox para verificar sus timbres con cfdi_verify --sat-cert."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="archivo .cer de salida (DER)")

    def handle(self, *args, **options):
        row = sandbox_certificate_row()
        out = Path(options["out"])
        try:
            out.write_bytes(bytes(row.cer_der))
        except OSError as exc:
            raise CommandError(f"No se pudo escribir {out}: {exc.strerror}") from exc
        self.stdout.write(f"Certificado del PAC sandbox {row.number} escrito en {out} (sin validez fiscal).")
