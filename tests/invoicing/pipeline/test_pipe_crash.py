"""Kill the django-q2 worker (SIGKILL) in the middle of 200 invoices: all end stamped exactly once."""

import os
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
from invoicing.models import Invoice
from invoicing.services import invoice_issue
from invoicing.tasks import sweep_stuck_invoices

ROOT = Path(__file__).resolve().parents[3]
N = 200

pytestmark = [
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="worker processes need a shared database"),
    pytest.mark.slow,
]


def _start_worker(tmp_path, name):
    db = connection.settings_dict
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "Q_WORKERS": "2",
        "Q_RETRY": "4",  # redeliver what the killed worker had taken
        "Q_TIMEOUT": "3",
        "INVOICE_STAMP_BATCH": "20",  # several batches in flight when the kill comes
        "INVOICE_STUCK_AFTER_SECONDS": "5",  # the lease the killed worker's invoices carry
        "SANDBOX_PAC_LATENCY_MS": "200",  # a batch spends ~1 s at the PAC (two at once): the kill lands mid-batch
        "VAR_DIR": str(tmp_path),
        "FIELD_ENCRYPTION_KEY": os.environ.get("FIELD_ENCRYPTION_KEY", ""),
    })
    from django.conf import settings

    env["FIELD_ENCRYPTION_KEY"] = settings.FIELD_ENCRYPTION_KEY
    env["SECRET_KEY"] = settings.SECRET_KEY
    env.pop("REDIS_URL", None)
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _kill(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _leased():
    return Invoice.objects.filter(status__in=("pending", "sealed"), lease_until__gt=timezone.now())


def _stamped():
    return Invoice.objects.filter(status="stamped").count()


@pytest.mark.django_db(transaction=True)
def test_sigkilled_worker_loses_nothing_and_stamps_nothing_twice(merchant, branch, certificate, make_ticket,
                                                                  receptor, tmp_path, settings):
    tickets = [make_ticket(branch, number=f"K{i}", total=Decimal("116.00")) for i in range(N)]
    for t in tickets:
        invoice_issue(merchant=merchant, ticket_ids=[t.pk], receptor=receptor)
    worker = _start_worker(tmp_path, "first")
    try:
        deadline = time.monotonic() + 120
        while not (_stamped() >= 20 and _leased().exists()) and time.monotonic() < deadline:
            time.sleep(0.02)
        _kill(worker)  # in the middle: some stamped, some sealed, some leased by a dead worker, most queued
        killed_at = _stamped()
        assert 0 < killed_at < N, (tmp_path / "first.log").read_text()[-3000:]
        assert _leased().exists()  # claimed by the dead worker: only the lease expiring frees them

        worker = _start_worker(tmp_path, "second")
        settings.INVOICE_STUCK_AFTER_SECONDS = 5
        deadline = time.monotonic() + 240
        last_sweep = 0.0
        while _stamped() < N and time.monotonic() < deadline:
            if time.monotonic() - last_sweep > 6:
                sweep_stuck_invoices()  # what the periodic schedule does every minute
                last_sweep = time.monotonic()
            time.sleep(0.2)
    finally:
        _kill(worker)
    invoices = list(Invoice.objects.order_by("folio"))
    assert [i.status for i in invoices].count("stamped") == N, (tmp_path / "second.log").read_text()[-3000:]
    assert [i.folio for i in invoices] == list(range(1, N + 1))
    assert len({i.uuid for i in invoices}) == N
    from invoicing.pac.models import SandboxStamp

    assert SandboxStamp.objects.count() == N  # the PAC issued exactly one UUID per invoice
    stamped_events = Event.objects.filter(entity="invoice", from_status="sealed", to_status="stamped").values_list(
        "object_id", flat=True)
    assert sorted(stamped_events) == sorted(i.pk for i in invoices)
