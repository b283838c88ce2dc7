"""Deliver stamped invoices, one at a time: the body of the ``deliver_documents`` task (see delivery_queue.py).

For each invoice: render and store its PDF unless it is stored, then email XML + PDF to the receptor unless
the email already went out (``email_sent_at``, set right after the message is handed to the mail server).
A failure backs that invoice off alone; the others of its batch go on. A retried invoice resends nothing that
was sent: the worst case is a worker dying between the mail server's "OK" and that mark, and that message
carries the same Message-ID as the retry's, so mail clients show one.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.utils import timezone

from infra.events import transition
from infra.logcontext import log_context
from infra.outages import database_unavailable, hand_back_after_outage
from invoicing.delivery_queue import ENTITY, deliveries_wake, delivery_claim_leased, delivery_release
from invoicing.models import InvoiceDelivery
from invoicing.services.documents import invoice_email_send, invoice_pdf_render

log = logging.getLogger(__name__)

BACKOFF_MAX_SECONDS = 3600


def backoff_seconds(attempts: int) -> int:
    return min(settings.INVOICE_DELIVERY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


def invoices_deliver_queued(*, large: bool, budget_seconds: float | None = None) -> int:
    """Claim and deliver the lane's due invoices one by one until none is due; returns how many it handled.

    After ``budget_seconds`` (INVOICE_DELIVERY_TASK_SECONDS) it wakes the lane and returns, so a task stays far
    below its queue's timeout and one long run of work does not hold a worker for good.
    """
    budget = settings.INVOICE_DELIVERY_TASK_SECONDS if budget_seconds is None else budget_seconds
    started = time.monotonic()
    handled = 0
    while True:
        pk, lease = delivery_claim_leased(large)
        if pk is None:
            break
        try:
            invoice_deliver(invoice_id=pk)
        except Exception as exc:
            # PostgreSQL went away: once it is back the invoice is due again now, not after the lease.
            hand_back_after_outage(exc, lambda pk=pk, lease=lease: delivery_release(pk, lease),
                                   wait_seconds=settings.INVOICE_STUCK_AFTER_SECONDS,
                                   what=f"delivery of invoice {pk}")
            raise
        handled += 1
        if time.monotonic() - started > budget:
            deliveries_wake(large)
            break
    return handled


def invoice_deliver(*, invoice_id: int) -> str:
    """Store the PDF and send the email of one claimed invoice; returns the delivery's status afterwards."""
    with log_context(invoice_id=invoice_id):
        return _deliver(invoice_id)


def _deliver(invoice_id: int) -> str:
    delivery = InvoiceDelivery.objects.get(pk=invoice_id)
    if delivery.status != InvoiceDelivery.Status.PENDING:
        return delivery.status
    attempts = delivery.attempts + 1
    try:
        invoice_pdf_render(invoice_id=invoice_id)  # nothing to do when stored (by a download, a resend, a retry)
        if delivery.pdf_rendered_at is None:
            InvoiceDelivery.objects.filter(pk=invoice_id).update(pdf_rendered_at=timezone.now())
        if delivery.send_email:
            invoice_email_send(invoice_id=invoice_id, skip_if_sent=True)
    except Exception as exc:  # noqa: BLE001 - any failure is this invoice's: it backs off, the batch goes on
        if database_unavailable(exc):
            raise  # not this invoice's failure, and nothing can be written now: the task hands it back
        log.exception("delivery of invoice %s failed (attempt %s)", invoice_id, attempts)
        return _failed(delivery, attempts, exc)
    transition(delivery, entity=ENTITY, expected=InvoiceDelivery.Status.PENDING,
               to=InvoiceDelivery.Status.DELIVERED, reason=_what(delivery), attempts=attempts,
               next_attempt_at=None, last_error="", delivered_at=timezone.now())
    return delivery.status


def _what(delivery: InvoiceDelivery) -> str:
    return "PDF guardado y correo enviado" if delivery.send_email else "PDF guardado"


def _failed(delivery: InvoiceDelivery, attempts: int, exc: Exception) -> str:
    error = f"{type(exc).__name__}: {exc}"[:1000]
    if attempts >= settings.INVOICE_DELIVERY_MAX_ATTEMPTS:
        transition(delivery, entity=ENTITY, expected=InvoiceDelivery.Status.PENDING,
                   to=InvoiceDelivery.Status.FAILED, reason=f"sin entregar tras {attempts} intentos: {error}"[:500],
                   attempts=attempts, next_attempt_at=None, last_error=error)
        return InvoiceDelivery.Status.FAILED
    delay = backoff_seconds(attempts)
    InvoiceDelivery.objects.filter(pk=delivery.pk, status=InvoiceDelivery.Status.PENDING).update(
        attempts=attempts, last_error=error, next_attempt_at=timezone.now() + dt.timedelta(seconds=delay))
    return InvoiceDelivery.Status.PENDING
