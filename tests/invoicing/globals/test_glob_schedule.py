"""The scheduler: closed periods in each merchant's zone, backfill, idempotence, retries, deadline alerts."""

import datetime as dt
import zoneinfo

from django.core import mail
from django.utils import timezone

from infra.models import Event
from invoicing.models import GlobalPeriod, Invoice
from invoicing.services.global_schedule import (
    global_deadline_alerts,
    global_invoices_run,
    global_invoices_run_merchant,
)
from tickets.models import Branch, Merchant, Ticket

MX = zoneinfo.ZoneInfo("America/Mexico_City")
TJ = zoneinfo.ZoneInfo("America/Tijuana")


def at(text, tz=MX):
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def on_the_system_since(merchant, text):
    """The merchant's creation moved back to ``text``: deadlines before it raise no alert."""
    Merchant.objects.filter(pk=merchant.pk).update(created_at=at(text))
    merchant.refresh_from_db()


def periods_of(merchant):
    return sorted((i.global_periodicity, i.global_months, i.global_year, i.ticket_links.count())
                  for i in Invoice.objects.filter(merchant=merchant, kind="global"))


def test_daily_run_after_midnight_takes_yesterday_only(merchant, branch, sale):
    merchant.global_periodicity = "01"
    merchant.save()
    sale(branch, "A", "2026-12-31 23:50")
    today = sale(branch, "B", "2027-01-01 00:01")
    [g] = global_invoices_run_merchant(merchant=merchant, now=at("2027-01-01 00:05"))
    assert (g.global_months, g.global_year) == ("12", 2026)
    assert Ticket.objects.get(pk=today.pk).status == "open"
    assert global_invoices_run_merchant(merchant=merchant, now=at("2027-01-01 00:10")) == []  # idempotent


def test_backfill_issues_every_missed_period_oldest_first(merchant, branch, sale):
    merchant.global_periodicity = "02"
    merchant.save()
    for n, day in enumerate(["2026-03-27", "2026-03-31", "2026-04-01", "2026-04-09", "2026-04-20"]):
        sale(branch, f"T{n}", f"{day} 12:00")
    # The scheduler was down for weeks; the first pass after it comes back catches up.
    made = global_invoices_run_merchant(merchant=merchant, now=at("2026-04-21 09:00"))
    spans = [(gp.first_day.isoformat(), gp.last_day.isoformat()) for gp in GlobalPeriod.objects.order_by("first_day")]
    assert spans == [("2026-03-23", "2026-03-29"), ("2026-03-30", "2026-03-31"), ("2026-04-01", "2026-04-05"),
                     ("2026-04-06", "2026-04-12")]  # the week of 20 April has not closed
    assert [i.global_months for i in made] == ["03", "03", "04", "04"]
    assert Ticket.objects.filter(status="open").count() == 1


def test_a_ticket_uploaded_late_for_a_run_period_goes_in_the_next_pass(merchant, branch, sale):
    sale(branch, "A", "2026-02-10 12:00")
    global_invoices_run_merchant(merchant=merchant, now=at("2026-03-01 00:10"))
    sale(branch, "LATE", "2026-02-27 12:00")
    [g] = global_invoices_run_merchant(merchant=merchant, now=at("2026-03-01 00:15"))
    assert g.global_months == "02" and GlobalPeriod.objects.get().invoices.count() == 2


def test_bimonthly_merchant_outside_621_is_served_monthly(merchant, branch, sale):
    merchant.global_periodicity = "05"
    merchant.save()
    sale(branch, "A", "2026-01-15 12:00")
    sale(branch, "B", "2026-02-15 12:00")
    global_invoices_run_merchant(merchant=merchant, now=at("2026-03-01 01:00"))
    assert periods_of(merchant) == [("04", "01", 2026, 1), ("04", "02", 2026, 1)]


def test_bimonthly_for_621_at_the_year_end(merchant, branch, sale):
    merchant.global_periodicity, merchant.tax_regime = "05", "621"
    merchant.save()
    sale(branch, "A", "2026-11-02 12:00")
    sale(branch, "B", "2026-12-31 23:59")
    sale(branch, "C", "2027-01-01 00:00")
    global_invoices_run_merchant(merchant=merchant, now=at("2027-01-01 00:30"))
    assert periods_of(merchant) == [("05", "18", 2026, 2)]


def test_fortnight_and_time_zone_each_merchant_in_its_own_zone(merchant, branch, other_merchant, other_branch,
                                                                sale):
    for m, tz in ((merchant, "America/Mexico_City"), (other_merchant, "America/Tijuana")):
        m.global_periodicity, m.time_zone = "03", tz
        m.save()
    # 15 March 23:30 in Tijuana (DST since 8 March: UTC-7) is 16 March 00:30 in Mexico City.
    sale(branch, "MX", at("2026-03-15 23:30", MX))
    sale(other_branch, "TJ", at("2026-03-15 23:30", TJ))
    now = at("2026-03-16 00:45", MX)  # Mexico City's fortnight closed; Tijuana's has not (23:45 there)
    global_invoices_run(now=now)
    assert periods_of(merchant) == [("03", "03", 2026, 1)]
    assert periods_of(other_merchant) == []
    global_invoices_run(now=at("2026-03-16 00:05", TJ))
    assert periods_of(other_merchant) == [("03", "03", 2026, 1)]


def test_daily_period_on_tijuana_dst_night(other_merchant, other_branch, sale):
    other_merchant.global_periodicity, other_merchant.time_zone = "01", "America/Tijuana"
    other_merchant.save()
    sale(other_branch, "A", at("2026-11-01 01:30", TJ))  # the repeated hour when DST ends
    sale(other_branch, "B", at("2026-11-01 23:59", TJ))
    sale(other_branch, "C", at("2026-11-02 00:00", TJ))
    [g] = global_invoices_run_merchant(merchant=other_merchant, now=at("2026-11-02 00:01", TJ))
    assert g.ticket_links.count() == 2
    assert GlobalPeriod.objects.get().ends_at - GlobalPeriod.objects.get().starts_at == dt.timedelta(hours=25)


def test_a_failing_period_is_retried_a_few_times_then_left_to_a_person(merchant, branch, sale, worker,
                                                                       yesterday):
    merchant.global_periodicity = "01"
    merchant.save()
    sale(branch, "A", yesterday)
    now = timezone.now()
    for attempt in range(5):
        global_invoices_run_merchant(merchant=merchant, now=now + dt.timedelta(hours=attempt))
        worker()  # no CSD: every global fails and gives the ticket back
    assert Invoice.objects.filter(status="failed").count() == 3
    assert Ticket.objects.get().status == "open"


def test_deadline_alert_once_with_event_and_email(merchant, branch, sale, worker):
    merchant.global_periodicity, merchant.contact_email = "01", "dueno@example.com"
    merchant.save()
    on_the_system_since(merchant, "2026-01-01 00:00")
    sale(branch, "A", "2026-03-07 12:00")
    global_invoices_run_merchant(merchant=merchant, now=at("2026-03-08 00:10"))
    worker()  # fails: no CSD
    assert global_deadline_alerts(merchant=merchant, now=at("2026-03-08 12:00")) == 0  # 12 h left
    assert global_deadline_alerts(merchant=merchant, now=at("2026-03-08 19:00")) == 1  # 5 h left
    assert global_deadline_alerts(merchant=merchant, now=at("2026-03-08 20:00")) == 0  # only once
    event = Event.objects.get(entity="global_period", to_status="deadline_alert")
    assert "Está por vencer" in event.reason and event.data["open_tickets"] == 1
    assert mail.outbox[0].to == ["dueno@example.com"] and "Factura global pendiente" in mail.outbox[0].subject


def test_deadline_alert_also_goes_to_the_merchants_webhooks(merchant, branch, sale, worker):
    from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(merchant=merchant, url="https://erp.example.com/hooks", secret="whsec_x")
    merchant.global_periodicity = "01"
    merchant.save()
    on_the_system_since(merchant, "2026-01-01 00:00")
    sale(branch, "A", "2026-03-07 12:00")
    global_invoices_run_merchant(merchant=merchant, now=at("2026-03-08 00:10"))
    worker()  # fails: no CSD
    assert global_deadline_alerts(merchant=merchant, now=at("2026-03-08 19:00")) == 1
    delivery = WebhookDelivery.objects.get(event="global_invoice.deadline_alert")
    assert delivery.payload["data"]["open_tickets"] == 1


def test_no_alert_for_periods_whose_deadline_passed_before_the_merchant_existed(merchant, branch, sale, worker):
    """The demo's case: a merchant created today with weeks of tickets loaded from before; the scheduler issues
    their globals but raises no "venció el plazo" for deadlines that passed before the merchant was here."""
    merchant.global_periodicity, merchant.contact_email = "01", "dueno@example.com"
    merchant.save()
    on_the_system_since(merchant, "2026-03-10 09:00")
    sale(branch, "OLD", "2026-03-07 12:00")  # its daily global was due on 8 March, before the merchant existed
    sale(branch, "NEW", "2026-03-10 12:00")  # due on 11 March: the merchant's own
    global_invoices_run_merchant(merchant=merchant, now=at("2026-03-11 00:10"))
    worker()  # both fail: no CSD
    assert global_deadline_alerts(merchant=merchant, now=at("2026-03-11 20:00")) == 1
    [event] = Event.objects.filter(entity="global_period", to_status="deadline_alert")
    assert GlobalPeriod.objects.get(pk=event.object_id).first_day.isoformat() == "2026-03-10"
    assert len(mail.outbox) == 1


def test_no_alert_when_the_period_is_stamped(merchant, branch, sale, yesterday, certificate, worker):
    merchant.global_periodicity = "01"
    merchant.save()
    sale(branch, "A", yesterday)
    global_invoices_run_merchant(merchant=merchant)
    worker()
    assert Invoice.objects.get().status == "stamped"
    gp = GlobalPeriod.objects.get()
    assert global_deadline_alerts(merchant=merchant, now=gp.deadline) == 0


def test_inactive_merchants_and_other_merchants_tickets_are_left_alone(merchant, branch, other_merchant,
                                                                       other_branch, sale):
    Merchant.objects.filter(pk=other_merchant.pk).update(is_active=False)
    sale(branch, "A", "2026-02-10 12:00")
    sale(other_branch, "B", "2026-02-10 12:00")
    global_invoices_run(now=at("2026-03-02 00:00"))
    assert Ticket.objects.get(number="A").status == "globalized"
    assert Ticket.objects.get(number="B").status == "open"
    assert Branch.objects.count() == 2
