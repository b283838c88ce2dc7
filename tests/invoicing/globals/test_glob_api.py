"""Factura global API: list, issue for a period or tickets, eligible; scope and merchant isolation."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from invoicing.services.global_invoice import global_invoice_issue
from tickets.models import Ticket
from tickets.services import api_key_create


def client_for(merchant, scopes=("invoices",)):
    _, plain = api_key_create(merchant=merchant, name="ERP", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def api(merchant, branch):
    return client_for(merchant)


@pytest.fixture
def other_api(other_merchant, other_branch):
    return client_for(other_merchant)


def test_eligible_counts_and_totals_a_period(api, branch, sale):
    sale(branch, "A", "2026-03-07 10:00", total="100.00", payment_form="01")
    sale(branch, "B", "2026-03-08 10:00", total="50.50", payment_form="04")
    sale(branch, "C", "2026-04-01 00:00")
    r = api.get("/api/v1/global-invoices/eligible", {"period": "2026-03"})
    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["count"], body["total"], body["closed"]) == (2, "150.50", True)
    assert body["by_branch"] == [{"branch": "CENTRO", "postal_code": "06600", "count": 2, "total": "150.50"}]
    assert [p["payment_form"] for p in body["by_payment_form"]] == ["01", "04"]


def test_eligible_with_a_bad_period_is_a_422_envelope(api):
    r = api.get("/api/v1/global-invoices/eligible", {"period": "marzo"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period"
    assert api.get("/api/v1/global-invoices/eligible").json()["error"]["code"] == "validation_error"


def test_post_a_period_issues_and_lists(api, branch, sale):
    sale(branch, "A", "2026-03-07 10:00")
    r = api.post("/api/v1/global-invoices", {"period": "2026-03"}, format="json")
    assert r.status_code == 201, r.json()
    [inv] = r.json()["invoices"]
    assert (inv["status"], inv["global_months"], inv["ticket_count"], inv["period"]) == (
        "pending", "03", 1, "2026-03-01..2026-03-31")
    listed = api.get("/api/v1/global-invoices").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == inv["id"]
    detail = api.get(f"/api/v1/global-invoices/{inv['id']}").json()
    assert detail["ticket_ids"] == [Ticket.objects.get().pk]
    again = api.post("/api/v1/global-invoices", {"period": "2026-03"}, format="json")
    assert again.status_code == 200 and again.json()["invoices"] == []


def test_post_ticket_ids_answers_which_went_in_and_why_not(api, branch, other_branch, sale):
    ok = sale(branch, "OK", "2026-03-07 10:00")
    void = sale(branch, "V", "2026-03-07 11:00")
    Ticket.objects.filter(pk=void.pk).update(status="void")
    foreign = sale(other_branch, "X", "2026-03-07 10:00")
    r = api.post("/api/v1/global-invoices", {"ticket_ids": [ok.pk, void.pk, foreign.pk]}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["period"] == "2026-03-01..2026-03-31" and body["included"] == [ok.pk]
    assert {e["ticket_id"]: e["code"] for e in body["excluded"]} == {void.pk: "ticket_void",
                                                                     foreign.pk: "ticket_not_found"}
    assert Ticket.objects.get(pk=foreign.pk).status == "open"


def test_post_for_an_open_period_or_nothing_is_refused(api, sale, branch):
    r = api.post("/api/v1/global-invoices", {"period": "2099-01"}, format="json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "period_not_closed"
    r = api.post("/api/v1/global-invoices", {}, format="json")
    assert r.status_code == 400 and "period" in r.json()["error"]["details"]
    r = api.post("/api/v1/global-invoices", {"period": "2026-03", "branch": "NOPE"}, format="json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "branch_not_found"


def test_other_merchant_sees_and_takes_nothing_of_ours(merchant, api, other_api, branch, sale):
    t = sale(branch, "A", "2026-03-07 10:00", total="99.00")
    [g] = global_invoice_issue(merchant=merchant, period="2026-03")
    assert other_api.get("/api/v1/global-invoices").json()["count"] == 0
    assert other_api.get(f"/api/v1/global-invoices/{g.pk}").status_code == 404
    assert other_api.get("/api/v1/global-invoices/eligible", {"period": "2026-03"}).json()["count"] == 0
    r = other_api.post("/api/v1/global-invoices", {"ticket_ids": [t.pk]}, format="json")
    assert r.status_code == 404
    Ticket.objects.filter(pk=t.pk).update(status="open")
    r = other_api.post("/api/v1/global-invoices", {"period": "2026-03"}, format="json")
    assert r.status_code == 200 and r.json()["invoices"] == []
    assert Ticket.objects.get(pk=t.pk).total == Decimal("99.00")


def test_scope_and_key_are_required(merchant, branch):
    no_scope = client_for(merchant, scopes=("tickets",))
    assert no_scope.get("/api/v1/global-invoices").status_code == 403
    assert APIClient().get("/api/v1/global-invoices").json()["error"]["code"] == "not_authenticated"
