"""The demo's rough edges: its links follow the port `make run` uses, and seeding raises no "venció el plazo"
alerts for periods whose deadline passed before the demo merchant existed."""

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command

from infra.models import Event
from invoicing.models import GlobalPeriod
from invoicing.services.global_schedule import global_invoices_run
from tickets.models import Merchant

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("env", "expected"), [({}, "http://127.0.0.1:8200"),
                                               ({"PUBLIC_BASE_URL": "https://facturas.example"},
                                                "https://facturas.example")])
def test_make_run_links_follow_its_port(env, expected, monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = subprocess.run(["make", "-n", "run", "PORT=8200"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    # The run target exports PUBLIC_BASE_URL (the base of the QR and email links) and prints what it is.
    assert f"Enlaces en tickets y correos: {expected}" in out
    assert "http://127.0.0.1:8200/demo/" in out


def test_seeding_raises_no_alert_for_periods_before_the_demo(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=io.StringIO())  # 50 tickets over the last six weeks
    merchant = Merchant.objects.get(slug="demo")
    assert merchant.customer_email and merchant.customer_phone and merchant.address  # shown to its shoppers
    global_invoices_run()  # the scheduler's first pass right after seeding: the backdated tickets' globals
    assert GlobalPeriod.objects.filter(merchant=merchant, deadline__lt=merchant.created_at).exists()
    assert not Event.objects.filter(entity="global_period", to_status="deadline_alert", reason__startswith="Venció")
    assert not [m for m in mail.outbox if "Factura global pendiente" in m.subject and "Venció" in m.body]
