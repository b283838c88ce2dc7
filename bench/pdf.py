"""Milliseconds per one-page invoice PDF (WeasyPrint, our template) and per QR. Prints one JSON object.

    createdb -h 127.0.0.1 -U postgres bench_pdf
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_pdf .venv/bin/python bench/pdf.py [--renders 20]

The CFDI is built and sealed by the engine with a test CSD, and gets a TimbreFiscalDigital added here, as a
PAC would. The database only holds SAT's product and unit keys (loaded on first run, as ``make run`` does):
the PDF prints their names, looked up in one query per render. ``pdf_ms_per_page`` is the median wall time
of ``render_cfdi_pdf`` (parse the stamped XML, key names, TFD cadena, QR, template, WeasyPrint) after a
warm-up; ``*_cpu_ms`` are process CPU times, steadier when other work shares the machine.
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def stamped_one_line_xml(concepts: int = 1) -> bytes:
    from lxml import etree

    from invoicing.cfdi.builder import build_ingreso
    from invoicing.cfdi.cadena import tfd_cadena_original
    from invoicing.cfdi.csd import load_csd
    from invoicing.cfdi.inputs import IVA_16, Emisor, Receptor, Ticket, TicketLine
    from invoicing.cfdi.resources import CFDI_NS, TFD_NS
    from invoicing.cfdi.seal import seal_document
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.cfdi.xml import to_bytes

    csd = load_csd(*generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE"))
    line = TicketLine("Cuaderno profesional", Decimal("2"), Decimal("45.50"), "14111514", "H87", unidad="Pieza",
                      taxes=(IVA_16,))
    c = build_ingreso(
        [Ticket("T-1001", (line,) * concepts, payment_form="04")],
        emisor=Emisor("EKU9003173C9", "ESCUELA KEMPER URGATE", "601"),
        receptor=Receptor("XIQB891116QE4", "BERENICE XIMO QUEZADA", "26015", "612", "G03"),
        issued_at=datetime.now(UTC), lugar_expedicion="06600", serie="F", folio="1",
    )
    root = seal_document(c, csd)
    tfd = etree.SubElement(etree.SubElement(root, f"{{{CFDI_NS}}}Complemento"),
                           f"{{{TFD_NS}}}TimbreFiscalDigital", nsmap={"tfd": TFD_NS})
    for name, value in (("Version", "1.1"), ("UUID", str(uuid.uuid4()).upper()),
                        ("FechaTimbrado", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")),
                        ("RfcProvCertif", "SPR190613I52"), ("SelloCFD", root.get("Sello")),
                        ("NoCertificadoSAT", "30001000000500003456")):
        tfd.set(name, value)
    tfd.set("SelloSAT", csd.sign(tfd_cadena_original(tfd).encode()))
    return to_bytes(root)


def _load_key_catalogs() -> None:
    import io

    from django.core.management import call_command

    from tickets.catalogs import ProductKey, UnitKey

    call_command("migrate", verbosity=0)
    if not (ProductKey.objects.exists() and UnitKey.objects.exists()):
        call_command("load_sat_catalogs", only="product_keys,unit_keys", stdout=io.StringIO())


def _page_count(pdf: bytes) -> int:
    import re

    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf)) or 1


def _timed(fn, n: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--concepts", default="",
                        help="comma-separated sizes (e.g. 1000,2000,5000): seconds to render one invoice of each")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL"):
        sys.exit("bench/pdf.py needs its own database for SAT's key names: set DATABASE_URL (see the docstring)")
    import django

    django.setup()
    _load_key_catalogs()
    from invoicing.cfdi.parser import parse_cfdi
    from invoicing.cfdi.qr import qr_url
    from invoicing.pdf import Branding, qr_png, render_cfdi_pdf

    if args.concepts:
        return _big(args.concepts)
    xml = stamped_one_line_xml()
    branding = Branding(name="ESCUELA KEMPER URGATE", color="#0B7A5F")
    pdf = render_cfdi_pdf(xml, branding=branding, sandbox=True)  # warm-up: fonts, stylesheet, templates
    pages = _page_count(pdf)
    pdf_wall, pdf_cpu = _timed(lambda: render_cfdi_pdf(xml, branding=branding, sandbox=True), args.renders)
    # A fuller one-page invoice: ten concepts still leave room for the QR and sellos on page 1.
    xml10 = stamped_one_line_xml(10)
    pages10 = _page_count(render_cfdi_pdf(xml10, branding=branding, sandbox=True))
    pdf10_wall, pdf10_cpu = _timed(lambda: render_cfdi_pdf(xml10, branding=branding, sandbox=True), args.renders)

    parsed = parse_cfdi(xml)
    c, t = parsed.comprobante, parsed.timbre
    url = qr_url(uuid=t.uuid, rfc_emisor=c.emisor.rfc, rfc_receptor=c.receptor.rfc, total=c.total, sello=c.sello)
    qr_png(url)
    qr_wall, qr_cpu = _timed(lambda: qr_png(url), 100)

    print(json.dumps({
        "pdf_ms_per_page": round(pdf_wall / max(pages, 1), 1),
        "pdf_cpu_ms_per_page": round(pdf_cpu / max(pages, 1), 1),
        "pages": pages,
        "pdf_ms_10_concepts": round(pdf10_wall, 1),
        "pdf_cpu_ms_10_concepts": round(pdf10_cpu, 1),
        "pages_10_concepts": pages10,
        "pdf_bytes": len(pdf),
        "qr_ms": round(qr_wall, 2),
        "qr_cpu_ms": round(qr_cpu, 2),
        "renders": args.renders,
        "target_pdf_ms_per_page": 120,
    }))


def _big(sizes: str) -> None:
    """Seconds and pages for one invoice of each size: what sizes INVOICE_MAX_CONCEPTS and
    INVOICE_PDF_INLINE_MAX_CONCEPTS (docs/stamping.md)."""
    from invoicing.pdf import Branding, render_cfdi_pdf

    branding = Branding(name="ESCUELA KEMPER URGATE", color="#0B7A5F")
    render_cfdi_pdf(stamped_one_line_xml(), branding=branding, sandbox=True)  # warm-up
    out = {}
    for size in (int(s) for s in sizes.split(",") if s.strip()):
        xml = stamped_one_line_xml(size)
        wall, cpu = time.perf_counter(), time.process_time()
        pdf = render_cfdi_pdf(xml, branding=branding, sandbox=True)
        out[str(size)] = {"seconds": round(time.perf_counter() - wall, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
                          "pages": _page_count(pdf), "xml_bytes": len(xml), "pdf_bytes": len(pdf)}
    print(json.dumps({"pdf_by_concepts": out}))


if __name__ == "__main__":
    main()
