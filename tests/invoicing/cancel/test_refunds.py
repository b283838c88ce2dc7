"""Refunds from the POS (POST /api/v1/tickets/{id}/refunds): open tickets reduced or voided, invoiced tickets and
tickets in a global credited by an egreso that passes cfdi_verify and ties back to the ticket."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from lxml import etree
from rest_framework.test import APIClient

from invoicing.cfdi.verify import verify
from invoicing.models import Invoice, Refund
from invoicing.services import invoice_issue
from tickets.models import Ticket
from tickets.services import LineInput, api_key_create, ticket_create

NS = {"cfdi": "http://www.sat.gob.mx/cfd/4"}


@pytest.fixture
def pos(merchant, certificate):
    _, plain = api_key_create(merchant=merchant, name="POS", scopes=["tickets"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def sale(branch):
    """A ticket of three lines: 2 × 58.00 (IVA 16 %), 1 × 25.50 (IVA 0 %), 3 × 10.00 with 3.00 off (IVA 16 %)."""
    counter = iter(range(1, 100))

    def make(**kwargs):
        lines = [
            LineInput("50202306", "H87", "REFRESCO 600 ML", Decimal("2"), Decimal("58.00")),
            LineInput("50181900", "H87", "PAN BLANCO", Decimal("1"), Decimal("25.50"),
                      taxes=[{"tax": "002", "factor": "Tasa", "rate": "0.000000"}]),
            LineInput("14111514", "H87", "CUADERNO", Decimal("3"), Decimal("10.00"), discount=Decimal("3.00")),
        ]
        return ticket_create(merchant=branch.merchant, branch=branch, number=f"V{next(counter)}",
                             sold_at=timezone.now() - dt.timedelta(hours=1), lines=lines, **kwargs)

    return make


def refund(pos, ticket, **body):
    return pos.post(f"/api/v1/tickets/{ticket.pk}/refunds", body, format="json")


def cfdi(invoice):
    return etree.fromstring(bytes(invoice.stamped_xml))


def test_an_open_ticket_is_reduced_by_lines_and_invoices_the_rest(pos, sale, receptor, stamp_all, sat_cert):
    ticket = sale()
    assert ticket.total == Decimal("168.50")
    response = refund(pos, ticket, refund_key="DEV-1", lines=[{"position": 1, "quantity": "1"}])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["amount"], body["ticket"]["status"], body["credit_note"]) == (
        "reduced", "58.00", "open", None)
    ticket.refresh_from_db()
    assert ticket.total == Decimal("110.50") and ticket.status == "open"
    assert ticket.lines.get(position=1).quantity == 1
    invoice = invoice_issue(merchant=ticket.merchant, ticket_ids=[ticket.pk], receptor=receptor)
    stamp_all()
    invoice.refresh_from_db()
    assert invoice.status == "stamped", invoice.last_error_message
    assert cfdi(invoice).get("Total") == "110.50"
    assert verify(bytes(invoice.stamped_xml), sat_cert=sat_cert).ok


def test_an_open_ticket_is_reduced_by_an_amount(pos, sale, receptor, stamp_all, sat_cert):
    ticket = sale()
    assert refund(pos, ticket, refund_key="DEV-A", amount="50.00").status_code == 201
    ticket.refresh_from_db()
    assert ticket.total == Decimal("118.50")
    assert sum(line.amount - line.discount for line in ticket.lines.all()) == Decimal("118.50")
    invoice = invoice_issue(merchant=ticket.merchant, ticket_ids=[ticket.pk], receptor=receptor)
    stamp_all()
    invoice.refresh_from_db()
    assert invoice.status == "stamped", invoice.last_error_message
    assert cfdi(invoice).get("Total") == "118.50"
    assert verify(bytes(invoice.stamped_xml), sat_cert=sat_cert).ok


def test_an_open_ticket_refunded_in_full_is_voided(pos, sale):
    ticket = sale()
    response = refund(pos, ticket, refund_key="DEV-T", amount="168.50")
    assert response.status_code == 201 and response.json()["kind"] == "voided"
    assert Ticket.objects.get(pk=ticket.pk).status == "void"
    assert refund(pos, ticket, refund_key="DEV-T2", amount="1.00").json()["error"]["code"] == "ticket_void"


@pytest.mark.parametrize(("returned_goods", "relation"), [(False, "01"), (True, "03")])
def test_an_invoiced_ticket_gets_a_credit_note_related_to_its_invoice(pos, sale, receptor, stamp_all, sat_cert,
                                                                      returned_goods, relation):
    ticket = sale()
    invoice = invoice_issue(merchant=ticket.merchant, ticket_ids=[ticket.pk], receptor=receptor)
    stamp_all()
    invoice.refresh_from_db()
    response = refund(pos, ticket, refund_key="DEV-9", returned_goods=returned_goods,
                      lines=[{"position": 1, "quantity": "1"}, {"position": 3, "quantity": "3"}])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "credit_note" and body["amount"] == "85.00"  # 58.00 + (30.00 − 3.00)
    assert (body["credit_note"]["relation_type"], body["credit_note"]["related_invoice_id"]) == (relation, invoice.pk)
    stamp_all()
    note = Invoice.objects.get(kind="egreso")
    assert note.status == "stamped", note.last_error_message
    root = cfdi(note)
    assert (root.get("TipoDeComprobante"), root.get("Total"), root.get("FormaPago")) == ("E", "85.00", "01")
    rel = root.find("cfdi:CfdiRelacionados", NS)
    assert rel.get("TipoRelacion") == relation
    assert rel.find("cfdi:CfdiRelacionado", NS).get("UUID") == str(invoice.uuid).upper()
    rec = root.find("cfdi:Receptor", NS)
    assert (rec.get("Rfc"), rec.get("UsoCFDI")) == (receptor.rfc, "G02")
    result = verify(bytes(note.stamped_xml), sat_cert=sat_cert)
    assert result.ok, result.summary()
    assert Ticket.objects.get(pk=ticket.pk).status == "invoiced"  # the sale stays invoiced
    assert Invoice.objects.get(pk=invoice.pk).status == "stamped"


def test_credit_notes_add_up_to_at_most_the_ticket(pos, sale, receptor, stamp_all):
    ticket = sale()
    invoice_issue(merchant=ticket.merchant, ticket_ids=[ticket.pk], receptor=receptor)
    stamp_all()
    assert refund(pos, ticket, refund_key="A", lines=[{"position": 1, "quantity": "2"}]).status_code == 201
    over = refund(pos, ticket, refund_key="B", lines=[{"position": 1, "quantity": "1"}])
    assert over.status_code == 422 and over.json()["error"]["code"] == "refund_exceeds_line"
    assert refund(pos, ticket, refund_key="C", amount="52.50").status_code == 201  # 168.50 − 116.00
    too_much = refund(pos, ticket, refund_key="D", amount="0.01")
    assert too_much.status_code == 422 and too_much.json()["error"]["details"]["remaining"] == "0.00"
    stamp_all()
    notes = Invoice.objects.filter(kind="egreso")
    assert [n.status for n in notes] == ["stamped", "stamped"]
    assert sum(n.total for n in notes) == ticket.total  # totals tie back to the ticket


def test_a_ticket_in_a_global_gets_a_credit_note_to_the_global(pos, branch, make_ticket, merchant, stamp_all,
                                                               sat_cert):
    from invoicing.services.global_invoice import global_invoice_issue

    merchant.global_periodicity = "01"
    merchant.save()
    yesterday = (timezone.localtime(timezone.now(), merchant.tzinfo) - dt.timedelta(days=1)).replace(hour=12)
    ticket = make_ticket(branch, number="G1", total=Decimal("232.00"), sold_at=yesterday)
    make_ticket(branch, number="G2", total=Decimal("58.00"), sold_at=yesterday)
    [g] = global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat())
    pending = refund(pos, ticket, refund_key="G-1", amount="100.00")
    assert pending.status_code == 409 and pending.json()["error"]["code"] == "invoice_not_stamped"
    stamp_all()
    response = refund(pos, ticket, refund_key="G-1", amount="100.00")  # the POS retries with the same key
    assert response.status_code == 201, response.json()
    assert response.json()["credit_note"]["related_invoice_id"] == g.pk
    stamp_all()
    note = Invoice.objects.get(kind="egreso")
    root = cfdi(note)
    rec = root.find("cfdi:Receptor", NS)
    assert (rec.get("Rfc"), rec.get("UsoCFDI"), rec.get("RegimenFiscalReceptor")) == ("XAXX010101000", "G02", "616")
    assert root.get("Total") == "100.00"
    assert root.find("cfdi:Conceptos/cfdi:Concepto", NS).get("NoIdentificacion") == "G1"
    assert verify(bytes(note.stamped_xml), sat_cert=sat_cert).ok
    assert Ticket.objects.get(pk=ticket.pk).status == "globalized"


def test_the_refund_key_makes_it_idempotent(pos, sale):
    ticket = sale()
    first = refund(pos, ticket, refund_key="K", amount="10.00")
    again = refund(pos, ticket, refund_key="K", amount="10.00")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Ticket.objects.get(pk=ticket.pk).total == Decimal("158.50")  # reduced once
    other = refund(pos, ticket, refund_key="K", amount="11.00")
    assert other.status_code == 422 and other.json()["error"]["code"] == "refund_key_reused"
    header = pos.post(f"/api/v1/tickets/{ticket.pk}/refunds", {"amount": "1.00"}, format="json",
                      HTTP_IDEMPOTENCY_KEY="H-1")
    assert header.status_code == 201 and header.json()["refund_key"] == "H-1"
    assert Refund.objects.count() == 2


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"amount": "10.00"}, 400, "validation_error"),
    ({"refund_key": "x"}, 400, "validation_error"),
    ({"refund_key": "x", "amount": "10.00", "lines": [{"position": 1, "quantity": "1"}]}, 400, "validation_error"),
    ({"refund_key": "x", "amount": "-1.00"}, 400, "validation_error"),
    ({"refund_key": "x", "amount": "500.00"}, 422, "refund_exceeds_ticket"),
    ({"refund_key": "x", "lines": [{"position": 9, "quantity": "1"}]}, 422, "line_not_found"),
    ({"refund_key": "x", "lines": [{"position": 1, "quantity": "0"}]}, 400, "validation_error"),
])
def test_bad_refunds_get_structured_errors_and_change_nothing(pos, sale, body, status, code):
    ticket = sale()
    response = refund(pos, ticket, **body)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert Ticket.objects.get(pk=ticket.pk).total == Decimal("168.50") and not Refund.objects.exists()


def test_another_merchants_ticket_is_404(pos, other_branch, make_ticket):
    foreign = make_ticket(other_branch, number="X1")
    response = refund(pos, foreign, refund_key="x", amount="1.00")
    assert response.status_code == 404 and response.json()["error"]["code"] == "ticket_not_found"
    assert Ticket.objects.get(pk=foreign.pk).total == Decimal("116.00")
    assert refund(pos, type("T", (), {"pk": "abc"})(), refund_key="x", amount="1.00").status_code == 404


def test_the_invoices_scope_alone_cannot_refund(merchant, sale):
    _, plain = api_key_create(merchant=merchant, name="ERP", scopes=["invoices"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert refund(client, sale(), refund_key="x", amount="1.00").status_code == 403


def test_the_tickets_api_catch_all_still_answers_json_404(pos):
    response = pos.get("/api/v1/tickets/1/nada")
    assert response.status_code == 404 and response.json()["error"]["code"]
