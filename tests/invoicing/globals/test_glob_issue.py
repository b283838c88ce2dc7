"""global_invoice_issue: selection in the merchant's time zone, grouping, split, reasons, reservation."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from infra.models import Event
from invoicing.cfdi.verify import verify
from invoicing.errors import InvoicingError
from invoicing.models import GlobalPeriod, Invoice
from invoicing.periods import period_containing
from invoicing.services import invoice_issue
from invoicing.services.global_invoice import global_invoice_issue, global_invoice_preview
from tickets.models import Branch, Ticket

D = dt.date


def statuses(*tickets):
    return [Ticket.objects.get(pk=t.pk).status for t in tickets]


def test_global_takes_the_open_tickets_of_the_local_day_and_reserves_them(merchant, branch, sale):
    merchant.global_periodicity = "01"
    merchant.save()
    before = sale(branch, "A", "2026-03-06 23:59")
    inside = [sale(branch, "B", "2026-03-07 00:00"), sale(branch, "C", "2026-03-07 23:59:59", total="300.00")]
    after = sale(branch, "D", "2026-03-08 00:00")
    void = sale(branch, "V", "2026-03-07 12:00")
    Ticket.objects.filter(pk=void.pk).update(status="void")
    result = global_invoice_issue(merchant=merchant, period="2026-03-07")
    [invoice] = result
    assert (invoice.kind, invoice.status, invoice.serie, invoice.folio) == ("global", "pending", "G", 1)
    assert (invoice.global_periodicity, invoice.global_months, invoice.global_year) == ("01", "03", 2026)
    assert (invoice.receptor_rfc, invoice.receptor_postal_code, invoice.receptor_cfdi_use) == (
        "XAXX010101000", "06600", "S01")
    assert invoice.total == Decimal("416.00")
    assert sorted(result.included) == sorted(t.pk for t in inside)
    assert statuses(*inside) == ["globalized", "globalized"]
    assert statuses(before, after, void) == ["open", "open", "void"]
    assert Event.objects.filter(entity="ticket", to_status="globalized").count() == 2
    assert GlobalPeriod.objects.get().invoices.get() == invoice
    # Idempotent: the same period again finds nothing left to take.
    assert len(global_invoice_issue(merchant=merchant, period="2026-03-07")) == 0


def test_payment_form_is_the_largest_tickets(merchant, branch, sale):
    sale(branch, "A", "2026-03-07 10:00", total="50.00", payment_form="01")
    sale(branch, "B", "2026-03-07 11:00", total="900.00", payment_form="04")
    sale(branch, "C", "2026-03-07 12:00", total="70.00", payment_form="28")
    [invoice] = global_invoice_issue(merchant=merchant, period="2026-03")
    assert invoice.payment_form == "04" and invoice.global_periodicity == "04"


def test_one_global_per_branch_with_different_postal_codes(merchant, branch, sale):
    north = Branch.objects.create(merchant=merchant, code="NORTE", name="Norte", postal_code="64000",
                                  global_serie="GN")
    same_cp = Branch.objects.create(merchant=merchant, code="CENTRO2", name="Centro 2", postal_code="06600")
    for b in (branch, north, same_cp):
        sale(b, "1", "2026-03-07 10:00")
    by_branch = global_invoice_issue(merchant=merchant, period="2026-03")
    assert sorted((i.branch.code, i.serie) for i in by_branch) == [("CENTRO", "G"), ("CENTRO2", "G"),
                                                                    ("NORTE", "GN")]


def test_merchant_grouping_shares_one_global_per_postal_code(merchant, branch, sale):
    merchant.global_grouping = "merchant"
    merchant.save()
    north = Branch.objects.create(merchant=merchant, code="NORTE", name="Norte", postal_code="64000")
    same_cp = Branch.objects.create(merchant=merchant, code="CENTRO2", name="Centro 2", postal_code="06600")
    for b in (branch, north, same_cp):
        sale(b, "1", "2026-03-07 10:00")
    result = global_invoice_issue(merchant=merchant, period="2026-03")
    assert sorted((i.branch.code, i.receptor_postal_code, i.ticket_links.count()) for i in result) == [
        ("CENTRO", "06600", 2), ("NORTE", "64000", 1)]


def test_a_large_period_is_split_above_the_configured_size(merchant, branch, sale, settings):
    settings.GLOBAL_INVOICE_MAX_TICKETS = 3
    tickets = [sale(branch, f"T{i}", f"2026-03-07 10:{i:02d}") for i in range(7)]
    result = global_invoice_issue(merchant=merchant, period="2026-03-07")
    assert [i.ticket_links.count() for i in result] == [3, 3, 1]
    assert [i.folio for i in result] == [1, 2, 3]
    assert set(statuses(*tickets)) == {"globalized"}
    # The first CFDI holds the earliest sales.
    assert set(result.invoices[0].ticket_links.values_list("ticket__number", flat=True)) == {"T0", "T1", "T2"}


def test_explicit_tickets_say_which_went_in_and_why_the_others_did_not(merchant, branch, other_branch, sale):
    ok = sale(branch, "OK", "2026-03-07 10:00")
    invoiced = sale(branch, "INV", "2026-03-07 11:00")
    Ticket.objects.filter(pk=invoiced.pk).update(status="invoiced")
    outside = sale(branch, "OUT", "2026-04-01 00:00")
    foreign = sale(other_branch, "X", "2026-03-07 10:00")
    result = global_invoice_issue(merchant=merchant, period="2026-03",
                                  ticket_ids=[ok.pk, invoiced.pk, outside.pk, foreign.pk])
    assert result.included == [ok.pk]
    assert {e["ticket_id"]: e["code"] for e in result.excluded} == {
        invoiced.pk: "ticket_already_invoiced", outside.pk: "ticket_outside_period",
        foreign.pk: "ticket_not_found"}
    assert Ticket.objects.get(pk=foreign.pk).status == "open"


def test_an_open_period_is_refused(merchant, branch):
    with pytest.raises(InvoicingError) as err:
        global_invoice_issue(merchant=merchant, period=period_containing("04", timezone.localdate()))
    assert err.value.code == "period_not_closed" and err.value.status == 422


def test_bimonthly_is_refused_outside_regimen_621(merchant):
    from invoicing.periods import period_containing

    with pytest.raises(InvoicingError) as err:
        global_invoice_issue(merchant=merchant, period=period_containing("05", D(2026, 1, 1)))
    assert err.value.code == "invalid_period" and "621" in err.value.message


def test_bimonthly_global_for_regimen_621(merchant, branch, sale):
    merchant.tax_regime, merchant.global_periodicity = "621", "05"
    merchant.save()
    sale(branch, "A", "2026-01-31 10:00")
    sale(branch, "B", "2026-02-28 23:00")
    sale(branch, "C", "2026-03-01 00:00")
    [invoice] = global_invoice_issue(merchant=merchant, period="2026-02")
    assert (invoice.global_periodicity, invoice.global_months, invoice.ticket_links.count()) == ("05", "13", 2)


def test_ticket_in_a_global_is_refused_to_the_shopper(merchant, branch, sale, receptor):
    t = sale(branch, "A", "2026-03-07 10:00")
    global_invoice_issue(merchant=merchant, period="2026-03")
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[t.pk], receptor=receptor, enforce_deadline=False)
    assert err.value.code == "ticket_in_global_invoice"


def test_preview_totals_by_branch_and_payment_form(merchant, branch, sale):
    sale(branch, "A", "2026-03-07 10:00", total="100.00", payment_form="01")
    sale(branch, "B", "2026-03-07 11:00", total="50.00", payment_form="04")
    p = global_invoice_preview(merchant=merchant, period="2026-03")
    assert (p["count"], p["total"], p["closed"]) == (2, Decimal("150.00"), True)
    assert [(r["branch__code"], r["count"], r["total"]) for r in p["by_branch"]] == [("CENTRO", 2, Decimal("150"))]
    assert [(r["payment_form"], r["total"]) for r in p["by_payment_form"]] == [("01", 100), ("04", 50)]


def test_stamped_global_verifies_and_a_failed_one_gives_the_tickets_back(merchant, branch, sale, yesterday,
                                                                         certificate, worker, sat_cert):
    merchant.global_periodicity = "01"
    merchant.save()
    tickets = [sale(branch, f"S{i}", yesterday + dt.timedelta(minutes=i), total=f"{100 + i}.50") for i in range(3)]
    [invoice] = global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat())
    worker()
    invoice.refresh_from_db()
    assert invoice.status == "stamped", invoice.last_error_message
    check = verify(bytes(invoice.stamped_xml), sat_cert=sat_cert)
    assert check.ok, check.summary()
    assert b'Periodicidad="01"' in bytes(invoice.stamped_xml)
    assert set(statuses(*tickets)) == {"globalized"}


def test_failed_global_releases_its_tickets_to_open(merchant, branch, sale, yesterday, worker):
    merchant.global_periodicity = "01"
    merchant.save()
    t = sale(branch, "S", yesterday)
    [invoice] = global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat())
    worker()  # no CSD installed: permanent failure
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.FAILED
    assert statuses(t) == ["open"]
