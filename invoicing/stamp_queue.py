"""The stamping queue: invoices wait in their own table; a few django-q2 tasks drain it in batches.

One task per invoice made django-q2 itself the bottleneck (a no-op task costs ~3 ms of pusher, worker and
monitor time) and paid a transaction per step of every invoice. Instead:

- The invoices in flight (``pending``/``sealed``) *are* the queue, ordered by id, under a partial index.
- ``StampSlot`` rows say how many batch tasks may be queued at once. After committing an invoice, the issuer
  arms a free slot and enqueues one ``stamp_batch(slot)``; when every slot is armed or being armed, a task
  is already bound to start after this commit, so nothing is enqueued.
- A batch task disarms its slot first, then claims up to ``INVOICE_STAMP_BATCH`` invoices at a time
  (``FOR UPDATE SKIP LOCKED``, so two tasks never claim the same ones) with a lease, and stamps them until
  the queue is empty. Anything committed after the disarm either arms the slot again or is seen by the
  claim that follows it.
- A worker killed mid-batch leaves leases that expire after ``INVOICE_STUCK_AFTER_SECONDS``; the sweeper
  wakes the queue when claimable work exists and re-enqueues slots armed for that long (a task lost with
  a crashed cluster). Claiming twice is safe anyway: every state change is guarded and a PAC answers a
  resent sealed XML with its first UUID.
- A task that PostgreSQL leaves mid-way (a restart) waits for it to come back and hands its claim and its slot
  back at once (``invoices_release``, ``stamp_batch``), instead of leaving them to expire. A wake-up the broker
  refuses leaves its slot free. A cluster that saw its database or its broker go away resets its slots when
  they are back, as at start-up: tasks queued before may be gone (``manage.py qcluster``).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from infra.db.prepared import prepared_fetchall
from infra.outages import broker_unavailable
from infra.queues import STAMP, after_commit, enqueue
from invoicing.lifecycle import IN_FLIGHT
from invoicing.models import Invoice, StampSlot

log = logging.getLogger(__name__)

SLOTS_MAX = 16  # rows created; INVOICE_STAMP_SLOTS of them are used


def stamp_slots_ensure(**kwargs) -> None:
    """post_migrate (also sent after a flush): the slot rows exist."""
    StampSlot.objects.bulk_create([StampSlot(id=i) for i in range(SLOTS_MAX)], ignore_conflicts=True)


def _slots() -> int:
    return max(1, min(int(settings.INVOICE_STAMP_SLOTS), SLOTS_MAX))


def _skip_locked() -> str:
    return " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""


def stamp_queue_wake() -> int | None:
    """Make sure a batch task looks at the queue after now; call it after the commit that queued invoices.

    Returns the slot armed (a task was enqueued), or None when a task is already bound to come. Never raises:
    the invoice is committed whatever happens here, and the sweeper repairs a lost wake-up.
    """
    table = StampSlot._meta.db_table
    try:
        rows = prepared_fetchall(
            f"UPDATE {table} SET armed_at = %s WHERE id = (SELECT id FROM {table} "  # noqa: S608
            f"WHERE id < %s AND armed_at IS NULL ORDER BY id LIMIT 1{_skip_locked()}) RETURNING id",
            [timezone.now(), _slots()],
        )
        row = rows[0] if rows else None
        if row is None:
            return None
        slot = row[0]
    except Exception:  # noqa: BLE001 - the database hiccuped; the cluster's tick and the sweeper wake it later
        log.exception("could not wake the stamping queue")
        return None
    try:
        enqueue("invoicing.tasks.stamp_batch", slot, queue=STAMP)
    except Exception as exc:  # noqa: BLE001 - the broker is away: no task is coming for this slot
        if broker_unavailable(exc):
            log.warning("could not wake the stamping queue: the broker is away (%s)", exc)
        else:
            log.exception("could not wake the stamping queue")
        try:
            # Armed, the slot would promise a task that never comes until it went stale: free it, so that the
            # next wake-up (the cluster's tick, once the broker answers) enqueues one.
            stamp_slot_disarm(slot)
        except Exception:  # noqa: BLE001 - then it goes stale and the tick re-arms it
            log.exception("could not disarm stamping slot %s", slot)
        return None
    return slot


def stamp_queue_wake_on_commit() -> None:
    """For a service that just queued an invoice inside its transaction."""
    after_commit(stamp_queue_wake)


def stamp_slot_disarm(slot: int) -> None:
    """First thing a batch task does: from now on, a new invoice arms the slot again."""
    StampSlot.objects.filter(pk=slot).update(armed_at=None)


def _claimable(now: dt.datetime) -> Q:
    return (
        Q(status__in=IN_FLIGHT)
        & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    )


def invoices_claim(*, limit: int | None = None, ids: list[int] | None = None) -> list[int]:
    """Take up to ``limit`` invoices off the queue (only among ``ids`` when given), oldest first, leased for
    INVOICE_STUCK_AFTER_SECONDS."""
    return invoices_claim_leased(limit=limit, ids=ids)[0]


def invoices_claim_leased(*, limit: int | None = None,
                          ids: list[int] | None = None) -> tuple[list[int], dt.datetime]:
    """``invoices_claim``, and the lease it wrote: the claim's token for ``invoices_release``."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.INVOICE_STUCK_AFTER_SECONDS)
    with transaction.atomic():
        claimable = Invoice.objects.select_for_update(skip_locked=True).filter(_claimable(now))
        if ids is not None:
            claimable = claimable.filter(pk__in=ids)
        ids = list(claimable.order_by("pk").values_list("pk", flat=True)[: limit or settings.INVOICE_STAMP_BATCH])
        if ids:
            Invoice.objects.filter(pk__in=ids).update(lease_until=lease)
    return ids, lease


def invoices_release(ids: list[int], lease: dt.datetime) -> int:
    """Hand claimed invoices back to the queue before their lease runs out (a task that PostgreSQL left mid-way,
    once it is back). Only those still under this claim's lease: one a later claim took stays with it."""
    return Invoice.objects.filter(pk__in=ids, status__in=IN_FLIGHT, lease_until=lease).update(lease_until=None)


def stamp_queue_sweep() -> bool:
    """The sweeper's part: wake the queue when claimable work exists (leases expired, retries due, or a
    wake-up lost), re-enqueueing slots armed for longer than INVOICE_STUCK_AFTER_SECONDS. True if it woke."""
    now = timezone.now()
    if not Invoice.objects.filter(_claimable(now)).exists():
        return False
    stale = now - dt.timedelta(seconds=settings.INVOICE_STUCK_AFTER_SECONDS)
    StampSlot.objects.filter(pk__lt=_slots(), armed_at__lt=stale).update(armed_at=None)
    stamp_queue_wake()
    return True


def stamp_queue_tick(max_wait: float) -> float:
    """The stamping cluster's look at its queue, every few hundred milliseconds (``manage.py qcluster``): wake
    it when work is claimable (``stamp_queue_sweep``). Returns how long to wait before the next look: less than
    ``max_wait`` when a retry or a lease falls due sooner, so a retry fires at its time.

    One query over the in-flight rows (the partial index ``invoice_in_flight``); nothing in flight costs nothing.
    """
    now = timezone.now()
    epoch = Value(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    earliest = Invoice.objects.filter(status__in=IN_FLIGHT).aggregate(at=Min(Greatest(
        Coalesce("next_attempt_at", epoch), Coalesce("lease_until", epoch))))["at"]
    if earliest is None:
        return max_wait
    if earliest <= now:
        stamp_queue_sweep()
        return max_wait
    return min(max_wait, (earliest - now).total_seconds())


def stamp_queue_restart() -> None:
    """A cluster is starting (``manage.py qcluster``): tasks armed before it may have died with the previous
    one (Redis hands a task out once), so every slot is disarmed and the queue woken if work is waiting.
    A task of another, still running cluster gets a twin at worst, which finds the queue empty."""
    try:
        StampSlot.objects.update(armed_at=None)
        if Invoice.objects.filter(_claimable(timezone.now())).exists():
            stamp_queue_wake()
    except Exception:  # noqa: BLE001 - no database yet: the sweeper does this once the cluster runs
        log.exception("could not reset the stamping queue at start-up")
