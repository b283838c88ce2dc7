"""POST /api/v1/invoices/{id}/cancel and /reissue: merchant-scoped, structured errors, documented."""

import pytest
from rest_framework.test import APIClient

from invoicing.models import Cancellation, Invoice
from tickets.services import api_key_create


def _client(merchant, scopes=("invoices",)):
    _, plain = api_key_create(merchant=merchant, name="ERP", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def api(merchant):
    return _client(merchant)


@pytest.fixture
def other_api(other_merchant):
    return _client(other_merchant)


def test_cancel_answers_202_with_the_request_and_its_plan(api, stamped):
    invoice = stamped("116.00")
    response = api.post(f"/api/v1/invoices/{invoice.pk}/cancel", {"motive": "02"}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["invoice"]["status"] == "cancelling"
    c = body["cancellation"]
    assert (c["status"], c["motive"], c["tickets"], c["requires_acceptance"]) == ("requested", "02", "release", False)
    assert c["acceptance_message"].startswith("No requiere aceptación") and c["deadline"].endswith("-03-31")
    assert body["invoice"]["cancellation"]["id"] == c["id"]
    detail = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert detail["cancellation"]["status"] == "requested"


def test_another_merchants_invoice_is_404_and_untouched(api, other_api, stamped):
    invoice = stamped("116.00")
    for path, body in ((f"/api/v1/invoices/{invoice.pk}/cancel", {"motive": "02"}),
                       (f"/api/v1/invoices/{invoice.pk}/reissue", {"receptor": {"rfc": "XIQB891116QE4"}})):
        response = other_api.post(path, body, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert not Cancellation.objects.exists() and Invoice.objects.get(pk=invoice.pk).status == "stamped"


def test_a_replacement_of_another_merchant_is_not_found(api, other_api, stamped, other_branch, make_ticket):
    invoice = stamped("116.00")
    foreign = Invoice.objects.create(merchant=other_branch.merchant, branch=other_branch, serie="F", status="stamped",
                                     receptor_rfc="XAXX010101000", receptor_name="X", receptor_tax_regime="616",
                                     receptor_postal_code="64000", receptor_cfdi_use="S01")
    response = api.post(f"/api/v1/invoices/{invoice.pk}/cancel", {"motive": "01", "replacement_id": foreign.pk},
                        format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "replacement_not_found"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({}, 400, "validation_error"),
    ({"motive": "9"}, 422, "invalid_motive"),
    ({"motive": "04"}, 422, "invalid_motive"),
    ({"motive": "01"}, 422, "replacement_required"),
    ({"motive": "02", "tickets": "quemar"}, 400, "validation_error"),
    ({"motive": "02", "replacement_id": "x"}, 400, "validation_error"),
])
def test_bad_requests_get_structured_errors(api, stamped, body, status, code):
    invoice = stamped("116.00")
    response = api.post(f"/api/v1/invoices/{invoice.pk}/cancel", body, format="json")
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and isinstance(error["details"], dict)


def test_cancel_twice_is_409(api, stamped):
    invoice = stamped("116.00")
    assert api.post(f"/api/v1/invoices/{invoice.pk}/cancel", {"motive": "03"}, format="json").status_code == 202
    response = api.post(f"/api/v1/invoices/{invoice.pk}/cancel", {"motive": "03"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "cancellation_in_progress"


def test_the_tickets_scope_alone_cannot_cancel(merchant, stamped):
    invoice = stamped("116.00")
    response = _client(merchant, scopes=("tickets",)).post(f"/api/v1/invoices/{invoice.pk}/cancel",
                                                            {"motive": "02"}, format="json")
    assert response.status_code == 403


def test_reissue_answers_202_with_both_invoices(api, stamped):
    invoice = stamped("116.00")
    response = api.post(f"/api/v1/invoices/{invoice.pk}/reissue",
                        {"receptor": {"rfc": "xiqb891116qe4", "name": "Berenice Ximo Quezada", "postal_code": "26015"}},
                        format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["invoice"]["status"] == "stamped" and body["replacement"]["status"] == "pending"
    assert body["replacement"]["receptor"]["rfc"] == "XIQB891116QE4"
    assert body["replacement"]["receptor"]["cfdi_use"] == "G03"  # kept from the invoice
    assert body["cancellation"]["status"] == "waiting" and body["cancellation"]["motive"] == "01"
    assert body["cancellation"]["replacement_id"] == body["replacement"]["id"]


def test_reissue_with_a_bad_receptor_is_400_with_the_rules_codes(api, stamped):
    invoice = stamped("116.00")
    response = api.post(f"/api/v1/invoices/{invoice.pk}/reissue", {"receptor": {"cfdi_use": "D01", "rfc": "EKU9003173C9",
                                                                                "name": "ESCUELA KEMPER URGATE",
                                                                                "tax_regime": "601"}}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_receptor" and error["details"]["problems"][0]["code"] == "CFDI40161"
    assert Invoice.objects.count() == 1


def test_stamped_invoices_cannot_be_edited_or_deleted_through_the_api(api, stamped):
    invoice = stamped("116.00")
    for method in ("put", "patch", "delete"):
        response = getattr(api, method)(f"/api/v1/invoices/{invoice.pk}", {"receptor_rfc": "XAXX010101000"},
                                        format="json")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.status, stored.receptor_rfc) == ("stamped", invoice.receptor_rfc)


def test_the_openapi_schema_documents_cancel_and_reissue(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    cancel = schema["paths"]["/api/v1/invoices/{id}/cancel"]["post"]
    assert {"202", "404", "409", "422"} <= set(cancel["responses"])
    assert "cancellation_deadline_passed" in cancel["description"]
    assert "/api/v1/invoices/{id}/reissue" in schema["paths"]
    assert "CancellationOut" in str(schema["components"]["schemas"])
