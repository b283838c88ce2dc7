"""Queues that cannot starve each other, with real clusters (``manage.py qcluster``) on PostgreSQL:

- a deliver and a bulk queue busy with slow jobs do not delay stamping;
- a retry after a PAC error fires at its time (backoff 1/2/4 s here), not at the sweeper's next minute;
- a large invoice's slow delivery does not hold the small invoices' emails.
"""

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from infra.models import Event
from infra.queues import BULK, DELIVER, enqueue
from invoicing.models import Invoice, InvoiceDelivery
from invoicing.services import invoice_issue
from tickets.services import LineInput, ticket_create

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="worker processes need a shared database"),
    pytest.mark.slow,
]


def _env(tmp_path, **extra):
    from django.conf import settings

    db = connection.settings_dict
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.pop("Q_CLUSTER_NAME", None)
    env.update({
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "VAR_DIR": str(tmp_path), "MEDIA_ROOT": str(tmp_path / "media"), "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY, "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "Q_WORKERS": "1", "Q_DELIVER_WORKERS": "1", "Q_BULK_WORKERS": "1",
        **extra,
    })
    return env


def _start(tmp_path, argv, name, **extra):
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=_env(tmp_path, **extra), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _wait(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _ready(queue, tmp_path, name):
    """Wait until the queue's cluster runs tasks (it warms the CFDI engine first, which takes a while on a busy
    machine), so the clock starts with the clusters up."""
    from django_q.tasks import result

    task_id = enqueue("portal.tasks.ping", "ready", queue=queue)
    assert _wait(lambda: result(task_id) is not None, 90), _log(tmp_path, name)


def _log(tmp_path, name):
    return (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]


@pytest.mark.django_db(transaction=True)
def test_a_busy_deliver_and_bulk_queue_do_not_delay_stamping(merchant, branch, certificate, make_ticket,
                                                              receptor, tmp_path):
    """Before, one queue: a 5,000-concept PDF or a backlog of webhooks delayed other merchants' invoices by a
    minute and more."""
    cluster = _start(tmp_path, ["manage.py", "qcluster"], "all")
    try:
        for queue in (DELIVER, BULK):  # one worker each, busy for the rest of the test, more work waiting
            _ready(queue, tmp_path, "all")
            for _ in range(5):
                enqueue("time.sleep", 60, queue=queue)
        _ready("stamp", tmp_path, "all")
        time.sleep(1)  # the deliver and bulk queues' only workers are asleep
        started = time.monotonic()
        ids = [invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"S{i}").pk],
                             receptor=receptor).pk for i in range(3)]
        stamped = _wait(lambda: Invoice.objects.filter(pk__in=ids, status="stamped").count() == 3, 20)
        assert stamped, _log(tmp_path, "all")
        assert time.monotonic() - started < 5
        # Their deliveries wait for the deliver queue's worker, which is still asleep: nothing lost, just queued.
        assert set(InvoiceDelivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"pending"}
    finally:
        _stop(cluster)


@pytest.mark.django_db(transaction=True)
def test_retries_after_a_pac_error_fire_at_their_backoff_time(merchant, branch, certificate, make_ticket,
                                                              receptor, tmp_path):
    """Before, retries fired only from the every-minute sweeper: a backoff of 5/10/20 s became 35/15/46 s."""
    counts = tmp_path / "pac"
    counts.mkdir()
    stamp = _start(tmp_path, [str(Path(__file__).with_name("flaky_pac_worker.py"))], "stamp",
                   Q_CLUSTER_NAME="stamp", FLAKY_PAC_FAILURES="3", FLAKY_PAC_DIR=str(counts),
                   INVOICE_RETRY_BACKOFF_SECONDS="1")
    try:
        _ready("stamp", tmp_path, "stamp")
        invoice = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="R1").pk],
                                receptor=receptor)
        assert _wait(lambda: Invoice.objects.filter(pk=invoice.pk, status="stamped").exists(), 30), \
            _log(tmp_path, "stamp")
    finally:
        _stop(stamp)
    events = list(Event.objects.filter(entity="invoice", object_id=invoice.pk).order_by("created_at", "pk"))
    retries = [e for e in events if "reintento" in e.reason]
    assert [int(re.search(r"en (\d+) s", e.reason).group(1)) for e in retries] == [1, 2, 4]
    attempts = [*retries[1:], next(e for e in events if e.to_status == "stamped")]
    for retry, following in zip(retries, attempts, strict=True):
        waited = (following.created_at - retry.created_at).total_seconds()
        due = int(re.search(r"en (\d+) s", retry.reason).group(1))
        assert due <= waited < due + 1.5, [(e.reason, e.created_at) for e in events]


def _two_line_ticket(branch, number):
    line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                     unit_price=Decimal("58.00"))
    return ticket_create(merchant=branch.merchant, branch=branch, number=number,
                         sold_at=timezone.now() - dt.timedelta(hours=1), lines=[line, line])


@pytest.mark.django_db(transaction=True)
def test_a_large_invoice_waiting_for_its_pdf_does_not_hold_the_small_ones_emails(merchant, branch, certificate,
                                                                                 make_ticket, receptor, tmp_path):
    """Before, one task delivered a whole stamped batch: a 6-ticket × 1,000-line invoice made a small invoice of
    the same batch lose its email."""
    cluster = _start(tmp_path, ["manage.py", "qcluster"], "all", INVOICE_PDF_LARGE_CONCEPTS="1")
    try:
        for queue in ("stamp", DELIVER, BULK):
            _ready(queue, tmp_path, "all")
        enqueue("time.sleep", 60, queue=BULK)  # the bulk queue, where large PDFs are rendered, is busy
        time.sleep(1)
        large = invoice_issue(merchant=merchant, ticket_ids=[_two_line_ticket(branch, "G1").pk], receptor=receptor)
        small = [invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"P{i}").pk],
                               receptor=receptor).pk for i in range(2)]
        delivered = _wait(lambda: InvoiceDelivery.objects.filter(pk__in=small, status="delivered").count() == 2, 30)
        assert delivered, _log(tmp_path, "all")
        assert InvoiceDelivery.objects.get(pk=large.pk).large
        assert InvoiceDelivery.objects.get(pk=large.pk).status == "pending"  # its turn comes on the bulk queue
        emailed = Event.objects.filter(entity="invoice", data__kind="email_sent").values_list("object_id", flat=True)
        assert sorted(emailed) == sorted(small)
    finally:
        _stop(cluster)

