"""django-q2 tasks: each takes ids (a queue's task: its lane or slot), calls one service, and is enqueued after
commit through infra.queues.enqueue, on the queue named where it is enqueued (docs/operations.md)."""

import logging

from infra.logcontext import log_context
from infra.outages import hand_back_after_outage
from infra.queues import STAMP, backlog
from invoicing.delivery_queue import deliveries_tick, deliveries_wake, delivery_slot_disarm
from invoicing.services.delivery import invoices_deliver_queued
from invoicing.services.documents import invoice_email_send
from invoicing.services.schedule import scheduled_invoices_release
from invoicing.services.stamping import invoice_stamp, invoices_stamp_queued
from invoicing.stamp_queue import stamp_queue_sweep, stamp_queue_wake, stamp_slot_disarm

log = logging.getLogger(__name__)


def stamp_batch(slot: int) -> int:
    """Drain the stamping queue (see invoicing/stamp_queue.py); returns how many invoices it stamped.

    If PostgreSQL goes away under it, the slot may still be armed (the disarm itself failed) and nothing else
    would wake the queue until the slot went stale: once the database is back, the slot is freed and the queue
    woken (the claimed invoices were handed back by ``invoices_stamp_queued``)."""
    from django.conf import settings

    try:
        stamp_slot_disarm(slot)
        return invoices_stamp_queued()
    except Exception as exc:
        hand_back_after_outage(exc, lambda: (stamp_slot_disarm(slot), stamp_queue_wake()),
                               wait_seconds=settings.INVOICE_STUCK_AFTER_SECONDS, what=f"stamping slot {slot}")
        raise


def stamp_invoice(invoice_id: int) -> str:
    """Stamp one invoice ahead of the queue (staff's "reintentar ahora"); the queue itself is drained in
    batches by stamp_batch. Returns the invoice's status."""
    with log_context(invoice_id=invoice_id):
        return invoice_stamp(invoice_id=invoice_id)


def deliver_documents(large: bool) -> int:
    """Drain one delivery lane (see invoicing/delivery_queue.py): PDFs and emails, invoice by invoice, each
    retried on its own. ``large``: the lane of invoices with many concepts, run on the bulk queue.

    If PostgreSQL goes away under it, the lane's slot is freed and the lane woken once it is back (as in
    ``stamp_batch``); the invoice it held was handed back by ``invoices_deliver_queued``."""
    from django.conf import settings

    try:
        delivery_slot_disarm(large)
        return invoices_deliver_queued(large=large)
    except Exception as exc:
        hand_back_after_outage(exc, lambda: (delivery_slot_disarm(large), deliveries_wake(large)),
                               wait_seconds=settings.INVOICE_STUCK_AFTER_SECONDS,
                               what=f"delivery lane {'large' if large else 'regular'}")
        raise


def send_invoice_email(invoice_id: int, to: list[str] | None = None, actor: str = "") -> int:
    """A resend asked for by a person (``to`` None: the receptor's addresses)."""
    with log_context(invoice_id=invoice_id):
        return invoice_email_send(invoice_id=invoice_id, to=to, actor=actor)


def sweep_stuck_invoices() -> bool:
    """Periodic: wake the stamping queue if a crashed worker left leased invoices, a retry is due, or a wake-up
    was lost. Skipped while the stamping queue's broker holds a large backlog: the work is most likely still
    waiting in it."""
    from django.conf import settings

    waiting = backlog(STAMP)
    if waiting > settings.INVOICE_SWEEP_MAX_BACKLOG:
        log.info("sweeper skipped: %d tasks still queued", waiting)
        return False
    return stamp_queue_sweep()


def release_scheduled_invoices() -> int:
    """Periodic: scheduled invoices whose ``issue_at`` has come get their folio and join the stamping queue
    (invoicing/services/schedule.py). Returns how many."""
    return scheduled_invoices_release()


def sweep_deliveries() -> int:
    """Periodic: wake each delivery lane that has due work (a retry, a lease a dead worker left, a wake-up that
    got lost). Returns how many lanes it woke."""
    return sum(deliveries_tick(large) for large in (False, True))
