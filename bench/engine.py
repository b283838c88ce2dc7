"""Benchmark of the CFDI engine (pure; no Django). Prints one JSON object.

seal_docs_per_s: one-line ingreso built + rules-validated + cadena + sealed (+ serialised), per second.
rsa_signs_per_s: raw RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second in the same run (the ceiling).
xsd_validations_per_s: XSD validations of that one-line document per second.
global_10k_seconds: a 10,000-ticket factura global built, validated, sealed and serialised.
Run: .venv/bin/python bench/engine.py
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from invoicing.cfdi.builder import build_global, build_ingreso  # noqa: E402
from invoicing.cfdi.csd import load_csd  # noqa: E402
from invoicing.cfdi.inputs import IVA_16, Emisor, GlobalInfo, Receptor, Ticket, TicketLine  # noqa: E402
from invoicing.cfdi.resources import cfdi_schema  # noqa: E402
from invoicing.cfdi.seal import seal_document  # noqa: E402
from invoicing.cfdi.testcsd import generate_test_csd  # noqa: E402
from invoicing.cfdi.validation import validate  # noqa: E402
from invoicing.cfdi.xml import to_bytes  # noqa: E402

EMISOR = Emisor("EKU9003173C9", "ESCUELA KEMPER URGATE", "601")
RECEPTOR = Receptor("XIQB891116QE4", "BERENICE XIMO QUEZADA", "26015", "612", "G03")


def _rate(fn, seconds: float = 2.0) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        n += 20
    return n / elapsed


def main() -> None:
    cer, key, password = generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE SA DE CV")
    csd = load_csd(cer, key, password)
    now = datetime.now(UTC)
    ticket = Ticket("T-1", (TicketLine("Cuaderno", D("2"), D("45.50"), "14111514", "H87", taxes=(IVA_16,)),))

    def one_doc() -> bytes:
        c = build_ingreso([ticket], emisor=EMISOR, receptor=RECEPTOR, issued_at=now, lugar_expedicion="42501")
        if any(i.severity == "error" for i in validate(c, csd=csd)):
            raise SystemExit("validation failed")
        return to_bytes(seal_document(c, csd))

    pad, sha = padding.PKCS1v15(), hashes.SHA256()
    data = b"||4.0|" * 60
    rsa = _rate(lambda: csd.private_key.sign(data, pad, sha))
    docs = _rate(one_doc)
    schema = cfdi_schema()
    from lxml import etree

    root = etree.fromstring(one_doc())
    assert schema.validate(root)
    xsd = _rate(lambda: schema.validate(root))

    tickets = [
        Ticket(f"S1-{i:06d}", (TicketLine("Venta", D(1 + i % 5), D("19.90") + i % 97),), payment_form="01")
        for i in range(10_000)
    ]
    start = time.perf_counter()
    g = build_global(tickets, emisor=EMISOR, issued_at=now, lugar_expedicion="42501", info=GlobalInfo("01", "11", 2026))
    if any(i.severity == "error" for i in validate(g, csd=csd)):
        raise SystemExit("global validation failed")
    to_bytes(seal_document(g, csd))
    global_s = time.perf_counter() - start

    print(
        json.dumps(
            {
                "seal_docs_per_s": round(docs),
                "rsa_signs_per_s": round(rsa),
                "seal_to_rsa_ratio": round(docs / rsa, 3),
                "xsd_validations_per_s": round(xsd),
                "global_10k_seconds": round(global_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
