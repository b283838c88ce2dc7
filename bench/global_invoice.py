"""A factura global of 10,000 tickets from selection to stamped and tickets marked (sandbox PAC, PostgreSQL).
Prints one JSON object.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/global_invoice.py [--tickets 10000]

global_10k_seconds = global_invoice_issue (lock, folio, links, tickets → globalized, events) + the stamping
task (compose from the tickets and lines, validate, seal, XSD, sandbox PAC) in this process. The PDF is not
included: it renders in the background after stamping. Breakdown in issue_seconds / stamp_seconds. The
script makes its own merchant, CSD and tickets (bulk_create) and deletes them at the end.
"""

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cleanup import bench_invoices_deletable  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=10_000)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/global_invoice.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    settings.GLOBAL_INVOICE_MAX_TICKETS = max(args.tickets, 1)  # one CFDI for the whole period
    import invoicing.stamp_queue as stamp_queue

    stamp_queue.stamp_queue_wake = lambda: None  # this process is the worker; nothing lands in the broker

    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.models import Invoice
    from invoicing.services.certificates import certificate_install
    from invoicing.services.global_invoice import global_invoice_issue
    from tickets.models import Branch, Merchant, Ticket, TicketLine

    merchant = Merchant.objects.create(slug=f"bench-global-{secrets.token_hex(4)}", legal_name="ESCUELA KEMPER URGATE",
                                       rfc="EKU9003173C9", tax_regime="601", global_periodicity="01")
    try:
        cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
        certificate_install(merchant=merchant, cer=cer, key=key, password=password)
        branch = Branch.objects.create(merchant=merchant, code="B1", name="Bench", postal_code="06600")
        yesterday = (timezone.localtime(timezone.now(), merchant.tzinfo) - dt.timedelta(days=1)).replace(
            hour=12, minute=0, second=0, microsecond=0)
        tickets = Ticket.objects.bulk_create(
            [Ticket(merchant=merchant, branch=branch, number=f"G{i}", sold_at=yesterday,
                    subtotal=Decimal("100.00"), tax_total=Decimal("16.00"), total=Decimal("116.00"),
                    payment_form="01" if i % 3 else "04", expires_at=yesterday + dt.timedelta(days=30))
             for i in range(args.tickets)], batch_size=2000)
        TicketLine.objects.bulk_create(
            [TicketLine(ticket=t, position=1, product_code="50202306", unit_code="H87", description="REFRESCO",
                        quantity=Decimal("1"), unit_price=Decimal("116.00"), amount=Decimal("116.00"),
                        taxes=[{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]) for t in tickets],
            batch_size=2000)

        from invoicing.services.stamping import invoices_stamp

        started = time.perf_counter()
        result = global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat(), actor="bench")
        issued = time.perf_counter()
        invoices_stamp([i.pk for i in result])  # what the stamping queue's task does with them
        done = time.perf_counter()
        statuses = sorted(set(Invoice.objects.filter(pk__in=[i.pk for i in result]).values_list("status", flat=True)))
        marked = Ticket.objects.filter(merchant=merchant, status="globalized").count()
        print(json.dumps({
            "global_10k_seconds": round(done - started, 3),
            "tickets": args.tickets,
            "issue_seconds": round(issued - started, 3),
            "stamp_seconds": round(done - issued, 3),
            "invoices": len(result.invoices),
            "statuses": statuses,
            "tickets_globalized": marked,
            "xml_bytes": sum(len(bytes(i.stamped_xml or b"")) for i in Invoice.objects.filter(
                pk__in=[i.pk for i in result])),
        }))
    finally:
        _cleanup(merchant)


@bench_invoices_deletable()
def _cleanup(merchant) -> None:
    from infra.models import Event
    from invoicing.models import GlobalPeriod, Invoice, InvoiceRelation, InvoiceTicket
    from invoicing.pac.models import SandboxStamp
    from tickets.models import Ticket, TicketLine

    uuids = [str(u).upper() for u in Invoice.objects.filter(merchant=merchant).exclude(uuid=None)
             .values_list("uuid", flat=True)]
    SandboxStamp.objects.filter(uuid__in=uuids).delete()
    Event.objects.filter(merchant=merchant).delete()
    GlobalPeriod.objects.filter(merchant=merchant).delete()
    InvoiceRelation.objects.filter(invoice__merchant=merchant).delete()
    InvoiceTicket.objects.filter(invoice__merchant=merchant).delete()
    Invoice.objects.filter(merchant=merchant).delete()
    TicketLine.objects.filter(ticket__merchant=merchant).delete()
    Ticket.objects.filter(merchant=merchant).delete()
    merchant.delete()


if __name__ == "__main__":
    main()
