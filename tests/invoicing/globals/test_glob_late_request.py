"""Late requests end to end with the sandbox PAC: credit note, cancel and re-issue, refuse, crash resume."""

import pytest
from lxml import etree

from invoicing.cfdi.verify import verify
from invoicing.errors import InvoicingError
from invoicing.models import Cancellation, Invoice, LateRequest
from invoicing.services import global_reissue, invoice_issue
from invoicing.services import late_request as late
from invoicing.services.global_invoice import global_invoice_issue
from invoicing.services.late_request import late_request_issue
from tickets.models import Ticket

NS = {"cfdi": "http://www.sat.gob.mx/cfd/4"}


@pytest.fixture(autouse=True)
def open_window(merchant):
    """Yesterday's sales stay invoiceable: under the month-end window they expire on the 1st of every month."""
    merchant.self_invoice_window, merchant.self_invoice_days = "days", 30
    merchant.save()


@pytest.fixture
def stamped_global(merchant, branch, sale, yesterday, certificate, worker):
    merchant.global_periodicity = "01"
    merchant.save()
    tickets = [sale(branch, "A1", yesterday, total="116.00", payment_form="04"),
               sale(branch, "B2", yesterday, total="58.00", payment_form="01")]
    [g] = global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat())
    worker()
    g.refresh_from_db()
    assert g.status == "stamped", g.last_error_message
    return g, tickets


def ask(merchant, ticket, receptor):
    """What the shopper portal does: try the normal way, then the late-request way."""
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert err.value.code == "ticket_in_global_invoice"
    return late_request_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)


def root_of(invoice):
    return etree.fromstring(bytes(invoice.stamped_xml))


def assert_verifies(sat_cert, *invoices):
    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.status in ("stamped", "cancelled"), (invoice, invoice.last_error_message)
        result = verify(bytes(invoice.stamped_xml), sat_cert=sat_cert)
        assert result.ok, result.summary()


def test_credit_note_policy_egreso_then_nominative(merchant, stamped_global, receptor, worker, sat_cert):
    g, (asked, other) = stamped_global
    nominative = ask(merchant, asked, receptor)
    assert nominative.status == "on_hold" and nominative.next_attempt_at is None  # until the global is fixed
    worker()
    nominative.refresh_from_db()
    assert nominative.status == "stamped", nominative.last_error_message
    note = Invoice.objects.get(kind="egreso")
    assert_verifies(sat_cert, g, note, nominative)
    r = root_of(note)
    assert r.get("TipoDeComprobante") == "E" and r.get("FormaPago") == g.payment_form
    rel = r.find("cfdi:CfdiRelacionados", NS)
    assert rel.get("TipoRelacion") == "01"
    assert rel.find("cfdi:CfdiRelacionado", NS).get("UUID").upper() == str(g.uuid).upper()
    rec = r.find("cfdi:Receptor", NS)
    assert (rec.get("Rfc"), rec.get("UsoCFDI"), rec.get("RegimenFiscalReceptor")) == ("XAXX010101000", "G02", "616")
    [concepto] = r.findall("cfdi:Conceptos/cfdi:Concepto", NS)
    assert (concepto.get("ClaveProdServ"), concepto.get("ClaveUnidad"), concepto.get("NoIdentificacion")) == (
        "84111506", "ACT", "A1")
    assert r.get("Total") == "116.00"
    assert note.stamped_at <= nominative.stamped_at
    assert root_of(nominative).find("cfdi:Receptor", NS).get("Rfc") == receptor.rfc
    g.refresh_from_db()
    assert g.status == "stamped"
    assert [Ticket.objects.get(pk=t.pk).status for t in (asked, other)] == ["invoiced", "globalized"]
    assert LateRequest.objects.get().status == "released"


def test_cancel_reissue_policy_cancels_with_motivo_04_and_reissues_without_the_ticket(
        merchant, stamped_global, receptor, worker, sat_cert):
    merchant.late_request_policy = "cancel_reissue"
    merchant.save()
    g, (asked, other) = stamped_global
    nominative = ask(merchant, asked, receptor)
    worker()
    g.refresh_from_db()
    assert g.status == "cancelled"
    from invoicing.pac.models import SandboxStamp

    assert SandboxStamp.objects.get(uuid=str(g.uuid).upper()).cancel_motivo == "04"
    reissue = Invoice.objects.get(kind="global", status="stamped")
    assert_verifies(sat_cert, reissue, nominative)
    r = root_of(reissue)
    rel = r.find("cfdi:CfdiRelacionados", NS)
    assert rel.get("TipoRelacion") == "04"
    assert rel.find("cfdi:CfdiRelacionado", NS).get("UUID").upper() == str(g.uuid).upper()
    assert [c.get("NoIdentificacion") for c in r.findall("cfdi:Conceptos/cfdi:Concepto", NS)] == ["B2"]
    info = r.find("cfdi:InformacionGlobal", NS)
    assert (info.get("Periodicidad"), info.get("Meses"), info.get("Año")) == (
        g.global_periodicity, g.global_months, str(g.global_year))
    assert r.get("FormaPago") == "01"  # the largest remaining ticket's
    assert Ticket.objects.get(pk=asked.pk).status == "invoiced"
    assert Ticket.objects.get(pk=other.pk).status == "globalized"
    assert reissue.global_periods.get() == g.global_periods.get()


def test_refuse_policy_explains_and_writes_nothing(merchant, stamped_global, receptor):
    merchant.late_request_policy = "refuse"
    merchant.save()
    _, (asked, _) = stamped_global
    before = Invoice.objects.count()
    with pytest.raises(InvoicingError) as err:
        late_request_issue(merchant=merchant, ticket_ids=[asked.pk], receptor=receptor)
    assert err.value.code == "late_request_refused" and "comunícate con la tienda" in err.value.message
    assert Invoice.objects.count() == before and not LateRequest.objects.exists()


def test_request_while_the_global_is_still_pending_waits_for_it(merchant, branch, sale, yesterday, certificate,
                                                                receptor, worker, sat_cert):
    merchant.global_periodicity = "01"
    merchant.save()
    t = sale(branch, "A1", yesterday)
    sale(branch, "B1", yesterday)
    [g] = global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat())
    nominative = late_request_issue(merchant=merchant, ticket_ids=[t.pk], receptor=receptor)
    assert late.late_request_advance(late_request_id=LateRequest.objects.get().pk) == "in_progress"
    assert not Invoice.objects.filter(kind="egreso").exists()
    worker()
    assert_verifies(sat_cert, g, nominative, Invoice.objects.get(kind="egreso"))


def test_a_crash_between_cancel_and_reissue_resumes(merchant, stamped_global, receptor, worker, sat_cert,
                                                     monkeypatch):
    merchant.late_request_policy = "cancel_reissue"
    merchant.save()
    g, (asked, _) = stamped_global
    nominative = ask(merchant, asked, receptor)
    real = global_reissue._cancelled_and_reissued

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(global_reissue, "_cancelled_and_reissued", crash)
    late.late_request_advance(late_request_id=LateRequest.objects.get().pk)  # the crash is logged, not raised
    g.refresh_from_db()
    assert g.status == "cancelling"  # the PAC cancelled it; we did not record it (nor re-issue)
    assert not Invoice.objects.filter(kind="global", status="pending").exists()
    monkeypatch.setattr(global_reissue, "_cancelled_and_reissued", real)
    Cancellation.objects.update(next_check_at=None)  # its backoff has passed
    worker()  # the periodic task asks again: "already cancelled" → record + re-issue + nominative
    g.refresh_from_db()
    assert g.status == "cancelled"
    assert_verifies(sat_cert, nominative, Invoice.objects.get(kind="global", status="stamped"))


def test_failed_credit_note_fails_the_request_and_keeps_the_ticket_in_the_global(
        merchant, stamped_global, receptor, worker, monkeypatch):
    g, (asked, _) = stamped_global
    nominative = ask(merchant, asked, receptor)
    merchant.certificates.update(is_active=False)  # the egreso cannot be sealed
    worker()
    nominative.refresh_from_db()
    lr = LateRequest.objects.get()
    assert lr.status == "failed" and "nota de crédito" in lr.last_error
    assert nominative.status == "failed" and nominative.last_error_code == "late_request_failed"
    assert Ticket.objects.get(pk=asked.pk).status == "globalized"


def test_another_merchants_ticket_is_not_found(merchant, other_branch, sale, receptor):
    foreign = sale(other_branch, "X", "2026-03-07 10:00")
    with pytest.raises(InvoicingError) as err:
        late_request_issue(merchant=merchant, ticket_ids=[foreign.pk], receptor=receptor)
    assert err.value.code == "ticket_not_found"


@pytest.fixture
def in_pending_global(merchant, branch, sale, yesterday, certificate):
    merchant.global_periodicity = "01"
    merchant.save()
    asked = sale(branch, "A1", yesterday)
    sale(branch, "B1", yesterday)
    global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat())
    return asked


def test_a_second_request_for_a_ticket_already_requested_is_refused_naming_its_invoice(merchant, in_pending_global,
                                                                                       receptor):
    # The tickets stay «globalized» while the request waits: a repeated click must not park a second invoice
    # (two credit notes, two nominative CFDIs for one sale).
    first = late_request_issue(merchant=merchant, ticket_ids=[in_pending_global.pk], receptor=receptor)
    with pytest.raises(InvoicingError) as err:
        late_request_issue(merchant=merchant, ticket_ids=[in_pending_global.pk], receptor=receptor)
    assert err.value.code == "ticket_already_invoiced"
    assert err.value.details == {"ticket_id": in_pending_global.pk, "invoice_id": first.pk}
    assert LateRequest.objects.count() == 1 and Invoice.objects.filter(kind="ingreso").count() == 1


def test_a_late_request_with_the_same_idempotency_key_replays_its_invoice(merchant, in_pending_global, receptor):
    first = late_request_issue(merchant=merchant, ticket_ids=[in_pending_global.pk], receptor=receptor,
                               idempotency_key="portal:x")
    again = late_request_issue(merchant=merchant, ticket_ids=[in_pending_global.pk], receptor=receptor,
                               idempotency_key="portal:x")
    assert again.pk == first.pk and first.idempotency_key == "portal:x"
    assert LateRequest.objects.count() == 1
    # and the normal path, which the portal takes once the tickets are invoiced, finds it by the same key
    assert invoice_issue(merchant=merchant, ticket_ids=[in_pending_global.pk], receptor=receptor,
                         idempotency_key="portal:x").pk == first.pk
