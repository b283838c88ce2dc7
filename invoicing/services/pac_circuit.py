"""One circuit breaker per PAC service, shared by every worker and host through its database row (PacCircuit).

closed → open after ``PAC_CIRCUIT_FAILURES`` service failures in a row (the PAC unreachable, 5xx, lost answers,
its link to SAT down; a bad document or a wrong password is the PAC answering, and resets the count). While
open, merchants with a secondary PAC stamp there (invoicing/services/failover.py). ``PAC_CIRCUIT_OPEN_SECONDS``
after opening, the first worker to ask claims the probe (half-open, leased for ``PAC_CIRCUIT_PROBE_SECONDS`` so
a worker that dies holding it does not keep it) and sends the PAC one document: an answer closes the circuit
and traffic returns to the PAC, a failure opens it for another period.

A healthy PAC costs one read per batch and no write: rows change only on a failure or a change of state.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from invoicing.models import PacCircuit
from invoicing.pac.base import PacError

log = logging.getLogger("invoicing.pac")

CLOSED = PacCircuit.State.CLOSED
OPEN = PacCircuit.State.OPEN
HALF_OPEN = PacCircuit.State.HALF_OPEN


def circuits_read(pacs: Sequence) -> dict[str, PacCircuit]:
    """The circuits of these PACs by key; one never written (never failed) reads as closed."""
    keys = [pac.circuit_key for pac in pacs]
    found = {c.key: c for c in PacCircuit.objects.filter(key__in=keys)}
    return {pac.circuit_key: found.get(pac.circuit_key) or PacCircuit(key=pac.circuit_key, provider=pac.name)
            for pac in pacs}


def circuit_probe_claim(pac, *, now: dt.datetime | None = None) -> bool:
    """Take the probe of an open circuit whose pause is over (or whose prober died): True for one worker."""
    now = now or timezone.now()
    lease = now + dt.timedelta(seconds=settings.PAC_CIRCUIT_PROBE_SECONDS)
    return PacCircuit.objects.filter(
        Q(probe_until__isnull=True) | Q(probe_until__lt=now),
        key=pac.circuit_key, state__in=[OPEN, HALF_OPEN], retry_at__lte=now,
    ).update(state=HALF_OPEN, probe_until=lease, changed_at=now) == 1


def circuit_record(pac, outcomes: Sequence, *, known: PacCircuit | None = None) -> PacCircuit:
    """Count one call's outcomes (in order) against the PAC's circuit; returns the circuit as it is now.

    ``known`` is the circuit as read before the call: when it was closed and clean and nothing failed, there is
    nothing to write.
    """
    down = [isinstance(o, PacError) and o.service_down for o in outcomes]
    if not any(down) and known is not None and known.state == CLOSED and not known.failures:
        return known
    now = timezone.now()
    with transaction.atomic():
        row = _locked(pac)
        was = row.state
        answered = [i for i, failed in enumerate(down) if not failed]
        if answered:
            row.failures = len(down) - answered[-1] - 1  # the failures after the last answer
        else:
            row.failures += len(down)
        if any(down):
            first = next(o for o, failed in zip(outcomes, down, strict=True) if failed)
            row.last_error = f"{first.code}: {first.message}"[:300]
            row.last_failure_at = now
        if answered and row.failures < settings.PAC_CIRCUIT_FAILURES:
            row.state = CLOSED
            row.opened_at = row.retry_at = row.probe_until = None
        elif was == HALF_OPEN or (was == CLOSED and row.failures >= settings.PAC_CIRCUIT_FAILURES):
            # Opened now, or its probe failed: the next probe after a full pause.
            row.state = OPEN
            row.opened_at = row.opened_at if was == HALF_OPEN else now
            row.retry_at = now + dt.timedelta(seconds=settings.PAC_CIRCUIT_OPEN_SECONDS)
            row.probe_until = None
        if row.state != was:
            row.changed_at = now
            log.warning("PAC circuit %s: %s → %s (%s)", row.key, was, row.state, row.last_error)
        row.save()
    return row


def _locked(pac) -> PacCircuit:
    row = PacCircuit.objects.select_for_update().filter(key=pac.circuit_key).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return PacCircuit.objects.create(key=pac.circuit_key, provider=pac.name)
    except IntegrityError:  # another worker created it first
        return PacCircuit.objects.select_for_update().get(key=pac.circuit_key)
