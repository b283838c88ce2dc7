"""The stamping queue: slots that bound the queued batch tasks, leased claims, and batches that stamp many invoices
at once while a problem stays with its own invoice."""

import datetime as dt
import threading

import pytest
from django.core.management import get_commands
from django.db import connection, connections  # noqa: F401 - connection: the skipif condition reads it
from django.utils import timezone

from infra.models import Event
from invoicing.cfdi.parser import parse_cfdi
from invoicing.models import Invoice, StampSlot
from invoicing.pac.base import PacError
from invoicing.pac.sandbox import SandboxPac
from invoicing.services import ReceptorData, invoice_issue, stamping
from invoicing.services.stamping import invoices_stamp, invoices_stamp_queued
from invoicing.stamp_queue import (
    invoices_claim,
    stamp_queue_restart,
    stamp_queue_wake,
    stamp_slot_disarm,
)
from tickets.models import Ticket

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks")


@pytest.fixture
def enqueued(monkeypatch):
    """The stamp_batch tasks enqueued, by slot."""
    out = []
    monkeypatch.setattr("django_q.tasks.async_task",
                        lambda func, *args, **kw: out.append(args[0]) if func.endswith("stamp_batch") else None)
    return out


@pytest.fixture
def issue(merchant, branch, make_ticket, receptor):
    def make(count=1, **fields):
        invoices = []
        for _ in range(count):
            ticket = make_ticket(branch, number=f"Q{Ticket.objects.count() + 1}")
            invoices.append(invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor))
        if fields:
            Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(**fields)
        return invoices

    return make


def test_one_task_per_free_slot_and_none_while_every_slot_is_armed(db, enqueued, settings):
    settings.INVOICE_STAMP_SLOTS = 2
    assert [stamp_queue_wake() for _ in range(3)] == [0, 1, None]
    assert enqueued == [0, 1]
    stamp_slot_disarm(0)  # its task started: the next invoice needs a new one
    assert stamp_queue_wake() == 0 and enqueued == [0, 1, 0]


def test_issuing_wakes_the_queue_only_after_the_commit(merchant, ticket, receptor, enqueued,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
        assert enqueued == []
    assert enqueued == [0]


def test_claims_take_the_oldest_first_lease_them_and_skip_parked_or_finished_ones(issue, settings):
    first, second, third = issue(3)
    issue(1, status="stamped")
    issue(1, next_attempt_at=timezone.now() + dt.timedelta(hours=1))  # parked, or backing off
    assert invoices_claim(limit=2) == [first.pk, second.pk]
    assert invoices_claim(limit=2) == [third.pk]
    assert invoices_claim() == []  # all leased
    lease = Invoice.objects.get(pk=first.pk).lease_until
    assert lease > timezone.now() + dt.timedelta(seconds=settings.INVOICE_STUCK_AFTER_SECONDS - 5)
    Invoice.objects.filter(pk=second.pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert invoices_claim() == [second.pk]  # its worker died: the lease ran out


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_an_invoice(issue):
    issue(40)
    barrier, claimed = threading.Barrier(4), []

    def claim():
        try:
            barrier.wait()
            claimed.append(invoices_claim(limit=10))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ids = [pk for batch in claimed for pk in batch]
    assert len(ids) == len(set(ids)) == 40


def test_a_batch_seals_each_invoice_with_its_own_merchants_csd(merchant, branch, certificate, other_merchant,
                                                               other_branch, make_ticket, receptor):
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.services.certificates import certificate_install

    cer, key, password = generate_test_csd(other_merchant.rfc, other_merchant.legal_name)
    certificate_install(merchant=other_merchant, cer=cer, key=key, password=password)
    ours = [invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"A{i}").pk],
                          receptor=receptor) for i in range(3)]
    theirs = invoice_issue(merchant=other_merchant, ticket_ids=[make_ticket(other_branch, number="B").pk],
                           receptor=ReceptorData("EKU9003173C9", "ESCUELA KEMPER URGATE", "601", "36257", "G03"))
    assert sorted(invoices_stamp([i.pk for i in [*ours, theirs]])) == sorted(i.pk for i in [*ours, theirs])
    for invoice in Invoice.objects.filter(pk__in=[i.pk for i in [*ours, theirs]]).select_related("merchant"):
        parsed = parse_cfdi(bytes(invoice.stamped_xml))
        assert parsed.comprobante.emisor.rfc == invoice.merchant.rfc
        assert invoice.certificate.merchant_id == invoice.merchant_id
        assert parsed.timbre.uuid.upper() == str(invoice.uuid).upper()
    assert Event.objects.filter(entity="invoice", to_status="stamped").count() == 4


def test_a_merchant_without_csd_fails_its_invoice_alone_and_gets_its_tickets_back(issue, other_merchant,
                                                                                   other_branch, make_ticket,
                                                                                   certificate):
    good = issue(2)
    ticket = make_ticket(other_branch, number="SIN-CSD")
    bad = invoice_issue(merchant=other_merchant, ticket_ids=[ticket.pk],
                        receptor=ReceptorData("EKU9003173C9", "ESCUELA KEMPER URGATE", "601", "36257", "G03"))
    invoices_stamp([good[0].pk, bad.pk, good[1].pk])
    statuses = dict(Invoice.objects.values_list("pk", "status"))
    assert (statuses[good[0].pk], statuses[good[1].pk], statuses[bad.pk]) == ("stamped", "stamped", "failed")
    assert Invoice.objects.get(pk=bad.pk).last_error_code == "sin_csd"
    assert Ticket.objects.get(pk=ticket.pk).status == "open"


def test_a_transient_pac_error_retries_that_invoice_with_the_same_sealed_xml(issue, certificate, monkeypatch):
    a, b, c = issue(3)
    real = SandboxPac.stamp_many

    def flaky(self, xmls):
        outcomes = real(self, xmls)
        outcomes[1] = PacError("timeout", "El PAC no respondió a tiempo.", permanent=False)  # a lost answer
        return outcomes

    monkeypatch.setattr(SandboxPac, "stamp_many", flaky)
    assert sorted(invoices_stamp([a.pk, b.pk, c.pk])) == sorted([a.pk, c.pk])
    b.refresh_from_db()
    assert (b.status, b.attempts, b.last_error_code, b.lease_until) == ("sealed", 1, "timeout", None)
    assert b.next_attempt_at > timezone.now()
    sealed = bytes(b.sealed_xml)
    monkeypatch.setattr(SandboxPac, "stamp_many", real)
    assert invoices_claim() == []  # backing off
    Invoice.objects.filter(pk=b.pk).update(next_attempt_at=timezone.now())
    assert invoices_stamp_queued() == 1
    b.refresh_from_db()
    assert b.status == "stamped" and bytes(b.sealed_xml) == sealed
    from invoicing.pac.models import SandboxStamp

    assert SandboxStamp.objects.get(uuid=str(b.uuid).upper())  # the stamp stored before the "lost" answer


def test_an_unexpected_error_building_one_document_leaves_the_rest_of_the_batch_alone(issue, certificate,
                                                                                     monkeypatch):
    a, b = issue(2)
    real = stamping.invoice_comprobante

    def broken_for_b(invoice, **kwargs):
        if invoice.pk == b.pk:
            raise ZeroDivisionError("a bug")
        return real(invoice, **kwargs)

    monkeypatch.setattr(stamping, "invoice_comprobante", broken_for_b)
    assert invoices_stamp([a.pk, b.pk]) == [a.pk]
    b.refresh_from_db()
    assert (b.status, b.attempts, b.last_error_code) == ("pending", 1, "internal")
    assert b.next_attempt_at > timezone.now()  # retried later, not failed on the spot


def test_after_a_short_batch_the_task_lingers_to_gather_the_next_arrivals(issue, certificate, settings,
                                                                         monkeypatch):
    settings.INVOICE_STAMP_LINGER_MS = 50
    issue(1)
    naps = []

    def nap(seconds):
        naps.append(seconds)
        if len(naps) == 1:
            issue(2)  # a shopper presses "Facturar" meanwhile

    monkeypatch.setattr(stamping.time, "sleep", nap)
    assert invoices_stamp_queued() == 3
    assert naps == [0.05, 0.05]  # after each short batch; the empty claim ends the task
    assert set(Invoice.objects.values_list("status", flat=True)) == {"stamped"}


def test_qcluster_is_ours_and_its_start_resets_the_slots(issue, enqueued):
    assert get_commands()["qcluster"] == "invoicing"  # the subclass that warms the engine, then calls this
    StampSlot.objects.update(armed_at=timezone.now())  # armed before a crash: their tasks may be gone
    stamp_queue_restart()
    assert not StampSlot.objects.exclude(armed_at=None).exists()
    assert enqueued == []  # nothing waits
    issue(1)
    StampSlot.objects.update(armed_at=timezone.now())
    stamp_queue_restart()
    assert enqueued == [0]
    assert list(StampSlot.objects.exclude(armed_at=None).values_list("pk", flat=True)) == [0]


def test_the_slot_rows_exist_after_migrate(db):
    assert StampSlot.objects.count() == 16  # created by post_migrate, which a flush sends too
