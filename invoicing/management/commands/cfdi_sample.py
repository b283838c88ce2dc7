"""Write sealed (not stamped) CFDI 4.0 documents built from random but realistic tickets."""

import random
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from invoicing.cfdi.builder import build_egreso, build_global, build_ingreso
from invoicing.cfdi.csd import CsdError, load_csd
from invoicing.cfdi.errors import CfdiError, errors_only
from invoicing.cfdi.inputs import Emisor, GlobalInfo, Receptor, Related
from invoicing.cfdi.rfc import is_persona_moral
from invoicing.cfdi.samples import random_ticket
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.cfdi.validation import validate
from invoicing.cfdi.xml import to_bytes
from invoicing.cfdi.xsd import xsd_issues

LUGAR = "06600"
RECEPTOR = Receptor("CACX7605101P8", "XOCHILT CASAS CHAVEZ", "36257", "612", "G03")


class Command(BaseCommand):
    help = "Escribe CFDI 4.0 sellados (sin timbrar) a partir de tickets aleatorios pero realistas."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["ingreso", "global", "egreso"], default="ingreso")
        parser.add_argument("--count", type=int, default=10)
        parser.add_argument("--out", required=True, help="Carpeta donde escribir los XML")
        parser.add_argument("--cer", help="CSD .cer (por omisión, uno de prueba generado para EKU9003173C9)")
        parser.add_argument("--key", help="CSD .key")
        parser.add_argument("--password", help="Contraseña de la llave")
        parser.add_argument("--regimen", help="Régimen fiscal del emisor (por omisión 601 o 612 según el RFC)")
        parser.add_argument("--seed", type=int, help="Semilla, para repetir exactamente la misma muestra")

    def handle(self, *args, **o):
        if o["count"] < 1:
            raise CommandError("--count debe ser al menos 1.")
        csd = self._csd(o)
        emisor = Emisor(csd.rfc, csd.legal_name, o["regimen"] or ("601" if is_persona_moral(csd.rfc) else "612"))
        rng = random.Random(o["seed"])
        out = Path(o["out"])
        out.mkdir(parents=True, exist_ok=True)
        for i in range(1, o["count"] + 1):
            comprobante = self._build(o["kind"], i, rng, emisor)
            problems = errors_only(validate(comprobante, csd=csd))
            root = seal_document(comprobante, csd)
            problems += xsd_issues(root)
            if problems:  # the engine builds valid documents by construction: this is a bug to report
                raise CommandError(f"Documento {i} inválido: " + "; ".join(f"{p.code} {p.message}" for p in problems))
            (out / f"{o['kind']}_{i:04d}.xml").write_bytes(to_bytes(root))
        self.stdout.write(self.style.SUCCESS(f"{o['count']} CFDI de {o['kind']} sellados en {out}"))

    def _csd(self, o):
        given = [o["cer"], o["key"], o["password"]]
        if any(given) and not all(given):
            raise CommandError("Da --cer, --key y --password juntos.")
        try:
            if all(given):
                return load_csd(Path(o["cer"]).read_bytes(), Path(o["key"]).read_bytes(), o["password"],
                                check_validity=False)
            return load_csd(*generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE"))
        except (OSError, CsdError) as exc:
            raise CommandError(f"No se pudo cargar el CSD: {exc}") from exc

    def _build(self, kind, i, rng, emisor):
        now = timezone.now()
        common = {"emisor": emisor, "issued_at": now, "lugar_expedicion": LUGAR, "serie": kind[0].upper(),
                  "folio": str(i)}
        try:
            if kind == "global":
                tickets = [random_ticket(rng, f"T{i}-{n}") for n in range(1, rng.randint(2, 30))]
                local = timezone.localtime(now)
                return build_global(tickets, info=GlobalInfo("04", f"{local.month:02d}", local.year), **common)
            if kind == "egreso":
                ticket = random_ticket(rng, f"T{i}", max_lines=3)
                related = (Related("01", (str(uuid.UUID(int=rng.getrandbits(128))).upper(),)),)
                return build_egreso([ticket], receptor=Receptor.publico_en_general(LUGAR, "G02"), related=related,
                                    forma_pago=ticket.payment_form, **common)
            tickets = [random_ticket(rng, f"T{i}-{n}") for n in range(1, rng.randint(1, 3) + 1)]
            return build_ingreso(tickets, receptor=RECEPTOR, **common)
        except CfdiError as exc:
            raise CommandError(f"Documento {i}: {exc}") from exc
