"""django-q2 tasks: each takes ids (stamp_batch: its queue slot), calls one service, and is enqueued after commit."""

import logging

from django_q.tasks import async_task

log = logging.getLogger(__name__)


def stamp_batch(slot: int) -> int:
    """Drain the stamping queue (see invoicing/stamp_queue.py); returns how many invoices it stamped."""
    from invoicing.services.stamping import invoices_stamp_queued
    from invoicing.stamp_queue import stamp_slot_disarm

    stamp_slot_disarm(slot)
    return invoices_stamp_queued()


def stamp_invoice(invoice_id: int) -> str:
    """Stamp one invoice ahead of the queue (staff's "reintentar ahora"); the queue itself is drained in
    batches by stamp_batch. Returns the invoice's status."""
    from invoicing.services.stamping import invoice_stamp

    return invoice_stamp(invoice_id=invoice_id)


def enqueue_after_stamped(invoice_ids: list[int], deliver_ids: list[int] | None = None) -> None:
    """Right after a batch is stamped (on commit, in the worker): the webhooks, then one task for the documents
    of ``deliver_ids`` (default: all of them)."""
    from django.conf import settings

    from invoicing.webhooks.services import invoices_webhook_emit

    if not settings.INVOICE_POST_STAMP_TASKS or not invoice_ids:
        return
    invoices_webhook_emit(invoice_ids)  # invoice.stamped / global_invoice.stamped; never raises
    deliver_ids = invoice_ids if deliver_ids is None else deliver_ids
    if deliver_ids:
        async_task("invoicing.tasks.deliver_stamped", list(deliver_ids), group="deliver")


def deliver_stamped(invoice_ids: list[int]) -> None:
    """The PDF and the email of each invoice of a stamped batch.

    One task per batch, not two per invoice: at hundreds of invoices a second, per-invoice tasks would be most
    of the queue's work. A problem with one invoice is logged and does not stop the others; the email is
    skipped if it already went out, so a retried task does not send twice.
    """
    from django.conf import settings

    from invoicing.services.documents import invoice_email_send, invoice_pdf_render

    for invoice_id in invoice_ids:
        try:
            if settings.INVOICE_PDF_AFTER_STAMP:
                invoice_pdf_render(invoice_id=invoice_id)
            invoice_email_send(invoice_id=invoice_id, skip_if_sent=True)
        except Exception:  # noqa: BLE001 - one invoice's document must not hold back the rest of the batch
            log.exception("documents of invoice %s could not be delivered", invoice_id)


def send_invoice_email(invoice_id: int, to: list[str] | None = None, actor: str = "") -> int:
    """First delivery after stamping (``to`` None: skipped if it already went out, so a retried task does
    not email twice) or a resend to ``to``."""
    from invoicing.services.documents import invoice_email_send

    return invoice_email_send(invoice_id=invoice_id, to=to, actor=actor, skip_if_sent=to is None)


def sweep_stuck_invoices() -> bool:
    """Periodic: wake the stamping queue if a crashed worker left leased invoices, a retry is due, or a wake-up
    was lost. Skipped while the broker holds a large backlog: the work is most likely still waiting in it."""
    from django.conf import settings
    from django_q.brokers import get_broker

    from invoicing.stamp_queue import stamp_queue_sweep

    backlog = get_broker().queue_size() or 0
    if backlog > settings.INVOICE_SWEEP_MAX_BACKLOG:
        log.info("sweeper skipped: %d tasks still queued", backlog)
        return False
    return stamp_queue_sweep()
