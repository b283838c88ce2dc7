"""Invoices API: create (202 + Idempotency-Key), list with filters, detail, documents, resend, isolation."""

import pytest
from django.core import mail
from rest_framework.test import APIClient

from invoicing.models import Invoice
from invoicing.services.stamping import invoice_stamp
from invoicing.tasks import send_invoice_email
from tickets.services import api_key_create

RECEPTOR = {"rfc": "cacx7605101p8", "name": "Xochilt Casas Chavez", "tax_regime": "612", "postal_code": "36257",
            "cfdi_use": "G03", "emails": ["xochilt@example.com"]}


def _client(merchant, scopes=("invoices",)):
    _, plain = api_key_create(merchant=merchant, name="ERP", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def api(merchant, certificate):
    return _client(merchant)


@pytest.fixture
def other_api(other_merchant):
    return _client(other_merchant)


def _create(api, ticket_ids, key=None, receptor=RECEPTOR):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/v1/invoices", {"ticket_ids": ticket_ids, "receptor": receptor}, format="json", **headers)


def test_create_answers_202_pending_and_replays_with_the_idempotency_key(api, ticket):
    first = _create(api, [ticket.pk], key="venta-1")
    assert first.status_code == 202, first.json()
    body = first.json()
    assert body["status"] == "pending" and body["ticket_ids"] == [ticket.pk]
    assert body["receptor"]["rfc"] == "CACX7605101P8" and body["receptor"]["name"] == "XOCHILT CASAS CHAVEZ"
    again = _create(api, [ticket.pk], key="venta-1")
    assert again.status_code == 202 and again.json()["id"] == body["id"]
    assert Invoice.objects.count() == 1


def test_reusing_an_idempotency_key_for_other_tickets_is_422(api, branch, make_ticket):
    a, b = make_ticket(branch, number="A"), make_ticket(branch, number="B")
    assert _create(api, [a.pk], key="k").status_code == 202
    response = _create(api, [b.pk], key="k")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_second_request_for_an_invoiced_ticket_is_409_with_a_spanish_message(api, ticket):
    first = _create(api, [ticket.pk]).json()
    response = _create(api, [ticket.pk])
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "ticket_already_invoiced",
                                         "message": f"El ticket {ticket.number} ya fue facturado.",
                                         "details": {"ticket_id": ticket.pk, "invoice_id": first["id"]}}


def test_bad_receptor_is_400_with_details_per_field(api, ticket):
    response = _create(api, [ticket.pk], receptor={**RECEPTOR, "rfc": "NOPE", "postal_code": "1"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_receptor" and {"rfc", "postal_code"} <= set(error["details"])


def test_malformed_body_is_400_in_the_envelope(api):
    response = api.post("/api/v1/invoices", {"ticket_ids": "x"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_key_without_the_invoices_scope_is_403(merchant, ticket):
    response = _create(_client(merchant, scopes=("tickets",)), [ticket.pk])
    assert response.status_code == 403 and response.json()["error"]["code"]


def test_no_key_is_401(ticket):
    assert APIClient().get("/api/v1/invoices").status_code == 401


def test_another_merchant_cannot_invoice_see_or_download_my_invoices(api, other_api, ticket):
    invoice_id = _create(api, [ticket.pk]).json()["id"]
    assert _create(other_api, [ticket.pk]).status_code == 404
    assert other_api.get(f"/api/v1/invoices/{invoice_id}").status_code == 404
    assert other_api.get(f"/api/v1/invoices/{invoice_id}/xml").status_code == 404
    assert other_api.post(f"/api/v1/invoices/{invoice_id}/resend", {}, format="json").status_code == 404
    assert other_api.get("/api/v1/invoices").json()["count"] == 0


def test_list_filters_by_status_rfc_and_uuid(api, branch, make_ticket):
    a, b = make_ticket(branch, number="A"), make_ticket(branch, number="B")
    stamped_id = _create(api, [a.pk]).json()["id"]
    _create(api, [b.pk], receptor={**RECEPTOR, "rfc": "EKU9003173C9", "name": "ESCUELA KEMPER URGATE",
                                   "tax_regime": "601", "postal_code": "42501"})
    invoice_stamp(invoice_id=stamped_id)
    uuid = Invoice.objects.get(pk=stamped_id).uuid
    assert api.get("/api/v1/invoices").json()["count"] == 2
    assert [i["id"] for i in api.get("/api/v1/invoices?status=stamped").json()["results"]] == [stamped_id]
    assert api.get("/api/v1/invoices?rfc=EKU9003173C9").json()["count"] == 1
    assert [i["id"] for i in api.get(f"/api/v1/invoices?uuid={uuid}").json()["results"]] == [stamped_id]
    assert api.get("/api/v1/invoices?uuid=not-a-uuid").json()["count"] == 0
    page = api.get("/api/v1/invoices?limit=1&offset=1").json()
    assert page["count"] == 2 and len(page["results"]) == 1
    assert api.get("/api/v1/invoices?limit=x").status_code == 400
    assert api.get("/api/v1/invoices?limit=²").status_code == 400  # isdigit() alone would let int() fail
    assert api.get("/api/v1/invoices?date_from=2026-13-01").status_code == 400


def test_documents_of_a_stamped_invoice_and_409_before(api, ticket):
    invoice_id = _create(api, [ticket.pk]).json()["id"]
    assert api.get(f"/api/v1/invoices/{invoice_id}/xml").status_code == 409
    assert invoice_stamp(invoice_id=invoice_id) == "stamped"
    detail = api.get(f"/api/v1/invoices/{invoice_id}").json()
    assert detail["status"] == "stamped" and len(detail["uuid"]) == 36 and detail["links"]["pdf"].endswith("/pdf")
    xml = api.get(f"/api/v1/invoices/{invoice_id}/xml")
    assert xml.status_code == 200 and b"TimbreFiscalDigital" in xml.content
    assert detail["uuid"] in xml["Content-Disposition"]
    assert api.get(f"/api/v1/invoices/{invoice_id}/pdf").content.startswith(b"%PDF")
    assert api.get(f"/api/v1/invoices/{invoice_id}/zip").content.startswith(b"PK")
    assert api.get(f"/api/v1/invoices/{invoice_id}/docx").status_code == 404


def test_resend_queues_an_email_to_the_given_address(api, ticket, queued_tasks, django_capture_on_commit_callbacks):
    invoice_id = _create(api, [ticket.pk]).json()["id"]
    assert api.post(f"/api/v1/invoices/{invoice_id}/resend", {}, format="json").status_code == 409
    invoice_stamp(invoice_id=invoice_id)
    queued_tasks.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/invoices/{invoice_id}/resend", {"emails": ["otra@example.com"]},
                            format="json")
    assert response.status_code == 202
    queue, func, task_args = queued_tasks[0]
    assert (queue, func) == ("deliver", "invoicing.tasks.send_invoice_email")
    send_invoice_email(*task_args)
    assert mail.outbox[-1].to == ["otra@example.com"] and len(mail.outbox[-1].attachments) == 2
