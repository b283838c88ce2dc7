"""One eligibility rule on every path: the self-invoicing window ends AT expires_at (open while now < expires_at).

Each path is asked one microsecond before the end of the window (invoiceable) and at the end itself (expired):
the old copies disagreed exactly there (``<`` in three, ``<=`` in one, ``>`` in one).
"""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services.issue import invoice_issue
from invoicing.services.late_request import late_request_issue
from portal.shopper.lookup import ticket_outcome
from tickets import eligibility
from tickets.eligibility import ticket_eligibility
from tickets.models import Ticket
from tickets.services import api_key_create, ticket_expire, ticket_validate

END = dt.datetime(2031, 5, 31, 23, 59, 59, tzinfo=dt.UTC)
MOMENTS = {"just_before_the_end": (END - dt.timedelta(microseconds=1), True), "at_the_end": (END, False)}


@pytest.fixture(params=list(MOMENTS))
def moment(request, monkeypatch, ticket):
    """The clock stopped just before, or exactly at, the end of ``ticket``'s window; True when still open."""
    now, invoiceable = MOMENTS[request.param]
    Ticket.objects.filter(pk=ticket.pk).update(expires_at=END)
    ticket.refresh_from_db()
    monkeypatch.setattr(timezone, "now", lambda: now)
    return invoiceable


def _api(merchant):
    _, plain = api_key_create(merchant=merchant, name="POS", scopes=["tickets", "invoices"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_the_rule_itself(merchant, ticket, moment):
    verdict = ticket_eligibility(ticket, merchant=merchant)
    assert verdict.ok is moment and verdict.until == END
    assert verdict.code == (eligibility.OK if moment else eligibility.EXPIRED)


def test_pos_api_can_self_invoice_and_validate(merchant, ticket, moment):
    api = _api(merchant)
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["can_self_invoice"] is moment
    check = api.get("/api/v1/tickets/validate", {"number": ticket.number}).json()
    assert (check["can_self_invoice"], check["code"]) == (moment, "ok" if moment else "expired")


def test_ticket_validate_service(merchant, ticket, moment):
    assert ticket_validate(merchant=merchant, number=ticket.number).can_self_invoice is moment


def test_portal_lookup(merchant, ticket, moment):
    outcome = ticket_outcome(merchant=merchant, ticket=ticket)
    assert outcome.can_invoice is moment
    if not moment:
        assert "venció el 31/05/2031" in outcome.message  # the last day, in the merchant's zone


@pytest.mark.parametrize("issue", [invoice_issue, late_request_issue], ids=["invoice_issue", "late_request"])
def test_issue_and_late_request(merchant, ticket, receptor, moment, issue):
    if moment:
        assert issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor).pk
        return
    with pytest.raises(InvoicingError) as err:
        issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert err.value.code == "ticket_expired" and "venció el 31/05/2031" in err.value.message
    assert err.value.details == {"ticket_id": ticket.pk, "expired_at": END.isoformat()}
    assert not Invoice.objects.exists()


def test_the_merchant_may_still_invoice_after_the_end(merchant, ticket, receptor, moment):
    assert ticket_eligibility(ticket, merchant=merchant, enforce_deadline=False).ok
    assert invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor, enforce_deadline=False).pk


def test_expire_ends_the_window_at_once_on_every_path(merchant, ticket):
    ticket = ticket_expire(merchant=merchant, ticket_id=ticket.pk)
    assert ticket_eligibility(ticket, merchant=merchant, now=ticket.expires_at).code == eligibility.EXPIRED
    assert ticket_outcome(merchant=merchant, ticket=ticket, now=ticket.expires_at).kind == eligibility.EXPIRED


@pytest.mark.parametrize("status,policy,code", [
    ("void", "credit_note", eligibility.VOID),
    ("invoiced", "credit_note", eligibility.INVOICED),
    ("globalized", "credit_note", eligibility.LATE_REQUEST),
    ("globalized", "refuse", eligibility.GLOBALIZED),
])
def test_every_path_gives_the_same_reason(merchant, ticket, receptor, status, policy, code):
    merchant.late_request_policy = policy
    merchant.save()
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    ticket.refresh_from_db()
    verdict = ticket_eligibility(ticket, merchant=merchant)
    assert verdict.code == code
    assert ticket_validate(merchant=merchant, number=ticket.number).code == code
    assert ticket_outcome(merchant=merchant, ticket=ticket).kind == code
    assert _api(merchant).get(f"/api/v1/tickets/{ticket.pk}").json()["can_self_invoice"] is verdict.ok
    if not verdict.ok:
        with pytest.raises(InvoicingError) as err:
            late_request_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
        assert (err.value.code, err.value.message) == (verdict.error_code, verdict.message)


def test_expired_wins_over_globalized_in_every_path(merchant, ticket, receptor):
    Ticket.objects.filter(pk=ticket.pk).update(status="globalized", expires_at=timezone.now() - dt.timedelta(days=1))
    ticket.refresh_from_db()
    assert ticket_eligibility(ticket, merchant=merchant).code == eligibility.EXPIRED
    with pytest.raises(InvoicingError) as err:
        late_request_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert err.value.code == "ticket_expired"
