"""Failover between a merchant's PACs, end to end against the Finkok and SW fakes (real HTTP on loopback), 200
invoices per scenario, the stamping pipeline run in-process: the primary down from the start, the primary dropping
30 % of the connections after stamping, the primary coming back, and late stamps that must be cancelled.

The figures (time to fail over, time to return) are printed (``-s``) and quoted in docs/pac.md.
"""

import json
import time

import pytest
from django.utils import timezone
from failover_kit import (
    drain,
    finkok_primary_sw_secondary,
    first_stamp_by,
    issue,
    ledger_check,
    seal_to_stamp,
)

from infra.models import Event
from invoicing.models import Cancellation, ExtraStamp, Invoice, PacCircuit, PacRoute, StampDoubt
from invoicing.services.failover import doubts_check_due
from invoicing.tasks_cancel import follow_up_cancellations

COUNT = 200


@pytest.fixture
def two_pacs(merchant, branch, certificate, finkok_server, sw_server, sat_server, monkeypatch, settings,
             queued_tasks):
    """The merchant stamps with Finkok and falls over to SW; both fakes answer for the real adapters."""
    finkok_primary_sw_secondary(monkeypatch, merchant, finkok_server, sw_server, sat_server)
    settings.PAC_TIMEOUT_SECONDS = 1.0
    settings.PAC_STAMP_CONCURRENCY = 8
    settings.PAC_CIRCUIT_OPEN_SECONDS = 1
    settings.INVOICE_STAMP_LINGER_MS = 0
    finkok_server.sleep_seconds = 1.5  # "late" and "timeout" answers come after the client gave up
    return finkok_server, sw_server


def report(name: str, **figures) -> None:
    print(json.dumps({"scenario": name, **figures}))


def test_primary_down_from_the_start_everything_is_stamped_by_the_secondary(two_pacs, branch, receptor,
                                                                           make_ticket):
    finkok_server, sw_server = two_pacs
    ids = issue(branch, receptor, make_ticket, COUNT, "D")
    finkok_server.down()
    down_at = timezone.now()

    seconds = drain(ids)

    assert set(Invoice.objects.filter(pk__in=ids).values_list("pac", flat=True)) == {"sw"}
    counts = ledger_check(ids, finkok_server, sw_server)
    assert finkok_server.issued() == set() and counts["extra_cancelled"] == 0
    circuit = PacCircuit.objects.get(provider="finkok")
    assert circuit.state == "open" and "conectar" in circuit.last_error
    route = PacRoute.objects.get(merchant=branch.merchant)
    assert (route.route, route.from_pac, route.to_pac) == ("secondary", "finkok", "sw")
    [switch] = Event.objects.filter(entity="pac")
    assert (switch.from_status, switch.to_status) == ("finkok", "sw") and "Finkok no responde" in switch.reason
    # Nothing was pinned to Finkok: a refused connection proves it never saw the document.
    assert not StampDoubt.objects.filter(pac="finkok").exists()
    report("primary_down", invoices=COUNT, all_stamped_s=round(seconds, 2),
           first_stamp_by_secondary_s=round((first_stamp_by(ids, "sw") - down_at).total_seconds(), 2),
           **seal_to_stamp(ids))


def test_primary_drops_30_percent_after_stamping_one_uuid_each_and_no_orphan(two_pacs, branch, receptor,
                                                                            make_ticket):
    finkok_server, sw_server = two_pacs
    finkok_server.faults["stamp"] = ("drop", 0.3)
    ids = issue(branch, receptor, make_ticket, COUNT, "X")

    seconds = drain(ids)
    follow_up_cancellations()

    counts = ledger_check(ids, finkok_server, sw_server)
    drops = sum(1 for r in finkok_server.requests if r["operation"] == "stamp") - len(finkok_server.issued())
    doubts = StampDoubt.objects.filter(invoice_id__in=ids, pac="finkok")
    assert doubts.count() > 20  # a lost answer pins the invoice to Finkok…
    assert set(doubts.values_list("status", flat=True)) == {"settled"}  # …until Finkok hands its stamp back
    by_sw = Invoice.objects.filter(pk__in=ids, pac="sw").count()
    # A dropped stamp is recovered from Finkok by resending the same sealed XML (307): never sent to SW.
    pinned_ids = set(doubts.values_list("invoice_id", flat=True))
    assert not Invoice.objects.filter(pk__in=pinned_ids, pac="sw").exists()
    report("primary_drops_30pct", invoices=COUNT, seconds=round(seconds, 2), finkok_requests=len(
        finkok_server.calls("stamp")), lost_answers=drops, pinned=len(pinned_ids), stamped_by_finkok=Invoice.objects.filter(pk__in=ids, pac="finkok").count(),
        stamped_by_sw=by_sw, **counts, **seal_to_stamp(ids))


def test_primary_back_traffic_returns_to_it(two_pacs, branch, receptor, make_ticket, settings):
    """Half the invoices while Finkok is down (SW stamps them), half queued meanwhile and stamped in batches of 10
    after it is back: until the circuit's pause is over they still go to SW, then one probes Finkok and the rest
    go to Finkok. Worst case measured: Finkok comes back just after a failed probe."""
    from invoicing.services.stamping import invoices_stamp_queued

    finkok_server, sw_server = two_pacs
    finkok_server.down()
    first = issue(branch, receptor, make_ticket, COUNT // 2, "B")
    drain(first)
    assert set(Invoice.objects.filter(pk__in=first).values_list("pac", flat=True)) == {"sw"}
    second = issue(branch, receptor, make_ticket, COUNT // 2, "R")
    settings.INVOICE_STAMP_BATCH = 10
    PacCircuit.objects.filter(provider="finkok").update(retry_at=timezone.now())
    invoices_stamp_queued(budget_seconds=0)  # one batch: its probe of Finkok fails, a new pause starts

    finkok_server.up()
    up_at = timezone.now()
    started = time.monotonic()
    while Invoice.objects.filter(pk__in=second, status__in=["pending", "sealed"]).exists():
        assert time.monotonic() - started < 30
        invoices_stamp_queued(budget_seconds=0)  # batch after batch, as traffic keeps coming
    returned = first_stamp_by(second, "finkok")
    assert returned is not None
    assert PacCircuit.objects.get(provider="finkok").state == "closed"
    by_pac = list(Invoice.objects.filter(pk__in=second).order_by("pk").values_list("pac", flat=True))
    switch = by_pac.index("finkok")
    # The probe's batch: one invoice probes Finkok, the rest of it still goes to SW; after it, all to Finkok but
    # an invoice Finkok certainly did not stamp (a refused connection: it fails over alone) or one whose SW answer
    # was lost (pinned to SW, it may only be stamped there) — on a loaded machine.
    after = Invoice.objects.filter(pk__in=second).order_by("pk")[switch + settings.INVOICE_STAMP_BATCH:]
    pinned_to_sw = set(StampDoubt.objects.filter(pac="sw").values_list("invoice_id", flat=True))
    for invoice in after:
        if invoice.pac == "sw" and invoice.pk not in pinned_to_sw:
            stamped = Event.objects.filter(entity="invoice", object_id=invoice.pk, to_status="stamped").get()
            assert "(respaldo: Finkok: " in stamped.reason, stamped.reason
    assert by_pac[switch:].count("sw") <= settings.INVOICE_STAMP_BATCH + 3
    route = PacRoute.objects.get(merchant=branch.merchant)
    assert (route.route, route.from_pac, route.to_pac) == ("primary", "sw", "finkok")
    assert list(Event.objects.filter(entity="pac").order_by("pk").values_list("from_status", "to_status")) == [
        ("finkok", "sw"), ("sw", "finkok")]
    ledger_check(first + second, finkok_server, sw_server)
    report("primary_back", invoices=COUNT, open_seconds=settings.PAC_CIRCUIT_OPEN_SECONDS,
           return_s=round((returned - up_at).total_seconds(), 2), drain_s=round(time.monotonic() - started, 2),
           stamped_by_sw_after_up=by_pac.count("sw"), stamped_by_finkok_after_up=by_pac.count("finkok"))


def test_late_stamps_after_a_failover_are_found_and_cancelled(two_pacs, branch, receptor, make_ticket, settings,
                                                              queued_tasks, django_capture_on_commit_callbacks):
    """Finkok answers 10 % of the requests only after the client gave up, stamping them anyway; asked again it
    answers 708 (it cannot reach SAT) without a stamp, so those invoices go to SW. The late check finds each
    late Finkok stamp and cancels it (motivo 02); the merchant is told."""
    finkok_server, sw_server = two_pacs
    finkok_server.faults["stamp"] = ("late", 0.1)
    finkok_server.resend_modes["stamp"] = "708"
    ids = issue(branch, receptor, make_ticket, COUNT, "L")

    drain(ids)
    time.sleep(finkok_server.sleep_seconds)  # the late requests land
    StampDoubt.objects.filter(status="cleared").update(next_check_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        checked = doubts_check_due()
        follow_up_cancellations()

    late = ExtraStamp.objects.count()
    assert checked == late > 5
    assert set(ExtraStamp.objects.values_list("pac", "how").distinct()) == {("finkok", "check")}
    counts = ledger_check(ids, finkok_server, sw_server)
    assert counts["extra_cancelled"] == late
    # The invoice kept its SW stamp; the merchant hears about the duplicate (webhook + email task).
    extra = ExtraStamp.objects.select_related("invoice").first()
    assert extra.invoice.pac == "sw" and str(extra.invoice.uuid) != str(extra.uuid)
    assert Event.objects.filter(entity="invoice", object_id=extra.invoice_id, data__kind="extra_stamp").count() == 2
    emails = [args for _, func, args in queued_tasks if func == "invoicing.tasks_cancel.duplicate_stamp_email"]
    assert (extra.pk, "detected") in emails and (extra.pk, "cancelled") in emails
    assert Cancellation.objects.filter(source="duplicate").count() == late
    report("late_stamps", invoices=COUNT, late_stamps_cancelled=late, **counts)
