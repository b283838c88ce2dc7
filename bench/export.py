"""The accountant's export of 10,000 stamped invoices: the background task's time (PostgreSQL). Prints one JSON
object.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/export.py [--invoices 10000]

export_10k_seconds = ``export_run``, what the django-q2 task does: read the invoices of the month in chunks, write
each XML into the ZIP, read its totals and taxes back from the XML, write facturas.csv and facturas.xlsx, store the
ZIP. The web request only queues it (request_ms). One invoice is stamped for real (sandbox PAC); the others are
copies of it with their own UUID and folio. The script deletes its merchant and files at the end.
"""

import argparse
import json
import os
import secrets
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cleanup import bench_invoices_deletable  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=10_000)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/export.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    settings.INVOICE_STAMP_LINGER_MS = 0
    import invoicing.services.exports as exports
    import invoicing.stamp_queue as stamp_queue
    import invoicing.tasks as tasks

    stamp_queue.stamp_queue_wake = lambda: None  # this process is the worker: nothing lands in the broker
    tasks.enqueue_after_stamped = lambda *ids: None
    exports.enqueue_export = lambda export_id: None

    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.models import AccountingExport, Invoice
    from invoicing.services import ReceptorData, invoice_issue
    from invoicing.services.certificates import certificate_install
    from invoicing.services.stamping import invoices_stamp_queued
    from tickets.models import Branch, Merchant
    from tickets.services import LineInput, ticket_create

    merchant = Merchant.objects.create(slug=f"bench-export-{secrets.token_hex(4)}", legal_name="ESCUELA KEMPER URGATE",
                                       rfc="EKU9003173C9", tax_regime="601")
    export = None
    try:
        cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
        certificate_install(merchant=merchant, cer=cer, key=key, password=password)
        branch = Branch.objects.create(merchant=merchant, code="B1", name="Bench", postal_code="06600")
        from decimal import Decimal

        ticket = ticket_create(merchant=merchant, branch=branch, number="X1", sold_at=timezone.now(), lines=[
            LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                      unit_price=Decimal("116.00"))])
        receptor = ReceptorData(rfc="CACX7605101P8", name="XOCHILT CASAS CHAVEZ", tax_regime="612",
                                postal_code="36257", cfdi_use="G03", emails=())
        original = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
        invoices_stamp_queued()
        original.refresh_from_db()
        xml = bytes(original.stamped_xml)
        old_uuid = str(original.uuid).upper().encode()
        copies = []
        for n in range(2, args.invoices + 1):
            new = uuid.uuid4()
            copies.append(Invoice(
                merchant=merchant, branch=branch, kind=original.kind, status=original.status, serie=original.serie,
                folio=n, receptor_rfc=original.receptor_rfc, receptor_name=original.receptor_name,
                receptor_tax_regime=original.receptor_tax_regime, receptor_postal_code=original.receptor_postal_code,
                receptor_cfdi_use=original.receptor_cfdi_use, subtotal=original.subtotal, tax_total=original.tax_total,
                total=original.total, issued_at=original.issued_at, stamped_at=original.stamped_at, uuid=new,
                pac=original.pac, stamped_xml=xml.replace(old_uuid, str(new).upper().encode())
                .replace(b'Folio="1"', f'Folio="{n}"'.encode())))
        Invoice.objects.bulk_create(copies, batch_size=1000)
        today = timezone.localdate(timezone.now(), merchant.tzinfo)

        started = time.perf_counter()
        export = exports.export_request(merchant=merchant, first_day=today.replace(day=1), last_day=today,
                                        actor="bench")
        queued = time.perf_counter()
        status = exports.export_run(export_id=export.pk)
        done = time.perf_counter()
        export.refresh_from_db()
        print(json.dumps({
            "export_10k_seconds": round(done - queued, 3),
            "invoices": export.processed,
            "status": status,
            "request_ms": round((queued - started) * 1000, 1),
            "zip_bytes": export.file.size if export.file else 0,
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        }))
    finally:
        if export is not None and export.file:
            export.file.storage.delete(export.file.name)
        from infra.models import Event
        from invoicing.pac.models import SandboxStamp
        from tickets.models import Ticket, TicketLine

        SandboxStamp.objects.filter(emisor_rfc=merchant.rfc, uuid__in=[
            str(u).upper() for u in Invoice.objects.filter(merchant=merchant).values_list("uuid", flat=True)]).delete()
        AccountingExport.objects.filter(merchant=merchant).delete()
        Event.objects.filter(merchant=merchant).delete()
        from invoicing.models import InvoiceTicket

        InvoiceTicket.objects.filter(invoice__merchant=merchant).delete()
        with bench_invoices_deletable():
            Invoice.objects.filter(merchant=merchant).delete()
        TicketLine.objects.filter(ticket__merchant=merchant).delete()
        Ticket.objects.filter(merchant=merchant).delete()
        merchant.delete()


if __name__ == "__main__":
    main()
