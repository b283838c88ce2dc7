"""The failover decision table (invoicing/services/failover.py ``decide``, docs/pac.md), then each adapter outcome
end to end with one invoice: the Finkok fake as primary in a failure shape, the SW fake as secondary. Each must
retry the same PAC, fail over, or recover the stamp, and never leave two UUIDs."""

import datetime as dt

import pytest
from django.utils import timezone
from failover_kit import drain, finkok_primary_sw_secondary, issue
from fakes import FINKOK_PASSWORD, FINKOK_USER, SW_PASSWORD, SW_USER

from invoicing.models import Invoice, StampDoubt
from invoicing.pac.base import HELD, INVALID, NOT_SENT, REFUSED, UNKNOWN, PacError, StampResult
from invoicing.services.failover import (
    FAIL,
    FAIL_OVER,
    RECHECK,
    RETRY,
    STORE,
    decide,
    doubt_check,
)

STAMP = StampResult(uuid="A" * 8 + "-0000-0000-0000-" + "0" * 12, stamped_xml=b"<x/>",
                    stamped_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), sat_certificate_number="1", sello_sat="",
                    rfc_prov_certif="")


def error(outcome, permanent=False):
    return PacError("x", "x", permanent=permanent, outcome=outcome)


@pytest.mark.parametrize(("outcome", "pinned", "other", "action"), [
    # A stamp is kept, wherever it comes from (after a lost answer: the recovery, 307 with the stamp).
    (STAMP, False, True, STORE),
    (STAMP, True, True, STORE),
    # The PAC never saw it: go to the other PAC now, or try again later.
    (error(NOT_SENT), False, True, FAIL_OVER),
    (error(NOT_SENT), False, False, RETRY),
    (error(NOT_SENT, permanent=True), False, False, FAIL),
    # …but a pinned document's lost request is still unaccounted for: ask the same PAC again.
    (error(NOT_SENT), True, True, RECHECK),
    # The PAC answered and refused the request as a whole: no stamp; pinned or not, it may go elsewhere.
    (error(REFUSED), False, True, FAIL_OVER),
    (error(REFUSED), True, True, FAIL_OVER),
    (error(REFUSED), False, False, RETRY),
    (error(REFUSED, permanent=True), False, False, FAIL),
    # The answer was lost, or the PAC holds the stamp without handing it over: same PAC, same XML, never another.
    (error(UNKNOWN), False, True, RECHECK),
    (error(UNKNOWN), True, True, RECHECK),
    (error(HELD), False, True, RECHECK),
    (error(HELD), True, True, RECHECK),
    # The document itself is refused: every PAC would refuse it.
    (error(INVALID, permanent=True), False, True, FAIL),
    (error(INVALID, permanent=True), True, True, FAIL),
])
def test_decision_table(outcome, pinned, other, action):
    assert decide(outcome, pinned=pinned, other_available=other) == action


def test_a_timeout_is_never_a_failover():
    for other in (True, False):
        for pinned in (True, False):
            assert decide(error(UNKNOWN), pinned=pinned, other_available=other) == RECHECK


# --- each adapter outcome, one invoice, Finkok primary and SW secondary ----------------------------------------


@pytest.fixture
def pacs(merchant, branch, certificate, finkok_server, sw_server, sat_server, monkeypatch, settings, queued_tasks):
    finkok_primary_sw_secondary(monkeypatch, merchant, finkok_server, sw_server, sat_server)
    settings.PAC_TIMEOUT_SECONDS = 0.3
    settings.INVOICE_STAMP_LINGER_MS = 0
    finkok_server.sleep_seconds = 0.6
    return finkok_server, sw_server


@pytest.fixture
def one(pacs, branch, receptor, make_ticket):
    def stamp_once():
        """Issue one invoice and run one pass of the stamping queue over it (a retry waits for its time)."""
        from invoicing.services.stamping import invoices_stamp_queued

        [pk] = issue(branch, receptor, make_ticket, 1, "U")
        invoices_stamp_queued(budget_seconds=1)
        return Invoice.objects.get(pk=pk)

    return stamp_once


def sw_calls(sw_server):
    return len(sw_server.calls("stamp"))


@pytest.mark.parametrize("shape", ["down", "http503", "300", "708"])
def test_not_sent_or_refused_fails_over_at_once(pacs, one, shape):
    finkok_server, sw_server = pacs
    if shape == "down":
        finkok_server.down()
    else:
        finkok_server.modes["stamp"] = shape

    invoice = one()

    assert (invoice.status, invoice.pac) == ("stamped", "sw")
    assert str(invoice.uuid).upper() in sw_server.issued() and not finkok_server.issued()
    assert not StampDoubt.objects.exists()
    assert "respaldo" in invoice_event(invoice, "stamped").reason


@pytest.mark.parametrize("shape", ["drop", "slow"])
def test_a_lost_answer_is_recovered_from_the_same_pac(pacs, one, shape):
    """Finkok stamped, the answer was lost (dropped connection, or slower than our timeout): the same sealed XML
    goes to Finkok again, which answers 307 with the same stamp. SW is never asked."""
    finkok_server, sw_server = pacs
    if shape == "drop":
        finkok_server.faults["stamp"] = ("drop", 1.0)
        finkok_server.resend_modes["stamp"] = "ok"  # the resend is answered
    else:
        finkok_server.latency["stamp"] = 0.5
        finkok_server.resend_modes["stamp"] = "ok"

    invoice = one()

    if shape == "slow":
        finkok_server.latency.clear()
        invoice = drain_again(invoice)
    assert (invoice.status, invoice.pac) == ("stamped", "finkok")
    assert finkok_server.issued() == {str(invoice.uuid).upper()} and sw_calls(sw_server) == 0
    doubt = StampDoubt.objects.get(invoice=invoice)
    assert (doubt.pac, doubt.status) == ("finkok", "settled") and "recuperado" in doubt.result


@pytest.mark.parametrize("shape", ["timeout", "http500", "malformed"])
def test_unknown_pins_the_invoice_to_the_primary_and_never_fails_over(pacs, one, shape):
    finkok_server, sw_server = pacs
    finkok_server.modes["stamp"] = shape

    invoice = one()

    assert invoice.status == "sealed" and invoice.last_error_permanent is False
    assert sw_calls(sw_server) == 0
    assert len(finkok_server.calls("stamp")) == 2  # the first request and the immediate recheck, same XML
    assert StampDoubt.objects.get(invoice=invoice).status == "open"
    # Still unanswered on the next attempts: still Finkok only.
    Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=None)
    invoice = drain_again(invoice, until_stamped=False)
    assert sw_calls(sw_server) == 0
    # Finkok answers again: it stamps (it never had it) and the pin is released.
    finkok_server.modes.clear()
    invoice = drain_again(invoice)
    assert (invoice.status, invoice.pac) == ("stamped", "finkok") and sw_calls(sw_server) == 0
    assert StampDoubt.objects.get(invoice=invoice).status == "settled"


def test_held_307_without_the_stamp_keeps_asking_the_same_pac(pacs, one):
    finkok_server, sw_server = pacs
    finkok_server.faults["stamp"] = ("drop", 1.0)
    finkok_server.resend_modes["stamp"] = "307_empty"
    finkok_server.modes["stamped"] = "603"  # Finkok says it stamped, but will not hand it over yet

    invoice = one()

    assert invoice.status == "sealed" and invoice.last_error_code == "307" and sw_calls(sw_server) == 0
    assert StampDoubt.objects.get(invoice=invoice).status == "open"
    finkok_server.modes.clear()
    finkok_server.resend_modes.clear()
    finkok_server.faults.clear()
    invoice = drain_again(invoice)
    assert (invoice.status, invoice.pac) == ("stamped", "finkok")
    assert finkok_server.issued() == {str(invoice.uuid).upper()} and sw_calls(sw_server) == 0


def test_a_pinned_invoice_fails_over_only_when_the_primary_answers_without_a_stamp(pacs, one):
    finkok_server, sw_server = pacs
    finkok_server.modes["stamp"] = "timeout"  # never processed: Finkok holds nothing
    invoice = one()
    assert invoice.status == "sealed" and StampDoubt.objects.get(invoice=invoice).status == "open"

    # Unreachable on the resend: that says nothing about the lost request; still pinned.
    finkok_server.modes.clear()
    finkok_server.down()
    invoice = drain_again(invoice, until_stamped=False)
    assert invoice.status == "sealed" and sw_calls(sw_server) == 0

    # Finkok answers the same sealed XML without a stamp (708): now SW may stamp it.
    finkok_server.up()
    finkok_server.modes["stamp"] = "708"
    invoice = drain_again(invoice)
    assert (invoice.status, invoice.pac) == ("stamped", "sw")
    doubt = StampDoubt.objects.get(invoice=invoice)
    assert doubt.status == "cleared" and doubt.next_check_at is not None

    # The late check asks Finkok (``stamped``, which never stamps): 603, nothing there.
    assert doubt_check(doubt) == "none"
    assert not finkok_server.issued()


def test_a_document_error_fails_without_trying_the_secondary(pacs, one):
    finkok_server, sw_server = pacs
    finkok_server.modes["stamp"] = "cfdi40102"

    invoice = one()

    assert (invoice.status, invoice.last_error_code) == ("failed", "CFDI40102") and sw_calls(sw_server) == 0


def test_both_pacs_down_waits_and_retries(pacs, one):
    finkok_server, sw_server = pacs
    finkok_server.down()
    sw_server.down()

    invoice = one()

    assert invoice.status == "sealed" and invoice.last_error_permanent is False
    assert not StampDoubt.objects.exists()
    sw_server.up()
    invoice = drain_again(invoice)
    assert (invoice.status, invoice.pac) == ("stamped", "sw")


def test_sw_as_primary_recovers_a_dropped_answer_with_its_307(pacs, one, merchant):
    finkok_server, sw_server = pacs
    merchant.pac, merchant.pac_username, merchant.pac_password = "sw", SW_USER, SW_PASSWORD
    merchant.pac_secondary, merchant.pac_secondary_username = "finkok", FINKOK_USER
    merchant.pac_secondary_password = FINKOK_PASSWORD
    merchant.save()
    sw_server.faults["stamp"] = ("drop", 1.0)
    sw_server.resend_modes["stamp"] = "ok"

    invoice = one()

    assert (invoice.status, invoice.pac) == ("stamped", "sw")
    assert sw_server.issued() == {str(invoice.uuid).upper()} and not finkok_server.issued()


def drain_again(invoice, *, until_stamped=True):
    Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=None)
    if until_stamped:
        drain([invoice.pk], timeout=10)
    else:
        from invoicing.services.stamping import invoices_stamp_queued

        invoices_stamp_queued(budget_seconds=1)
    return Invoice.objects.get(pk=invoice.pk)


def invoice_event(invoice, to_status):
    from infra.models import Event

    return Event.objects.filter(entity="invoice", object_id=invoice.pk, to_status=to_status).latest("pk")


def test_late_check_schedule_ends(pacs, one, settings):
    finkok_server, sw_server = pacs
    settings.PAC_LATE_STAMP_CHECKS = [0, 0]
    finkok_server.modes["stamp"] = "timeout"
    invoice = one()
    finkok_server.modes["stamp"] = "708"
    invoice = drain_again(invoice)
    doubt = StampDoubt.objects.get(invoice=invoice)

    assert doubt_check(doubt) == "none"
    doubt.refresh_from_db()
    assert (doubt.status, doubt.checks) == ("cleared", 1) and doubt.next_check_at <= timezone.now()
    assert doubt_check(doubt) == "none"
    doubt.refresh_from_db()
    assert doubt.status == "settled"


def test_a_pac_that_cannot_be_asked_without_stamping_is_reported_unverifiable(pacs, one):
    finkok_server, sw_server = pacs
    invoice = one()
    doubt = StampDoubt.objects.create(merchant_id=invoice.merchant_id, invoice=invoice, pac="sw", status="cleared",
                                      next_check_at=timezone.now())

    assert doubt_check(doubt) == "unverifiable"
    doubt.refresh_from_db()
    assert doubt.status == "settled" and "no verificable" in doubt.result
    from infra.models import Event

    assert Event.objects.filter(entity="invoice", object_id=invoice.pk, data__doubt="unverifiable").exists()


def test_a_pin_to_a_pac_the_merchant_dropped_is_settled_and_said(pacs, one, merchant):
    finkok_server, sw_server = pacs
    finkok_server.modes["stamp"] = "timeout"
    invoice = one()
    assert StampDoubt.objects.get(invoice=invoice).status == "open"
    merchant.pac, merchant.pac_username, merchant.pac_password = "sandbox", "", ""
    merchant.save()
    finkok_server.modes.clear()

    invoice = drain_again(invoice)

    assert (invoice.status, invoice.pac) == ("stamped", "sandbox")
    assert StampDoubt.objects.get(invoice=invoice).status == "settled"
    from infra.models import Event

    assert Event.objects.filter(entity="invoice", object_id=invoice.pk, data__doubt="unverifiable").exists()
