"""The dashboard's figures against a fixture with known counts and amounts, and the admin home that shows them."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.test import Client

from infra.models import Event
from infra.roles import Role
from invoicing.dashboard import merchant_dashboard
from invoicing.models import Invoice
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoices_stamp_queued
from tickets.models import MerchantMembership, Ticket

MX = zoneinfo.ZoneInfo("America/Mexico_City")
NOW = dt.datetime(2026, 3, 15, 18, 0, tzinfo=MX)


def at(day, hour=12):
    return dt.datetime(2026, 3, day, hour, 0, tzinfo=MX)


@pytest.fixture
def known(merchant, branch, other_branch, make_ticket, certificate):
    merchant.global_periodicity = "04"
    merchant.save()

    def sale(number, day, total, status, hour=12, expires=None, on=branch):
        ticket = make_ticket(on, number=number, total=Decimal(total), sold_at=at(day, hour))
        Ticket.objects.filter(pk=ticket.pk).update(status=status, expires_at=expires or at(28))
        return ticket

    # Today (15 March): 4 tickets, 100 + 200 + 300 + 400.
    sale("H1", 15, "100.00", "invoiced", hour=9)
    sale("H2", 15, "200.00", "globalized", hour=10)
    sale("H3", 15, "300.00", "open", hour=11, expires=NOW + dt.timedelta(hours=5))  # expiring soon
    sale("H4", 15, "400.00", "void", hour=1)  # 01:00 local is still today
    # Earlier this month: 3 tickets.
    sale("M1", 2, "50.00", "invoiced")
    sale("M2", 10, "25.00", "open", expires=NOW + dt.timedelta(hours=70))  # expiring soon
    sale("M3", 14, "10.00", "open", hour=23)
    # Not this month (February), and another merchant's sales today: never counted.
    make_ticket(branch, number="F1", total=Decimal("999.00"), sold_at=dt.datetime(2026, 2, 28, 23, 0, tzinfo=MX))
    sale("OTRO", 15, "777.00", "invoiced", on=other_branch)
    return merchant


def _invoice(merchant, branch, status, **fields):
    return Invoice.objects.create(merchant=merchant, branch=branch, status=status, serie="F", receptor_rfc="XAXX010101000",
                                  receptor_name="PUBLICO EN GENERAL", receptor_tax_regime="616",
                                  receptor_postal_code="06600", receptor_cfdi_use="S01", **fields)


def test_ticket_figures_today_and_this_month(known):
    figures = merchant_dashboard(known, now=NOW)["figures"]
    today, month = figures["today"], figures["month"]
    assert (today.received, today.received_amount) == (4, Decimal("1000.00"))
    assert (today.invoiced, today.invoiced_amount, today.share) == (1, Decimal("100.00"), Decimal("25.0"))
    assert (today.globalized, today.globalized_amount) == (1, Decimal("200.00"))
    assert (today.pending, today.pending_amount) == (1, Decimal("300.00"))
    assert (month.received, month.received_amount) == (7, Decimal("1085.00"))
    assert (month.invoiced, month.invoiced_amount, month.share) == (2, Decimal("150.00"), Decimal("28.6"))
    assert (month.pending, month.pending_amount) == (3, Decimal("335.00"))


def test_expiring_soon_global_deadline_csd_and_chart(known, certificate):
    board = merchant_dashboard(known, now=NOW)
    assert board["expiring_soon"] == 2
    deadline = board["global_deadline"]
    assert deadline["label"] == "marzo de 2026" and not deadline["closed"]
    assert deadline["open_tickets"] == 3 and "Periodo en curso: 3 ticket(s)" in deadline["state"]
    assert deadline["deadline"] == dt.datetime(2026, 4, 2, 0, 0, tzinfo=MX)
    assert deadline["overdue"]  # F1 (28 February) is open and its global's deadline passed
    assert board["certificate"]["days"] == (certificate.valid_to - NOW).days
    series = {row["day"].day: (row["tickets"], row["invoiced"]) for row in board["series"] if row["tickets"]}
    assert series == {28: (1, 0), 2: (1, 1), 10: (1, 0), 14: (1, 0), 15: (4, 1)}
    assert "<svg" in board["chart"] and "<script" not in board["chart"]
    assert "15/03: 4 ticket(s), 1 facturado(s)" in board["chart"]


def test_attention_counts_each_kind_of_invoice_in_trouble(known, branch, other_branch):
    _invoice(known, branch, "failed", last_error_code="CFDI40999", last_error_permanent=True)
    _invoice(known, branch, "failed")
    _invoice(known, branch, "sealed", attempts=2, last_error_code="PAC_DOWN")
    _invoice(known, branch, "pending")  # queued, no error: fine
    _invoice(known, branch, "cancelling")
    _invoice(known, branch, "stamped")
    _invoice(other_branch.merchant, other_branch, "failed")
    counts = {a["key"]: a["count"] for a in merchant_dashboard(known, now=NOW)["attention"]}
    assert counts == {"failed": 2, "retrying": 1, "on_hold": 0, "cancel_pending": 1, "cancel_rejected": 0}


def test_pac_health_over_the_last_hour(known, other_merchant):
    def event(merchant, minutes_ago, data):
        row = Event.objects.create(merchant=merchant, entity="invoice", object_id=1, from_status="sealed",
                                   to_status="stamped", data=data)
        Event.objects.filter(pk=row.pk).update(created_at=NOW - dt.timedelta(minutes=minutes_ago))

    for ms in (100, 200, 300):
        event(known, 10, {"pac": "sandbox", "pac_ms": ms})
    event(known, 20, {"pac_ms": 1000, "pac_error": "PAC_DOWN"})
    event(known, 90, {"pac_ms": 5000, "pac_error": "PAC_DOWN"})  # older than an hour
    event(other_merchant, 5, {"pac_ms": 9000, "pac_error": "X"})
    event(known, 5, {"kind": "email_sent"})  # not a PAC answer
    pac = merchant_dashboard(known, now=NOW)["pac"]
    assert (pac["calls"], pac["errors"], pac["error_rate"]) == (4, 1, Decimal("25.0"))
    assert (pac["p50_ms"], pac["p95_ms"]) == (300, 1000)


def test_stamping_writes_the_pac_answer_time_into_its_events(merchant, certificate, ticket, receptor, settings):
    settings.INVOICE_STAMP_LINGER_MS = 0
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    invoices_stamp_queued()
    stamped = Event.objects.get(entity="invoice", object_id=invoice.pk, to_status="stamped")
    assert stamped.data["pac"] == "sandbox" and isinstance(stamped.data["pac_ms"], int)


def test_the_dashboard_takes_a_few_queries_whatever_the_data(known, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        merchant_dashboard(known, now=NOW)


@pytest.mark.parametrize("role", Role.values)
def test_staff_land_on_their_merchants_dashboard(known, other_merchant, make_staff, role):
    user = make_staff(known, f"persona-{role}", permissions=[])
    MerchantMembership.objects.filter(user=user).update(role=role)
    client = Client()
    client.force_login(user)
    html = client.get("/admin/").content.decode()
    for section in ("figures-today", "figures-month", "attention", "global-deadline", "csd", "pac-health",
                    "daily-chart"):
        assert f'id="{section}"' in html, section
    assert other_merchant.legal_name not in html and "<script" not in html.split('id="dashboard"')[1].split(
        "</div>")[0]
