"""Invoices per second through issue → stamped (sandbox PAC, PostgreSQL, two django-q2 workers, no PDF),
and milliseconds per one-page PDF. Prints one JSON object.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/pipeline.py [--invoices 600]

The broker is Redis when REDIS_URL is set (the scale-out configuration), else the ORM broker. The script
makes its own merchant, tickets and CSD, and deletes them at the end.
"""

import argparse
import io
import json
import os
import secrets
import statistics
import subprocess
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
    parser.add_argument("--invoices", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pdf-renders", type=int, default=20)
    parser.add_argument("--issuers", type=int, default=4, help="processes issuing, like a web server's workers")
    parser.add_argument("--issue-first", action="store_true",
                        help="issue everything before the workers start: measures stamping capacity alone")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/pipeline.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_sat_catalogs", stdout=io.StringIO())  # as `make run` does
    from django.conf import settings

    from invoicing.models import Invoice
    from invoicing.services import ReceptorData
    from tickets.models import Branch, Merchant, Ticket, TicketLine
    from tickets.services import ticket_expires_at

    merchant = Merchant.objects.create(slug=f"bench-{secrets.token_hex(4)}", legal_name="ESCUELA KEMPER URGATE",
                                       rfc="EKU9003173C9", tax_regime="601")
    try:
        from invoicing.cfdi.testcsd import generate_test_csd
        from invoicing.services.certificates import certificate_install

        cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
        certificate_install(merchant=merchant, cer=cer, key=key, password=password)
        branch = Branch.objects.create(merchant=merchant, code="B1", name="Bench", postal_code="06600")
        from django.utils import timezone

        now = timezone.now()
        tickets = Ticket.objects.bulk_create(
            Ticket(merchant=merchant, branch=branch, number=f"P{i}", sold_at=now, subtotal=Decimal("100.00"),
                   tax_total=Decimal("16.00"), total=Decimal("116.00"),
                   expires_at=ticket_expires_at(merchant=merchant, sold_at=now))
            for i in range(args.invoices)
        )
        TicketLine.objects.bulk_create(
            TicketLine(ticket=t, position=1, product_code="50202306", unit_code="H87", description="REFRESCO",
                       quantity=1, unit_price=Decimal("116.00"), amount=Decimal("116.00"),
                       taxes=[{"tax": "002", "factor": "Tasa", "rate": "0.160000"}])
            for t in tickets
        )
        receptor = ReceptorData("CACX7605101P8", "XOCHILT CASAS CHAVEZ", "612", "36257", "G03")
        env = dict(os.environ, Q_WORKERS=str(args.workers), INVOICE_PDF_AFTER_STAMP="0", DEBUG="0",
                   SECRET_KEY=settings.SECRET_KEY, FIELD_ENCRYPTION_KEY=settings.FIELD_ENCRYPTION_KEY)
        from infra.queues import QUEUES, broker

        for queue in QUEUES:  # tasks a previous run's killed cluster left behind are not this run's work
            broker(queue).purge_queue()
        ids = []
        if args.issue_first:
            pre = time.perf_counter()
            ids = _issue_all(merchant, tickets, receptor, args.issuers)
            issue_seconds = time.perf_counter() - pre
        # Issue first: the stamping queue's cluster alone (its capacity); otherwise all three queues, as deployed.
        if args.issue_first:
            env["Q_CLUSTER_NAME"] = settings.Q_QUEUES["stamp"]  # `qcluster` then serves that queue alone
        worker = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            started = time.perf_counter()
            if not args.issue_first:
                _wait_ready(QUEUES)  # every queue's cluster up and warm before the clock starts
                started = time.perf_counter()
            busy_before = _machine_busy_seconds()
            if not args.issue_first:
                ids = _issue_all(merchant, tickets, receptor, args.issuers)
                issue_seconds = time.perf_counter() - started
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = Invoice.objects.filter(merchant=merchant, status__in=("stamped", "failed")).count()
                if done == len(ids):
                    break
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
            busy = _machine_busy_seconds() - busy_before
        finally:
            import signal

            os.killpg(worker.pid, signal.SIGKILL)  # the measurement is over; no need for a graceful stop
            worker.wait(30)
            time.sleep(1)  # let the cluster's processes and connections go before timing PDFs
        stamped = Invoice.objects.filter(pk__in=ids, status="stamped").count()
        pdf_ms = _pdf_ms(Invoice.objects.filter(pk__in=ids, status="stamped").first(), args.pdf_renders)
        sys.stderr.write(f"elapsed {elapsed:.2f}s\n")
        print(json.dumps({
            "invoices_per_s": round(stamped / elapsed, 1),
            "invoices": len(ids),
            "stamped": stamped,
            "issue_only_per_s": round(len(ids) / issue_seconds, 1),
            # Every process on the machine (issuers, workers, PostgreSQL, Redis) while the clock ran.
            "machine_cpu_ms_per_invoice": round(busy * 1000 / max(stamped, 1), 2),
            "machine_cpu_busy": round(busy / (elapsed * (os.cpu_count() or 1)), 2),
            "mode": "issue first, then stamp" if args.issue_first else "issue and stamp together",
            "workers": args.workers,
            "issuers": args.issuers,
            "broker": "redis" if settings.REDIS_URL else "orm",
            "pdf_ms_per_page": pdf_ms,
        }))
    finally:
        _cleanup(merchant)


def _wait_ready(queues, timeout: float = 120) -> None:
    from django_q.tasks import result

    from infra.queues import enqueue

    waiting = [enqueue("portal.tasks.ping", "ready", queue=queue) for queue in queues]
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        waiting = [task_id for task_id in waiting if result(task_id) is None]
        time.sleep(0.1)
    if waiting:
        sys.exit("bench/pipeline.py: the task queues did not start")
    time.sleep(0.5)


def _issue_all(merchant, tickets, receptor, issuers: int) -> list[int]:
    """Issue one invoice per ticket from ``issuers`` processes, as the web server's workers would."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # each forked issuer opens its own
    chunks = [[t.pk for t in tickets[i::issuers]] for i in range(issuers)]
    with multiprocessing.get_context("fork").Pool(issuers) as pool:
        results = pool.starmap(_issue_chunk, [(merchant.pk, chunk, receptor) for chunk in chunks])
    return [pk for ids in results for pk in ids]


def _issue_chunk(merchant_id: int, ticket_ids: list[int], receptor) -> list[int]:
    from django.db import connection

    from invoicing.services import invoice_issue
    from tickets.models import Merchant

    merchant = Merchant.objects.get(pk=merchant_id)
    try:
        return [invoice_issue(merchant=merchant, ticket_ids=[pk], receptor=receptor).pk for pk in ticket_ids]
    finally:
        connection.close()


def _machine_busy_seconds() -> float:
    """CPU seconds all processes spent so far (Linux /proc/stat: user + nice + system + irq + softirq)."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")


def _pdf_ms(invoice, renders: int) -> float | None:
    if invoice is None:
        return None
    from invoicing.pdf import render_invoice_pdf

    render_invoice_pdf(invoice)  # warm-up: fonts, stylesheet
    samples = []
    for _ in range(renders):
        started = time.perf_counter()
        render_invoice_pdf(invoice)
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


@bench_invoices_deletable()
def _cleanup(merchant) -> None:
    from django.db import connection

    from infra.models import Event
    from invoicing.models import Invoice

    Event.objects.filter(merchant=merchant).delete()
    Invoice.objects.filter(merchant=merchant).delete()
    merchant.tickets.all().delete()
    merchant.delete()
    connection.close()


if __name__ == "__main__":
    main()
