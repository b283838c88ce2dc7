"""The sweeper wakes the stamping queue when a crashed worker left leased invoices, a retry is due, or a wake-up
was lost; it stays quiet when there is nothing to do or the broker still holds a backlog."""

import datetime as dt

import pytest
from django.utils import timezone

from invoicing import tasks
from invoicing.models import Invoice, StampSlot
from invoicing.services import invoice_issue


@pytest.fixture
def queued(monkeypatch):
    """The batch tasks the sweeper enqueues (slot numbers)."""
    out = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, slot, **kw: out.append(slot))
    monkeypatch.setattr("infra.queues.broker", lambda queue: type("Idle", (), {"queue_size": lambda self: 0})())
    return out


def _issue(merchant, ticket, receptor, **fields):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    Invoice.objects.filter(pk=invoice.pk).update(**fields)
    return invoice


def test_nothing_in_flight_means_nothing_is_enqueued(merchant, ticket, receptor, queued):
    _issue(merchant, ticket, receptor, status="stamped")
    assert tasks.sweep_stuck_invoices() is False and queued == []


def test_an_invoice_whose_lease_expired_wakes_the_queue(merchant, ticket, receptor, queued):
    now = timezone.now()
    invoice = _issue(merchant, ticket, receptor, status="sealed", lease_until=now + dt.timedelta(minutes=1))
    assert tasks.sweep_stuck_invoices() is False and queued == []  # a worker holds it
    Invoice.objects.filter(pk=invoice.pk).update(lease_until=now - dt.timedelta(seconds=1))  # that worker died
    assert tasks.sweep_stuck_invoices() is True and queued == [0]


def test_a_retry_wakes_the_queue_only_when_due(merchant, ticket, receptor, queued):
    now = timezone.now()
    invoice = _issue(merchant, ticket, receptor, status="sealed", next_attempt_at=now + dt.timedelta(minutes=5))
    assert tasks.sweep_stuck_invoices() is False and queued == []  # backing off
    Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=now - dt.timedelta(seconds=1))
    assert tasks.sweep_stuck_invoices() is True and queued == [0]


def test_a_slot_armed_too_long_is_enqueued_again(merchant, ticket, receptor, queued, settings):
    """Its task was lost (a cluster killed with tasks in memory): arming stays, the sweeper re-enqueues."""
    settings.INVOICE_STAMP_SLOTS = 1
    _issue(merchant, ticket, receptor)
    StampSlot.objects.filter(pk=0).update(armed_at=timezone.now())
    assert tasks.sweep_stuck_invoices() is True and queued == []  # armed a moment ago: its task is coming
    StampSlot.objects.filter(pk=0).update(armed_at=timezone.now() - dt.timedelta(minutes=10))
    assert tasks.sweep_stuck_invoices() is True and queued == [0]


def test_the_sweeper_waits_while_the_broker_holds_a_backlog(merchant, ticket, receptor, queued, settings,
                                                           monkeypatch):
    _issue(merchant, ticket, receptor)

    class Busy:
        def queue_size(self):
            return settings.INVOICE_SWEEP_MAX_BACKLOG + 1

    seen = []
    monkeypatch.setattr("infra.queues.broker", lambda queue: seen.append(queue) or Busy())
    assert tasks.sweep_stuck_invoices() is False and queued == []
    assert seen == ["stamp"]  # the stamping queue's own backlog: a busy deliver queue is no reason to wait


def test_the_clusters_tick_fires_a_retry_at_its_time_not_at_the_next_minute(merchant, ticket, receptor, queued):
    """``manage.py qcluster --queue stamp`` calls stamp_queue_tick every INVOICE_QUEUE_TICK_MS; it sleeps no
    longer than until the next retry is due, then wakes the queue."""
    from invoicing.stamp_queue import stamp_queue_tick

    assert stamp_queue_tick(0.5) == 0.5  # nothing in flight
    now = timezone.now()
    invoice = _issue(merchant, ticket, receptor, status="sealed", attempts=1,
                     next_attempt_at=now + dt.timedelta(seconds=0.2), lease_until=None)
    wait = stamp_queue_tick(0.5)
    assert 0 < wait <= 0.2 and queued == []  # look again right when it falls due
    Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=timezone.now() - dt.timedelta(milliseconds=1))
    assert stamp_queue_tick(0.5) == 0.5 and queued == [0]
    Invoice.objects.filter(pk=invoice.pk).update(lease_until=timezone.now() + dt.timedelta(minutes=2))
    assert stamp_queue_tick(0.5) == 0.5 and queued == [0]  # a worker holds it: nothing to do until the lease ends
