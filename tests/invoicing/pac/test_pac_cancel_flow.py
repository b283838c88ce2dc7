"""The cancellation service end to end against the Finkok and SW fakes (PROTOCOLS.md §1.4, §2.3, §3): the request,
SAT's status until it is final, acceptance and rejection, SAT down."""

from decimal import Decimal

import pytest
from django.utils import timezone

from invoicing.models import Cancellation, Invoice
from invoicing.services import invoice_issue
from invoicing.services.cancel import cancellation_advance, cancellation_request
from invoicing.services.stamping import invoices_stamp_queued
from tickets.models import Ticket


@pytest.fixture
def through(monkeypatch, settings, merchant):
    """through(pac): every provider look-up answers ``pac`` (stamping and cancelling alike)."""
    settings.INVOICE_STAMP_LINGER_MS = 0

    def use(pac):
        merchant.pac = pac.name
        merchant.save()
        monkeypatch.setattr("invoicing.pac.get_pac", lambda _merchant: pac)
        return pac

    return use


@pytest.fixture
def invoice(branch, make_ticket, certificate, receptor):
    def make():
        ticket = make_ticket(branch, total=Decimal("5800.00"))
        issued = invoice_issue(merchant=branch.merchant, ticket_ids=[ticket.pk], receptor=receptor)
        invoices_stamp_queued()
        issued.refresh_from_db()
        assert issued.status == "stamped", issued.last_error_message
        return issued

    return make


def advance(cancellation):
    Cancellation.objects.filter(pk=cancellation.pk).update(next_check_at=None)
    return cancellation_advance(cancellation_id=cancellation.pk)


def test_finkok_cancel_without_acceptance_is_confirmed_by_the_sat_status(through, finkok, finkok_server, invoice):
    through(finkok)
    document = invoice()
    c = cancellation_request(merchant=document.merchant, invoice_id=document.pk, motive="02")
    assert advance(c) == "cancelled"  # 201, then get_sat_status: Cancelado sin aceptación
    assert [r["operation"] for r in finkok_server.requests][-2:] == ["cancel", "get_sat_status"]
    document.refresh_from_db()
    assert document.status == "cancelled"
    assert Ticket.objects.get(invoice_links__invoice=document).status == "open"
    stored = Cancellation.objects.get()
    assert stored.sat_status == "Cancelado sin aceptación" and b"CancelaCFDResponse" in bytes(stored.acuse)


@pytest.mark.parametrize(("answer", "final", "invoice_status"), [("accept", "cancelled", "cancelled"),
                                                                   ("reject", "rejected", "stamped")])
def test_finkok_acceptance_is_followed_until_the_receptor_answers(through, finkok, finkok_server, invoice, answer,
                                                                  final, invoice_status):
    through(finkok)
    finkok_server.acceptance = True
    document = invoice()
    c = cancellation_request(merchant=document.merchant, invoice_id=document.pk, motive="02")
    assert advance(c) == "pending"
    assert advance(c) == "pending"
    assert Invoice.objects.get(pk=document.pk).status == "cancel_pending"
    finkok_server.answer(str(document.uuid), answer)
    assert advance(c) == final
    assert Invoice.objects.get(pk=document.pk).status == invoice_status


def test_finkok_sat_down_is_retried_then_final(through, finkok, finkok_server, invoice):
    through(finkok)
    document = invoice()
    finkok_server.modes["cancel"] = "708"
    c = cancellation_request(merchant=document.merchant, invoice_id=document.pk, motive="03")
    assert advance(c) == "requested"
    c.refresh_from_db()
    assert c.last_code == "708" and c.next_check_at > timezone.now()
    finkok_server.modes["cancel"] = "ok"
    assert advance(c) == "cancelled"
    assert Ticket.objects.get(invoice_links__invoice=document).status == "void"


def test_finkok_no_cancelable_is_refused_and_the_invoice_stays_stamped(through, finkok, finkok_server, invoice):
    through(finkok)
    document = invoice()
    finkok_server.modes["cancel"] = "no_cancelable"
    c = cancellation_request(merchant=document.merchant, invoice_id=document.pk, motive="02")
    assert advance(c) == "refused"
    c.refresh_from_db()
    assert c.last_code == "no_cancelable" and Invoice.objects.get(pk=document.pk).status == "stamped"


def test_finkok_motivo_01_sends_the_replacements_uuid(through, finkok, finkok_server, invoice):
    from invoicing.services.reissue import invoice_reissue

    through(finkok)
    document = invoice()
    c = invoice_reissue(merchant=document.merchant, invoice_id=document.pk,
                        changes={"rfc": "XIQB891116QE4", "name": "BERENICE XIMO QUEZADA", "postal_code": "26015"})
    invoices_stamp_queued()
    c.replacement.refresh_from_db()
    assert advance(c) == "cancelled"
    [call] = finkok_server.calls("cancel")
    folio = call["fields"]["UUIDS"][0]
    assert (folio.get("Motivo"), folio.get("FolioSustitucion")) == ("01", str(c.replacement.uuid).upper())


@pytest.mark.parametrize(("answer", "final"), [("accept", "cancelled"), ("reject", "rejected")])
def test_sw_cancels_and_sats_status_service_follows_it(through, sw, sw_server, sat_server, invoice, answer, final):
    through(sw)
    sw_server.sat = sat_server
    sw_server.acceptance = True
    document = invoice()
    c = cancellation_request(merchant=document.merchant, invoice_id=document.pk, motive="02")
    assert advance(c) == "pending"
    assert [r["params"]["id"] for r in sat_server.requests] == [str(document.uuid).upper()]
    sat_server.answer(str(document.uuid), answer)
    assert advance(c) == final
    assert sat_server.requests[-1]["params"]["tt"] == "5800.0"


def test_sw_without_acceptance_and_sat_status_down_then_up(through, sw, sw_server, sat_server, invoice):
    through(sw)
    sw_server.sat = sat_server
    document = invoice()
    sat_server.modes["consulta"] = "http500"
    c = cancellation_request(merchant=document.merchant, invoice_id=document.pk, motive="02")
    assert advance(c) == "pending"  # SW took it (201); SAT's status service is down: asked again later
    assert Invoice.objects.get(pk=document.pk).status == "cancel_pending"
    sat_server.modes["consulta"] = "ok"
    assert advance(c) == "cancelled"
