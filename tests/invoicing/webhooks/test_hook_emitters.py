"""The stamping pipeline emits invoice.stamped / invoice.failed (in-process, sandbox PAC), and a webhook problem
never breaks stamping."""

import json
from types import SimpleNamespace

import pytest

from invoicing.models import Invoice
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoice_stamp
from invoicing.webhooks import services as hook_services
from invoicing.webhooks.models import WebhookDelivery
from invoicing.webhooks.services import (
    global_deadline_alert_hook,
    invoice_webhook_emit,
    webhook_deliver,
    webhook_endpoint_create,
)


def _stamp(invoice, capture):
    with capture(execute=True):  # run enqueue_after_stamped, as the worker's commit would
        return invoice_stamp(invoice_id=invoice.pk)


def test_stamping_emits_invoice_stamped_with_what_an_erp_needs(merchant, certificate, ticket, receptor, receiver,
                                                               allow_private, django_capture_on_commit_callbacks):
    endpoint, secret = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert _stamp(invoice, django_capture_on_commit_callbacks) == "stamped"
    invoice.refresh_from_db()

    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.endpoint, delivery.event) == (endpoint, "invoice.stamped")
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert receiver.requests[0].verified(secret)["type"] == "invoice.stamped"
    data = json.loads(receiver.requests[0].body)["data"]
    assert data["id"] == invoice.pk and data["kind"] == "ingreso" and data["status"] == "stamped"
    assert data["uuid"] == str(invoice.uuid).upper()
    assert (data["serie"], data["folio"], data["total"]) == (invoice.serie, invoice.folio, "116.00")
    assert data["receptor_rfc"] == "CACX7605101P8" and data["ticket_ids"] == [ticket.pk]
    links = data["links"]
    assert links["xml"].endswith(f"/api/v1/invoices/{invoice.pk}/xml") and links["pdf"].endswith("/pdf")
    assert links["public"]["zip"].endswith(f"/f/{invoice.public_code}/zip")


def test_a_permanent_failure_emits_invoice_failed_with_the_reason(merchant, ticket, receptor, receiver,
                                                                  django_capture_on_commit_callbacks):
    webhook_endpoint_create(merchant=merchant, url=receiver.url, events=["invoice.failed"])
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert invoice_stamp(invoice_id=invoice.pk) == "failed"  # no CSD: the seal step fails for good
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.event == "invoice.failed" and callbacks  # delivery queued after the failure commits
    data = delivery.payload["data"]
    assert data["status"] == "failed" and data["uuid"] is None and data["ticket_ids"] == [ticket.pk]
    assert data["error"]["code"] == "sin_csd" and "certificado" in data["error"]["message"]
    assert "xml" not in data["links"]


def test_a_broken_webhook_emission_does_not_stop_stamping(merchant, certificate, ticket, receptor, receiver,
                                                          monkeypatch, django_capture_on_commit_callbacks):
    webhook_endpoint_create(merchant=merchant, url=receiver.url)

    def explode(invoice):
        raise RuntimeError("bug in the payload")

    monkeypatch.setattr(hook_services, "invoice_event_data", explode)
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert _stamp(invoice, django_capture_on_commit_callbacks) == "stamped"
    assert Invoice.objects.get(pk=invoice.pk).status == "stamped" and not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_global_invoice_is_announced_as_global_invoice_stamped_without_its_ticket_list(
        merchant, certificate, ticket, receptor, receiver):
    webhook_endpoint_create(merchant=merchant, url=receiver.url)
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    Invoice.objects.filter(pk=invoice.pk).update(kind="global", global_periodicity="01", global_months="05",
                                                 global_year=2026)
    assert invoice_webhook_emit(invoice_id=invoice.pk) == 1
    [delivery] = WebhookDelivery.objects.all()
    data = delivery.payload["data"]
    assert delivery.event == "global_invoice.stamped" and data["kind"] == "global"
    assert data["ticket_count"] == 1 and "ticket_ids" not in data
    assert data["global"] == {"periodicity": "01", "months": "05", "year": 2026}


def test_no_endpoint_means_no_delivery_rows(merchant, certificate, ticket, receptor,
                                            django_capture_on_commit_callbacks):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert _stamp(invoice, django_capture_on_commit_callbacks) == "stamped"
    assert not WebhookDelivery.objects.exists()


def test_the_global_deadline_alert_hook_emits_its_event(merchant, receiver):
    webhook_endpoint_create(merchant=merchant, url=receiver.url, events=["global_invoice.deadline_alert"])
    payload = {"period": "2026-05-01..2026-05-01", "periodicity": "01", "deadline": "2026-05-03T06:00:00+00:00",
               "open_tickets": 3, "in_progress": 0, "failed": 1}
    global_deadline_alert_hook(merchant=merchant, period=SimpleNamespace(pk=9), payload=payload)
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.event == "global_invoice.deadline_alert"
    assert delivery.payload["data"] == {"period_id": 9, **payload}
