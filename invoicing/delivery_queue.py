"""The delivery queue: what stamped invoices still owe (PDF stored, email sent), one row per invoice.

Like the stamping queue (stamp_queue.py), the rows are the queue and a few tasks drain it:

- ``InvoiceDelivery`` rows are written in the transaction that stamps their invoices, so a crash right after
  the stamp loses nothing. Rows come in two lanes: ordinary invoices, drained on the ``deliver`` queue, and
  large ones (more than INVOICE_PDF_LARGE_CONCEPTS concepts), drained on the ``bulk`` queue: a giant PDF never
  holds the worker that sends the small invoices' emails.
- One ``DeliverySlot`` per lane bounds the queued tasks: after its commit, a stamped batch arms its lane's slot
  and enqueues ``deliver_documents(large)``; while the slot is armed a task is bound to come, and nothing more
  is enqueued. The task disarms it first, then claims one invoice at a time (``SKIP LOCKED``, leased for
  INVOICE_DELIVERY_LEASE_SECONDS, longer than a task may live) until the lane is empty or its time is up.
- A failure is that invoice's alone: it backs off (INVOICE_DELIVERY_BACKOFF_SECONDS, doubling) up to
  INVOICE_DELIVERY_MAX_ATTEMPTS. PostgreSQL going away is nobody's failure: the task waits for it and hands the
  invoice back (``delivery_release``) and frees its slot, without counting an attempt. ``manage.py qcluster`` looks at its lanes every INVOICE_QUEUE_TICK_MS and the
  every-minute sweeper does the same: a retry that is due, a lease a dead worker left, or a wake-up that got
  lost (a slot armed for longer than INVOICE_STUCK_AFTER_SECONDS) wakes the lane again.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from infra.events import transition
from infra.queues import BULK, DELIVER, after_commit, enqueue
from invoicing.models import DeliverySlot, Invoice, InvoiceDelivery

log = logging.getLogger(__name__)

ENTITY = "invoice_delivery"  # of its event rows
REGULAR, LARGE = 0, 1  # slot ids, one per lane
LANES = {False: (REGULAR, DELIVER), True: (LARGE, BULK)}
_CONCEPTO = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Concepto[\s/>]")


def concept_count(xml: bytes | memoryview | None) -> int:
    """Concepts in a CFDI, read off its bytes (no parse): what the PDF has to lay out."""
    return len(_CONCEPTO.findall(bytes(xml))) if xml else 0


def is_large(concepts: int) -> bool:
    return concepts > settings.INVOICE_PDF_LARGE_CONCEPTS


def delivery_slots_ensure(**kwargs) -> None:
    """post_migrate (also sent after a flush): the lanes' slot rows exist."""
    DeliverySlot.objects.bulk_create([DeliverySlot(id=i) for i in (REGULAR, LARGE)], ignore_conflicts=True)


def deliveries_create(invoices: list[Invoice], *, send_pdf: bool) -> set[bool]:
    """Inside the transaction that stamps ``invoices``: a pending delivery for each that has something to
    deliver (its PDF when ``send_pdf``, or an email when the receptor gave an address). Returns the lanes
    (``large`` values) that got work, to wake after the commit."""
    now = timezone.now()
    rows = []
    for invoice in invoices:
        if not (send_pdf or invoice.receptor_emails):
            continue
        concepts = concept_count(invoice.stamped_xml)
        rows.append(InvoiceDelivery(invoice_id=invoice.pk, merchant_id=invoice.merchant_id, large=is_large(concepts),
                                    concepts=concepts, send_email=bool(invoice.receptor_emails),
                                    next_attempt_at=now))
    InvoiceDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return {row.large for row in rows}


def deliveries_wake(large: bool) -> bool:
    """Make sure a task looks at the lane after now. Never raises: the sweeper repairs a lost wake-up."""
    slot, queue = LANES[bool(large)]
    armed = 0
    try:
        armed = DeliverySlot.objects.filter(pk=slot, armed_at__isnull=True).update(armed_at=timezone.now())
        if armed:
            enqueue("invoicing.tasks.deliver_documents", bool(large), queue=queue, group="deliver")
        return bool(armed)
    except Exception:  # noqa: BLE001 - the broker or the database hiccuped; the tick and the sweeper wake it later
        log.exception("could not wake the delivery lane %s", slot)
        if armed:  # no task is coming: the next wake-up (the cluster's tick) may try again at once
            try:
                delivery_slot_disarm(large)
            except Exception:  # noqa: BLE001 - then the slot goes stale and the tick re-arms it
                log.exception("could not disarm the delivery lane %s", slot)
        return False


def deliveries_wake_on_commit(lanes) -> None:
    for large in sorted(set(lanes)):
        after_commit(deliveries_wake, large)


def delivery_slot_disarm(large: bool) -> None:
    """First thing a lane's task does: from now on, new work arms the slot again."""
    DeliverySlot.objects.filter(pk=LANES[bool(large)][0]).update(armed_at=None)


def _due(large: bool, now: dt.datetime):
    return InvoiceDelivery.objects.filter(status=InvoiceDelivery.Status.PENDING, large=bool(large),
                                          next_attempt_at__lte=now)


def delivery_claim(large: bool) -> int | None:
    """Take the lane's next due invoice (oldest due first), leased for INVOICE_DELIVERY_LEASE_SECONDS."""
    return delivery_claim_leased(large)[0]


def delivery_claim_leased(large: bool) -> tuple[int | None, dt.datetime]:
    """``delivery_claim``, and the lease it wrote (the row's next_attempt_at): its token for
    ``delivery_release``."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.INVOICE_DELIVERY_LEASE_SECONDS)
    with transaction.atomic():
        pk = (_due(large, now).select_for_update(skip_locked=True).order_by("next_attempt_at")
              .values_list("pk", flat=True).first())
        if pk is not None:
            InvoiceDelivery.objects.filter(pk=pk).update(next_attempt_at=lease)
    return pk, lease


def delivery_release(pk: int, lease: dt.datetime) -> int:
    """Hand a claimed delivery back, due now and without counting an attempt (a task that PostgreSQL left
    mid-way, once it is back); only while it is still under this claim's lease."""
    return InvoiceDelivery.objects.filter(pk=pk, status=InvoiceDelivery.Status.PENDING,
                                          next_attempt_at=lease).update(next_attempt_at=timezone.now())


def deliveries_tick(large: bool) -> bool:
    """Wake the lane when work is due (a retry, a lease a dead worker left, a lost wake-up); re-arm a slot whose
    task never started within a lease. True if there was due work. Cheap when there is none: one indexed query."""
    now = timezone.now()
    if not _due(large, now).exists():
        return False
    stale = now - dt.timedelta(seconds=settings.INVOICE_STUCK_AFTER_SECONDS)  # its task never started: lost
    DeliverySlot.objects.filter(pk=LANES[bool(large)][0], armed_at__lt=stale).update(armed_at=None)
    deliveries_wake(large)
    return True


def deliveries_next_wait(large: bool, max_wait: float) -> float:
    """For the cluster's tick (``manage.py qcluster``): wake the lane if work is due, and say how long to wait
    before looking again (less than ``max_wait`` when a retry falls due sooner). An index lookup."""
    now = timezone.now()
    earliest = (InvoiceDelivery.objects.filter(status=InvoiceDelivery.Status.PENDING, large=bool(large))
                .aggregate(at=Min("next_attempt_at"))["at"])
    if earliest is None:
        return max_wait
    if earliest <= now:
        deliveries_tick(large)
        return max_wait
    return min(max_wait, (earliest - now).total_seconds())


def deliveries_restart(large: bool) -> None:
    """A cluster serving the lane starts: a task armed before may have died with the previous one."""
    try:
        delivery_slot_disarm(large)
        deliveries_tick(large)
    except Exception:  # noqa: BLE001 - no database yet: the sweeper does this once the cluster runs
        log.exception("could not reset the delivery lane at start-up")


def delivery_request_pdf(invoice: Invoice) -> None:
    """A download asked for a PDF that is not rendered yet and must not be rendered in the request: make sure
    the invoice's delivery is pending and due now (a delivered one whose file was lost, or an invoice stamped
    with INVOICE_PDF_AFTER_STAMP off, gets it back), then wake its lane after the commit."""
    now = timezone.now()
    concepts = concept_count(invoice.stamped_xml)
    with transaction.atomic():
        delivery, created = InvoiceDelivery.objects.get_or_create(
            invoice=invoice, defaults={"merchant_id": invoice.merchant_id, "large": is_large(concepts),
                                       "concepts": concepts, "next_attempt_at": now})
        if not created and delivery.status != InvoiceDelivery.Status.PENDING:
            # From scratch; an email that already went out is not sent again (email_sent_at stays).
            transition(delivery, entity=ENTITY, expected=delivery.status, to=InvoiceDelivery.Status.PENDING,
                       reason="PDF solicitado en una descarga", attempts=0, next_attempt_at=now, last_error="",
                       pdf_rendered_at=None)
        deliveries_wake_on_commit([delivery.large])
