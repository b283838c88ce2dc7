import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from ticket_api_helpers import b64, cfdi_xml, line

from infra.events import transition
from infra.models import Event
from invoicing.cfdi.builder import build_ingreso
from invoicing.cfdi.inputs import Emisor, Receptor
from invoicing.engine_inputs import engine_ticket
from tickets.models import Ticket


def test_post_ticket_creates_it_with_self_invoice_url_and_expiry(api_client, payload, settings):
    response = api_client.post("/api/v1/tickets", payload(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    ticket = Ticket.objects.get(pk=body["id"])
    assert body["self_invoice_url"] == f"{settings.PUBLIC_BASE_URL}/t/{ticket.public_code}"
    assert body["expires_at"] and body["total"] == "163.50"
    assert [ln["description"] for ln in body["lines"]] == ["REFRESCO", "PAN BLANCO", "CUADERNO"]
    assert ticket.subtotal - ticket.discount + ticket.tax_total == ticket.total
    assert Event.objects.filter(entity="ticket", object_id=ticket.pk, to_status="open").count() == 1


def test_ticket_total_equals_the_invoice_built_from_it_to_the_cent(api_client, payload):
    data = payload(total="100.00", discount="9.99",
                   lines=[line("A", "33.33", "1"), line("B", "0.99", "3", rate="0.000000"),
                          line("C", "73.69", "1", discount="0.00")])
    response = api_client.post("/api/v1/tickets", data, format="json")
    assert response.status_code == 201, response.json()
    ticket = Ticket.objects.get(pk=response.json()["id"])
    cfdi = build_ingreso([engine_ticket(ticket)], emisor=Emisor("EKU9003173C9", "ESCUELA KEMPER URGATE", "601"),
                         receptor=Receptor("XAXX010101000", "PUBLICO EN GENERAL", "06600", "616", "S01"),
                         issued_at=timezone.now(), lugar_expedicion="06600")
    assert cfdi.total == ticket.total == Decimal("100.00")
    assert cfdi.subtotal == ticket.subtotal


def test_prices_without_taxes_are_grossed_up(api_client, payload):
    data = payload(total="116.00", lines=[line("SERVICIO", "100.00", "1", prices_include_tax=False)])
    response = api_client.post("/api/v1/tickets", data, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["subtotal"] == "100.00" and response.json()["tax_total"] == "16.00"


def test_identical_replay_answers_200_with_the_stored_ticket(api_client, payload):
    first = api_client.post("/api/v1/tickets", payload(), format="json").json()
    replay = api_client.post("/api/v1/tickets", payload(sold_at=first["sold_at"]), format="json")
    assert replay.status_code == 200
    assert replay.json()["id"] == first["id"]
    assert Ticket.objects.count() == 1


def test_replay_with_numbers_written_differently_is_still_identical(api_client, payload):
    data = payload()
    api_client.post("/api/v1/tickets", data, format="json")
    data["total"] = 163.5
    data["lines"][0]["quantity"] = 2.0
    assert api_client.post("/api/v1/tickets", data, format="json").status_code == 200


def test_different_ticket_with_the_same_key_answers_409_listing_fields(api_client, payload):
    data = payload()
    api_client.post("/api/v1/tickets", data, format="json")
    data["payment_form"] = "01"
    data["lines"][2]["unit_price"] = "72.00"
    data["total"] = "164.50"
    response = api_client.post("/api/v1/tickets", data, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "ticket_conflict"
    assert set(error["details"]["fields"]) >= {"payment_form", "total", "lines[2].unit_price"}


def test_total_not_matching_the_lines_is_refused_with_the_field(api_client, payload):
    response = api_client.post("/api/v1/tickets", payload(total="150.00"), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_ticket"
    assert "no coincide" in error["details"]["total"][0]


@pytest.mark.parametrize(("field", "value", "path"), [
    ("branch", "NOEXISTE", "branch"),
    ("sold_at", "ayer", "sold_at"),
    ("payment_form", "77", "payment_form"),
    ("currency", "USD", "exchange_rate"),
    ("lines", [], "lines"),
    ("total", "-1", "total"),
])
def test_malformed_fields_are_named_in_details(api_client, payload, field, value, path):
    response = api_client.post("/api/v1/tickets", payload(**{field: value}), format="json")
    assert response.status_code == 400
    assert path in response.json()["error"]["details"]


def test_bad_line_fields_are_named_with_their_position(api_client, payload):
    data = payload()
    data["lines"][1]["quantity"] = "0"
    data["lines"][2]["taxes"] = [{"tax": "002", "factor": "Tasa", "rate": "0.170000"}]
    details = api_client.post("/api/v1/tickets", data, format="json").json()["error"]["details"]
    assert "lines[1].quantity" in details and "lines[2].taxes[0].rate" in details


def test_future_sale_is_refused(api_client, payload):
    data = payload(sold_at=(timezone.now() + dt.timedelta(days=2)).isoformat())
    assert "sold_at" in api_client.post("/api/v1/tickets", data, format="json").json()["error"]["details"]


def test_malformed_json_is_a_400_envelope(api_client):
    response = api_client.post("/api/v1/tickets", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_wrong_content_type_is_a_415_envelope(api_client):
    response = api_client.post("/api/v1/tickets", data="hola", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_wrong_method_is_a_405_envelope(api_client):
    response = api_client.delete("/api/v1/tickets")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_body_too_large_is_a_413(api_client, payload, settings):
    settings.API_MAX_BODY_BYTES = 100
    response = api_client.post("/api/v1/tickets", payload(), format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_ticket_as_cfdi_document_40_without_receptor(api_client):
    data = {"branch": "CENTRO", "number": "D-1", "document": b64(cfdi_xml())}
    response = api_client.post("/api/v1/tickets", data, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["total"] == "116.00" and body["subtotal"] == "100.00" and body["tax_total"] == "16.00"
    assert bytes(Ticket.objects.get(pk=body["id"]).document) == cfdi_xml()


def test_ticket_as_cfdi_document_33_takes_number_and_branch_from_the_xml(api_client):
    data = {"document": b64(cfdi_xml(version="3.3", with_receptor=True))}
    response = api_client.post("/api/v1/tickets", data, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["number"] == "T9001" and response.json()["branch"] == "CENTRO"


def test_document_with_entities_or_garbage_is_refused(api_client):
    evil = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><cfdi:Comprobante '
            b'xmlns:cfdi="http://www.sat.gob.mx/cfd/4">&a;</cfdi:Comprobante>')
    for document in (b64(evil), "%%%no-base64", b64(b"<not-xml")):
        response = api_client.post("/api/v1/tickets", {"number": "X", "document": document}, format="json")
        assert response.status_code == 400
        assert "document" in response.json()["error"]["details"]


def test_document_whose_total_does_not_add_up_is_refused(api_client):
    data = {"branch": "CENTRO", "number": "D-2", "document": b64(cfdi_xml(total="120.00"))}
    assert api_client.post("/api/v1/tickets", data, format="json").status_code == 400


def test_get_ticket_shows_lines_and_its_invoice(api_client, ticket, branch):
    from invoicing.models import Invoice, InvoiceTicket

    invoice = Invoice.objects.create(merchant=ticket.merchant, branch=branch, serie="F", receptor_rfc="XAXX010101000",
                                     receptor_name="X", receptor_tax_regime="616", receptor_postal_code="06600",
                                     receptor_cfdi_use="S01", total=ticket.total)
    InvoiceTicket.objects.create(invoice=invoice, ticket=ticket, amount=ticket.total)
    body = api_client.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert body["number"] == ticket.number and len(body["lines"]) == 1
    assert body["invoices"][0]["id"] == invoice.pk
    assert body["invoices"][0]["url"].endswith(f"/api/v1/invoices/{invoice.pk}")


def test_list_filters_and_answers_count_and_total_of_all_matches(api_client, branch, make_ticket):
    for i in range(5):
        make_ticket(branch, number=f"L-{i}", total=Decimal("10.00"))
    voided = make_ticket(branch, number="V-1", total=Decimal("99.00"))
    transition(voided, entity="ticket", to="void", expected="open")
    body = api_client.get("/api/v1/tickets", {"status": "open", "limit": 2}).json()
    assert body["count"] == 5 and body["total_amount"] == "50.00"
    assert len(body["results"]) == 2 and body["limit"] == 2
    assert api_client.get("/api/v1/tickets", {"number": "V-1"}).json()["count"] == 1
    assert api_client.get("/api/v1/tickets", {"invoiced": "false"}).json()["count"] == 6
    assert api_client.get("/api/v1/tickets", {"invoiced": "true"}).json()["count"] == 0
    future = (timezone.now() + dt.timedelta(days=1)).isoformat()
    assert api_client.get("/api/v1/tickets", {"sold_from": future}).json()["count"] == 0
    assert api_client.get("/api/v1/tickets", {"branch": "OTRA"}).json()["count"] == 0


def test_list_limit_is_capped_and_bad_filters_are_400(api_client, settings):
    settings.API_LIST_MAX_LIMIT = 10
    assert api_client.get("/api/v1/tickets", {"limit": 1000}).json()["limit"] == 10
    response = api_client.get("/api/v1/tickets", {"status": "nope", "sold_from": "ayer"})
    assert response.status_code == 400
    assert {"status", "sold_from"} <= set(response.json()["error"]["details"])


def test_validate_says_why_not(api_client, branch, make_ticket):
    t = make_ticket(branch, number="V-9", total=Decimal("116.00"))
    date = t.sold_at.astimezone(t.merchant.tzinfo).date().isoformat()
    ok = api_client.get("/api/v1/tickets/validate", {"number": "V-9", "total": "116.00", "date": date}).json()
    assert ok["can_self_invoice"] is True and ok["ticket"]["id"] == t.pk
    wrong = api_client.get("/api/v1/tickets/validate", {"number": "V-9", "total": "115.00"}).json()
    assert wrong == {"can_self_invoice": False, "code": "total_mismatch",
                     "message": "El total no coincide con el ticket.", "ticket": wrong["ticket"]}
    assert api_client.get("/api/v1/tickets/validate", {"number": "NADA"}).json()["code"] == "not_found"
    assert api_client.get("/api/v1/tickets/validate", {"number": "V-9", "date": "2020-01-01"}).json()["code"] == \
        "date_mismatch"
    assert api_client.get("/api/v1/tickets/validate").status_code == 400


def test_expire_ends_self_invoicing_but_keeps_the_ticket_open(api_client, ticket):
    response = api_client.post(f"/api/v1/tickets/{ticket.pk}/expire")
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.expires_at <= timezone.now()
    assert response.json()["can_self_invoice"] is False
    check = api_client.get("/api/v1/tickets/validate", {"number": ticket.number}).json()
    assert check["code"] == "expired"
    assert api_client.post(f"/api/v1/tickets/{ticket.pk}/expire").status_code == 200  # idempotent


def test_void_moves_to_void_with_an_event_and_is_idempotent(api_client, ticket):
    response = api_client.post(f"/api/v1/tickets/{ticket.pk}/void", {"reason": "devolución"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "void"
    assert Event.objects.filter(entity="ticket", object_id=ticket.pk, to_status="void").count() == 1
    assert api_client.post(f"/api/v1/tickets/{ticket.pk}/void").status_code == 200
    assert api_client.post(f"/api/v1/tickets/{ticket.pk}/expire").status_code == 409


@pytest.mark.parametrize("status", ["invoiced", "globalized"])
def test_void_is_refused_once_invoiced_or_globalized(api_client, ticket, status):
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    response = api_client.post(f"/api/v1/tickets/{ticket.pk}/void")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ticket_not_voidable"
    assert Ticket.objects.get(pk=ticket.pk).status == status


@pytest.mark.parametrize("ticket_id", ["999999", "²", "１２", "9" * 30])
def test_unknown_ticket_is_a_404_envelope(api_client, ticket_id):
    # «²» and full-width digits pass str.isdigit() but not int(): found by the schema fuzzer as a 500.
    for response in (api_client.get(f"/api/v1/tickets/{ticket_id}"), api_client.post(f"/api/v1/tickets/{ticket_id}/void"),
                     api_client.post(f"/api/v1/tickets/{ticket_id}/expire")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "ticket_not_found"


def test_second_merchant_key_sees_and_touches_nothing(api_client, other_api_client, payload, ticket):
    assert other_api_client.get(f"/api/v1/tickets/{ticket.pk}").status_code == 404
    assert other_api_client.post(f"/api/v1/tickets/{ticket.pk}/void").status_code == 404
    assert other_api_client.post(f"/api/v1/tickets/{ticket.pk}/expire").status_code == 404
    assert other_api_client.get("/api/v1/tickets").json()["count"] == 0
    assert other_api_client.get("/api/v1/tickets/validate", {"number": ticket.number}).json()["code"] == "not_found"
    # The other merchant has its own CENTRO branch: the same key there is a different ticket.
    response = other_api_client.post("/api/v1/tickets", payload(number=ticket.number), format="json")
    assert response.status_code == 201
    assert Ticket.objects.get(pk=ticket.pk).status == "open"
    assert Ticket.objects.get(pk=response.json()["id"]).merchant_id != ticket.merchant_id


def test_backslashes_and_accents_survive_the_bulk_insert(api_client, payload):
    data = payload(number="Ñ\\1")
    data["lines"][0]["description"] = "JABÓN C:\\TIENDA\\N 100%"
    response = api_client.post("/api/v1/tickets", data, format="json")
    assert response.status_code == 201, response.json()
    ticket = Ticket.objects.get(pk=response.json()["id"])
    assert ticket.number == "Ñ\\1"
    assert ticket.lines.get(position=1).description == "JABÓN C:\\TIENDA\\N 100%"
