"""Logs: every request has an id (X-Request-ID, echoed), every log line carries it with the merchant and the invoice
when known, in requests and in tasks; LOG_FORMAT=json writes one JSON object per line."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from infra.logcontext import ContextFilter, bind, current, log_context
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoices_stamp_queued
from portal.logs import JsonFormatter
from tickets.services import api_key_create

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines(settings):
    """What the root logger writes through the JSON formatter, as parsed objects."""
    settings.LOG_REQUESTS = True
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(saved)


@pytest.mark.parametrize(("sent", "kept"), [("lb-7f3a.22:x", True), ("", False), ("dos palabras", False),
                                             ("x" * 101, False), ("a\nFAKE LOG LINE", False)])
def test_request_id_is_echoed_when_sane_and_made_up_otherwise(db, sent, kept):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=sent)
    given = response["X-Request-ID"]
    assert (given == sent) is kept
    if not kept:
        assert len(given) == 32 and int(given, 16) >= 0


def test_api_log_lines_carry_request_merchant_and_invoice(json_lines, merchant, branch, certificate, make_ticket,
                                                           receptor, other_merchant, settings):
    settings.INVOICE_STAMP_LINGER_MS = 0
    invoice = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch).pk], receptor=receptor)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer " + api_key_create(merchant=merchant, name="pos",
                                                                  scopes=["invoices"])[1])
    response = api.get(f"/api/v1/invoices/{invoice.pk}", HTTP_X_REQUEST_ID="req-1")
    assert response.status_code == 200 and response["X-Request-ID"] == "req-1"
    Client().get("/healthz", HTTP_X_REQUEST_ID="req-2")  # the same thread next: nothing of req-1 is left
    lines = {line["request_id"]: line for line in json_lines() if line["logger"] == "portal.request"}
    assert lines["req-1"]["merchant_id"] == merchant.pk and lines["req-1"]["invoice_id"] == invoice.pk
    assert lines["req-1"]["status"] == 200 and lines["req-1"]["path"] == f"/api/v1/invoices/{invoice.pk}"
    assert lines["req-2"]["merchant_id"] is None and lines["req-2"]["invoice_id"] is None
    assert current() == {"request_id": None, "merchant_id": None, "invoice_id": None}


def test_shopper_pages_log_their_merchant(json_lines, merchant):
    Client().get(f"/{merchant.slug}/", HTTP_X_REQUEST_ID="shop-1")
    [line] = [line for line in json_lines() if line.get("request_id") == "shop-1"]
    assert line["merchant_id"] == merchant.pk


def test_task_log_lines_carry_merchant_and_invoice(json_lines, settings, merchant, branch, certificate, make_ticket,
                                                   receptor):
    settings.SANDBOX_PAC_FAILURE_RATE = 2  # a transient PAC error: the stamping task logs a warning
    settings.INVOICE_STAMP_LINGER_MS = 0
    invoice = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch).pk], receptor=receptor)
    invoices_stamp_queued()
    [line] = [line for line in json_lines() if "transient error" in line["message"]]
    assert line["level"] == "WARNING" and line["logger"] == "invoicing.services.stamping"
    assert (line["merchant_id"], line["invoice_id"], line["request_id"]) == (merchant.pk, invoice.pk, None)


def test_log_context_nests_and_restores():
    bind(merchant_id=5)  # outside any context (a shell, a test): nothing to bind to, nothing leaks
    assert current() == {"request_id": None, "merchant_id": None, "invoice_id": None}
    with log_context(request_id="r"):
        with log_context(invoice_id=7):
            bind(merchant_id=3)
            assert current() == {"request_id": "r", "merchant_id": 3, "invoice_id": 7}
        assert current() == {"request_id": "r", "merchant_id": None, "invoice_id": None}
    assert current() == {"request_id": None, "merchant_id": None, "invoice_id": None}


def test_an_exception_is_one_json_line_with_its_traceback():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "falló %s", ("algo",), None)
    try:
        raise ValueError("línea 1\nlínea 2")
    except ValueError:
        record.exc_info = sys.exc_info()
    ContextFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "falló algo" and "ValueError: línea 1\nlínea 2" in parsed["exception"]


def _run(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "DATABASE_URL")}
    clean.update({"VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "portal.settings", **env})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=120)


def test_log_format_json_makes_every_line_a_json_object(tmp_path):
    code = ("import django, logging; django.setup(); "
            "from infra.logcontext import log_context\n"
            "with log_context(request_id='abc', merchant_id=3):\n"
            "    logging.getLogger('invoicing').warning('hola %s', 'mundo')\n"
            "logging.getLogger('django-q').warning('de django-q')\n")
    proc = _run(code, tmp_path, LOG_FORMAT="json")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    hola = next(line for line in lines if line["message"] == "hola mundo")
    assert (hola["request_id"], hola["merchant_id"], hola["invoice_id"], hola["level"]) == ("abc", 3, None, "WARNING")
    assert any(line["logger"] == "django-q" for line in lines)


def test_log_format_must_be_plain_or_json(tmp_path):
    proc = _run("import portal.settings", tmp_path, LOG_FORMAT="xml")
    assert proc.returncode != 0 and "LOG_FORMAT" in proc.stderr
