"""One Idempotency-Key, one invoice: the requests that lose a race with their own twin answer with its invoice.

The twin's write commits the invoice (with the key) and the tickets' move to ``invoiced`` together, so whatever
refuses the loser (the tickets are no longer open) means the key's invoice is there to be read. The sequential
tests replay the exact interleavings the concurrent ones hit by chance; they run on SQLite too.
"""

import dataclasses

import pytest
from django.db import connection
from rest_framework.test import APIClient

from infra.models import Event
from invoicing.errors import InvoicingError
from invoicing.models import FolioCounter, Invoice
from invoicing.services import invoice_issue
from invoicing.services import issue as issue_module
from tickets.models import Ticket
from tickets.services import api_key_create


def postgres_only(fn):
    fn = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks")(fn)
    return pytest.mark.postgres(fn)


RECEPTOR = {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612", "postal_code": "36257",
            "cfdi_use": "G03", "emails": ["xochilt@example.com"]}


def _twin_runs_when(monkeypatch, when: str, twin):
    """Run ``twin`` (the other request) once, just before (``when="before"``) or just after (``"after"``) the
    first ticket read of the request under test: exactly where a concurrent twin may commit."""
    real, state = issue_module.tickets_read, {"ran": False, "inside": False}

    def read(**kwargs):
        if state["inside"] or state["ran"]:
            return real(**kwargs)
        state["ran"] = state["inside"] = True
        try:
            if when == "before":
                state["twin"] = twin()
                return real(**kwargs)
            rows = real(**kwargs)
            state["twin"] = twin()
            return rows
        finally:
            state["inside"] = False

    monkeypatch.setattr(issue_module, "tickets_read", read)
    return state


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_twin_that_wins_the_race_hands_its_invoice_to_the_loser(merchant, ticket, receptor, monkeypatch, when):
    # "before": the twin committed after our key lookup, before our read (we read the ticket as invoiced).
    # "after": the twin committed between our read and our write (our guarded write finds it changed).
    issue = lambda: invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor,  # noqa: E731
                                  idempotency_key="pos-7")
    state = _twin_runs_when(monkeypatch, when, issue)
    invoice = issue()
    assert state["ran"] and invoice.pk == state["twin"].pk
    assert Invoice.objects.count() == 1 and FolioCounter.objects.get().next_folio == 2
    assert Event.objects.filter(entity="invoice").count() == 1


def test_a_racing_request_with_another_key_is_still_refused(merchant, ticket, receptor, monkeypatch):
    other = lambda: invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor,  # noqa: E731
                                  idempotency_key="pos-8")
    state = _twin_runs_when(monkeypatch, "before", other)
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor, idempotency_key="pos-9")
    assert err.value.code == "ticket_already_invoiced"
    assert err.value.details == {"ticket_id": ticket.pk, "invoice_id": state["twin"].pk}


def test_a_twin_with_the_same_key_for_other_tickets_makes_the_loser_422_not_500(merchant, branch, make_ticket,
                                                                               receptor, monkeypatch):
    # Both pass the key lookup; the loser's write hits the key's unique index (IntegrityError).
    mine, theirs = make_ticket(branch, number="U1"), make_ticket(branch, number="U2")
    twin = lambda: invoice_issue(merchant=merchant, ticket_ids=[theirs.pk], receptor=receptor,  # noqa: E731
                                 idempotency_key="pos-10")
    state = _twin_runs_when(monkeypatch, "after", twin)
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[mine.pk], receptor=receptor, idempotency_key="pos-10")
    assert err.value.code == "idempotency_key_reused"
    assert err.value.details == {"invoice_id": state["twin"].pk, "fields": ["ticket_ids"]}
    assert Invoice.objects.count() == 1 and Ticket.objects.get(pk=mine.pk).status == "open"
    assert FolioCounter.objects.get().next_folio == 2


def test_the_same_key_with_other_receptor_data_is_refused_naming_what_differs(merchant, ticket, receptor):
    first = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor, idempotency_key="k")
    # Spelling that normalises to the same data is the same request.
    same = dataclasses.replace(receptor, rfc=receptor.rfc.lower(), name=f"  {receptor.name.lower()} ",
                               emails=tuple(e.upper() for e in receptor.emails))
    assert invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=same, idempotency_key="k").pk == first.pk
    other = dataclasses.replace(receptor, cfdi_use="G01", emails=("otra@example.com",))
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=other, idempotency_key="k")
    assert (err.value.code, err.value.status) == ("idempotency_key_reused", 422)
    assert err.value.details == {"invoice_id": first.pk, "fields": ["receptor.cfdi_use", "receptor.emails"]}
    assert Invoice.objects.count() == 1


def test_a_key_is_one_merchants(merchant, other_merchant, branch, other_branch, make_ticket, receptor):
    mine, theirs = make_ticket(branch, number="M1"), make_ticket(other_branch, number="M1")
    a = invoice_issue(merchant=merchant, ticket_ids=[mine.pk], receptor=receptor, idempotency_key="shared")
    b = invoice_issue(merchant=other_merchant, ticket_ids=[theirs.pk], receptor=receptor, idempotency_key="shared")
    assert a.pk != b.pk and (a.merchant_id, b.merchant_id) == (merchant.pk, other_merchant.pk)
    with pytest.raises(InvoicingError) as err:  # another merchant's key never answers with its invoice
        invoice_issue(merchant=other_merchant, ticket_ids=[mine.pk], receptor=receptor, idempotency_key="shared")
    assert err.value.code == "idempotency_key_reused" and err.value.details["invoice_id"] == b.pk


# --- the API ----------------------------------------------------------------------------------------------


def _api(merchant) -> APIClient:
    _, plain = api_key_create(merchant=merchant, name="POS", scopes=["invoices"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def _post(client, ticket_ids, key=None, receptor=RECEPTOR):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/invoices", {"ticket_ids": ticket_ids, "receptor": receptor}, format="json",
                       **headers)


def test_api_loser_of_a_race_on_one_key_gets_the_winners_invoice(merchant, ticket, monkeypatch):
    client = _api(merchant)
    state = _twin_runs_when(monkeypatch, "after", lambda: _post(client, [ticket.pk], key="caja-1"))
    response = _post(client, [ticket.pk], key="caja-1")
    assert response.status_code == 202, response.json()
    assert state["twin"].status_code == 202 and response.json()["id"] == state["twin"].json()["id"]


def test_api_same_key_other_body_is_422_naming_the_invoice(merchant, ticket):
    client = _api(merchant)
    first = _post(client, [ticket.pk], key="caja-2").json()
    response = _post(client, [ticket.pk], key="caja-2", receptor={**RECEPTOR, "postal_code": "06600"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert response.json()["error"]["details"] == {"invoice_id": first["id"], "fields": ["receptor.postal_code"]}


def test_api_without_a_key_the_second_request_is_409_naming_the_invoice(merchant, ticket):
    client = _api(merchant)
    first = _post(client, [ticket.pk]).json()
    response = _post(client, [ticket.pk])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ticket_already_invoiced"
    assert response.json()["error"]["details"] == {"ticket_id": ticket.pk, "invoice_id": first["id"]}



@postgres_only
@pytest.mark.django_db(transaction=True)
def test_sixty_four_concurrent_requests_with_one_key_all_name_the_one_invoice(run_together, merchant, branch, make_ticket):
    assert connection.vendor == "postgresql"
    tickets = [make_ticket(branch, number=f"K{i}") for i in range(3)]
    _, plain = api_key_create(merchant=merchant, name="POS", scopes=["invoices"])

    def request():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        response = _post(client, [t.pk for t in reversed(tickets)], key="venta-64")
        return response.status_code, response.json()

    results, errors = run_together([request] * 64)
    assert errors == []
    assert sorted({status for status, _ in results}) == [202], [body for status, body in results if status != 202]
    invoice = Invoice.objects.get()
    assert {body["id"] for _, body in results} == {invoice.pk}
    assert invoice.idempotency_key == "venta-64" and invoice.folio == 1
    assert FolioCounter.objects.get().next_folio == 2
    assert set(Ticket.objects.values_list("status", flat=True)) == {"invoiced"}
    assert Event.objects.filter(entity="invoice").count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_without_a_key_make_one_invoice_and_409s_naming_it(run_together, merchant, ticket, receptor):
    assert connection.vendor == "postgresql"
    results, errors = run_together(
        [lambda: invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)] * 8)
    invoice = Invoice.objects.get()
    assert [r.pk for r in results if r is not None] == [invoice.pk]
    assert len(errors) == 7
    assert {(e.code, e.status) for e in errors} == {("ticket_already_invoiced", 409)}
    assert all(e.details == {"ticket_id": ticket.pk, "invoice_id": invoice.pk} for e in errors)
