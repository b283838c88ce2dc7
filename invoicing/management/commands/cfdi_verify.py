"""python manage.py cfdi_verify FILE... [--sat-cert CER]...: XSD, Sello and SelloSAT of CFDI 4.0 files."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from invoicing.cfdi.verify import verify


class Command(BaseCommand):
    help = (
        "Verifica CFDI 4.0: esquema XSD, sello del emisor y, si se da el certificado del SAT/PAC, el SelloSAT. "
        "Sale con código 1 si algún archivo falla."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="archivos XML")
        parser.add_argument(
            "--sat-cert", action="append", default=[], help="certificado .cer del SAT que firmó el timbre (repetible)"
        )

    def handle(self, *args, **options):
        certs = []
        for name in options["sat_cert"]:
            try:
                certs.append(Path(name).read_bytes())
            except OSError as exc:
                raise CommandError(f"No se pudo leer el certificado {name}: {exc.strerror}") from exc
        failed = 0
        for name in options["files"]:
            try:
                data = Path(name).read_bytes()
            except OSError as exc:
                self.stdout.write(f"{name}: FALLA: no se pudo leer el archivo ({exc.strerror})")
                failed += 1
                continue
            result = verify(data, certs or None)
            self.stdout.write(f"{name}: {result.summary()}")
            failed += 0 if result.ok else 1
        if failed:
            raise SystemExit(1)
