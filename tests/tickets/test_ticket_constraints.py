import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from infra.models import Event
from tickets.models import Branch, Merchant, Ticket
from tickets.services import ticket_expires_at


def test_duplicate_ticket_number_in_a_branch_is_refused(branch, make_ticket):
    make_ticket(branch, number="A-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_ticket(branch, number="A-1")
    assert Ticket.objects.filter(number="A-1").count() == 1


def test_same_ticket_number_in_another_branch_is_accepted(merchant, branch, make_ticket):
    north = Branch.objects.create(merchant=merchant, code="NORTE", name="Norte", postal_code="64000")
    make_ticket(branch, number="A-1")
    make_ticket(north, number="A-1")
    assert Ticket.objects.filter(merchant=merchant, number="A-1").count() == 2


def test_same_ticket_number_at_another_merchant_is_accepted(branch, other_branch, make_ticket):
    make_ticket(branch, number="A-1")
    make_ticket(other_branch, number="A-1")
    assert Ticket.objects.filter(number="A-1").count() == 2


def test_branch_code_is_unique_per_merchant(merchant, branch):
    with pytest.raises(IntegrityError), transaction.atomic():
        Branch.objects.create(merchant=merchant, code="CENTRO", name="Otra", postal_code="06600")


def test_ticket_money_is_decimal_with_two_places(ticket):
    ticket.refresh_from_db()
    assert ticket.total == Decimal("116.00")
    assert ticket.subtotal == Decimal("100.00")
    assert ticket.tax_total == Decimal("16.00")
    line = ticket.lines.get()
    assert line.quantity == Decimal("1.000000")


def test_ticket_timestamps_are_aware_and_registration_writes_an_event(ticket):
    ticket.refresh_from_db()
    assert ticket.sold_at.tzinfo is not None and ticket.expires_at.tzinfo is not None
    event = Event.objects.get(entity="ticket", object_id=ticket.pk)
    assert (event.from_status, event.to_status) == ("", "open")


def test_month_end_window_ends_at_local_midnight_of_the_month(merchant):
    sold = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.UTC)  # 17:30 on Jan 31 in Mexico City
    assert ticket_expires_at(merchant=merchant, sold_at=sold).isoformat() == "2026-01-31T23:59:59-06:00"


def test_days_window_counts_in_the_merchants_time_zone(merchant):
    merchant.self_invoice_window = Merchant.SelfInvoiceWindow.DAYS
    merchant.self_invoice_days = 3
    merchant.time_zone = "America/Tijuana"
    sold = dt.datetime(2026, 3, 6, 12, 0, tzinfo=dt.UTC)  # 04:00 local (PST), deadline crosses the DST change
    assert ticket_expires_at(merchant=merchant, sold_at=sold).isoformat() == "2026-03-09T23:59:59-07:00"


def test_negative_total_is_refused_by_the_database(branch):
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(merchant=branch.merchant, branch=branch, number="X", sold_at=dt.datetime.now(dt.UTC),
                              subtotal=0, total=Decimal("-1"), expires_at=dt.datetime.now(dt.UTC))


@pytest.mark.parametrize("slug", ["admin", "api", "t", "F", "healthz"])
def test_merchant_slug_cannot_shadow_a_site_route(db, slug):
    from django.core.exceptions import ValidationError

    merchant = Merchant(slug=slug, legal_name="X", rfc="EKU9003173C9")
    with pytest.raises(ValidationError) as err:
        merchant.full_clean()
    assert "reservado" in str(err.value)


def test_unknown_api_url_answers_the_json_envelope(client, db):
    response = client.get("/api/v1/nada")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
