"""django-q2 tasks: each takes ids, calls one service, and is enqueued after commit."""

import logging

from django_q.tasks import async_task

log = logging.getLogger(__name__)


def enqueue_stamp(invoice_id: int) -> None:
    async_task("invoicing.tasks.stamp_invoice", invoice_id, task_name=f"stamp-invoice-{invoice_id}",
               group="stamp")


def stamp_invoice(invoice_id: int) -> str:
    from invoicing.services.stamping import invoice_stamp

    return invoice_stamp(invoice_id=invoice_id)


def enqueue_after_stamped(invoice_id: int) -> None:
    from django.conf import settings

    if not settings.INVOICE_POST_STAMP_TASKS:
        return
    async_task("invoicing.tasks.render_pdf", invoice_id, group="pdf")
    async_task("invoicing.tasks.send_invoice_email", invoice_id, group="email")
    from invoicing.webhooks.services import invoice_webhook_emit

    invoice_webhook_emit(invoice_id=invoice_id)  # invoice.stamped, or global_invoice.stamped for a global


def render_pdf(invoice_id: int) -> None:
    from invoicing.services.documents import invoice_pdf_render

    invoice_pdf_render(invoice_id=invoice_id)


def send_invoice_email(invoice_id: int, to: list[str] | None = None, actor: str = "") -> int:
    """First delivery after stamping (``to`` None: skipped if it already went out, so a retried task does
    not email twice) or a resend to ``to``."""
    from invoicing.services.documents import invoice_email_send

    return invoice_email_send(invoice_id=invoice_id, to=to, actor=actor, skip_if_sent=to is None)


def sweep_stuck_invoices() -> int:
    """Periodic: re-queue invoices left pending/sealed by a crashed worker, and retries that are due.

    Skipped while the queue holds a large backlog: those invoices' tasks are most likely still waiting in it.
    """
    from django.conf import settings
    from django_q.brokers import get_broker

    from invoicing.services.stamping import stuck_invoices_requeue

    backlog = get_broker().queue_size() or 0
    if backlog > settings.INVOICE_SWEEP_MAX_BACKLOG:
        log.info("sweeper skipped: %d tasks still queued", backlog)
        return 0
    ids = stuck_invoices_requeue()
    for invoice_id in ids:
        enqueue_stamp(invoice_id)
    if ids:
        log.info("sweeper re-queued %d invoice(s)", len(ids))
    return len(ids)
