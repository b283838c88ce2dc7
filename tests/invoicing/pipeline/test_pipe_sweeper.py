"""The sweeper re-queues what a crashed worker left behind, and retries when due, without flooding a long queue."""

import datetime as dt

from django.utils import timezone

from invoicing import tasks
from invoicing.models import Invoice
from invoicing.services import invoice_issue
from invoicing.services.stamping import stuck_invoices_requeue


def _age(invoice, **fields):
    Invoice.objects.filter(pk=invoice.pk).update(**fields)


def test_an_abandoned_pending_invoice_is_requeued_once_per_interval(merchant, ticket, receptor, settings):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert stuck_invoices_requeue() == []  # fresh: its own task is on its way
    _age(invoice, updated_at=timezone.now() - dt.timedelta(minutes=10))
    assert stuck_invoices_requeue() == [invoice.pk]
    assert stuck_invoices_requeue() == []  # touched: not again until another interval passes


def test_a_sealed_invoice_comes_back_when_its_retry_is_due(merchant, ticket, receptor):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    now = timezone.now()
    _age(invoice, status="sealed", updated_at=now - dt.timedelta(seconds=30),
         next_attempt_at=now + dt.timedelta(minutes=5))
    assert stuck_invoices_requeue() == []  # backing off
    _age(invoice, next_attempt_at=now - dt.timedelta(seconds=1))
    assert stuck_invoices_requeue() == [invoice.pk]
    assert stuck_invoices_requeue() == []


def test_finished_invoices_are_never_requeued(merchant, ticket, receptor):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    _age(invoice, status="failed", updated_at=timezone.now() - dt.timedelta(days=1))
    assert stuck_invoices_requeue() == []


def test_the_sweeper_waits_while_the_queue_holds_a_backlog(merchant, ticket, receptor, settings, monkeypatch):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    _age(invoice, updated_at=timezone.now() - dt.timedelta(minutes=10))
    queued = []
    monkeypatch.setattr(tasks, "enqueue_stamp", queued.append)

    class Busy:
        def queue_size(self):
            return settings.INVOICE_SWEEP_MAX_BACKLOG + 1

    monkeypatch.setattr("django_q.brokers.get_broker", lambda: Busy())
    assert tasks.sweep_stuck_invoices() == 0 and queued == []
    monkeypatch.setattr("django_q.brokers.get_broker", lambda: type("Idle", (), {"queue_size": lambda self: 0})())
    assert tasks.sweep_stuck_invoices() == 1 and queued == [invoice.pk]
