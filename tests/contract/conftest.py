"""The API's contract with its users: the OpenAPI schema, the responses that must follow it, the client generated
from it. ``world`` is one merchant with something behind every operation (stamped invoices, a factura global, an
export, a webhook, a batch…), its API key with every scope, and the same for a second merchant."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from contract_scenarios import SCOPES
from django.utils import timezone
from rest_framework.test import APIClient


@pytest.fixture
def schema_dict(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


@dataclass
class World:
    key: str
    api: APIClient
    other_api: APIClient
    merchant: object
    branch: object
    ids: dict = field(default_factory=dict)


def _client(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def _stamp_all():
    from invoicing.services.stamping import invoices_stamp_queued

    for _ in range(10):
        if not invoices_stamp_queued():
            return


@pytest.fixture
def world(merchant, branch, certificate, make_ticket, receptor, other_merchant, other_branch, settings, tmp_path,
          queued_tasks):
    """Everything the API's operations can be asked about, for ``merchant``; a key of ``other_merchant`` too."""
    from invoicing.models import Invoice
    from invoicing.services import invoice_issue
    from invoicing.services.exports import export_request, export_run
    from invoicing.services.global_invoice import global_invoice_issue
    from invoicing.webhooks.services import webhook_endpoint_create
    from tickets.ingest.lifecycle import batch_submit
    from tickets.services import api_key_create, exchange_rate_set

    settings.INVOICE_STAMP_LINGER_MS = 0
    settings.MEDIA_ROOT = tmp_path
    settings.API_RATE_LIMIT = ""
    settings.SANDBOX_PAC_CANCEL_ANSWER = "accept"
    settings.SANDBOX_PAC_SAT_DOWN = False
    merchant.global_periodicity = "01"  # daily: yesterday is a closed period
    merchant.save(update_fields=["global_periodicity"])

    _, plain = api_key_create(merchant=merchant, name="Caja 1", scopes=SCOPES)
    _, other = api_key_create(merchant=other_merchant, name="Caja otra", scopes=SCOPES)
    w = World(key=plain, api=_client(plain), other_api=_client(other), merchant=merchant, branch=branch)

    def ticket(number, total="116.00", **kwargs):
        return make_ticket(branch, number=number, total=Decimal(total), **kwargs)

    def stamped(number, total="116.00"):
        invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket(number, total).pk], receptor=receptor)
        _stamp_all()
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.STAMPED, invoice.last_error_message
        return invoice

    for name in ("open", "to_invoice", "to_void", "to_expire", "to_refund", "to_refund_twice"):
        w.ids[name] = ticket(f"A-{len(w.ids) + 100}").pk
    w.ids["invoice"] = stamped("A-200", "163.50").pk
    w.ids["to_cancel"] = stamped("A-201").pk
    w.ids["to_reissue"] = stamped("A-202").pk
    w.ids["to_resend"] = w.ids["invoice"]
    w.ids["invoiced_ticket"] = Invoice.objects.get(pk=w.ids["invoice"]).ticket_links.get().ticket_id

    yesterday = (timezone.localtime(timezone.now(), merchant.tzinfo) - dt.timedelta(days=1)).replace(
        hour=12, minute=0, second=0, microsecond=0)
    for n in range(2):
        ticket(f"G-{n}", sold_at=yesterday)
    w.ids["global_day"] = yesterday.date().isoformat()
    global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat())
    _stamp_all()
    w.ids["global_invoice"] = Invoice.objects.get(merchant=merchant, kind=Invoice.Kind.GLOBAL).pk
    two_days_ago = yesterday - dt.timedelta(days=1)
    w.ids["global_ticket"] = ticket("G-9", sold_at=two_days_ago).pk
    w.ids["global_day_2"] = two_days_ago.date().isoformat()

    today = timezone.localdate(timezone.now(), merchant.tzinfo)
    export = export_request(merchant=merchant, first_day=today.replace(day=1), last_day=today, actor="contadora")
    assert export_run(export_id=export.pk) == "done"
    w.ids["export"] = export.pk

    endpoint, _ = webhook_endpoint_create(merchant=merchant, url="https://erp.example.com/webhooks/autofactura",
                                          events=["invoice.stamped"])
    w.ids["webhook"] = endpoint.pk
    doomed, _ = webhook_endpoint_create(merchant=merchant, url="https://erp.example.com/webhooks/viejo")
    w.ids["webhook_to_delete"] = doomed.pk

    batch = batch_submit(merchant=merchant, batch_id="2026-05-31-CENTRO-1", tickets=[{
        "branch": "CENTRO", "number": "L-1", "sold_at": timezone.now().isoformat(), "total": "116.00",
        "lines": [{"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO", "quantity": "1",
                   "unit_price": "116.00", "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]}]}])
    w.ids["batch"] = batch.batch_id
    exchange_rate_set(merchant=merchant, currency="USD", valid_from=today, rate="17.250300")
    scheduled = invoice_issue(merchant=merchant, ticket_ids=[ticket("A-204").pk], receptor=receptor,
                              issue_at=timezone.now() + dt.timedelta(hours=2))
    w.ids["scheduled_invoice"] = scheduled.pk
    pending = invoice_issue(merchant=merchant, ticket_ids=[ticket("A-203").pk], receptor=receptor)
    w.ids["pending_invoice"] = pending.pk  # last: nothing drains the stamping queue after it
    queued_tasks.clear()
    return w
