"""A batch's life: received → processing → done | failed, under a lease, resumable, and resendable to finish it.

- Up to API_BATCH_SYNC_MAX tickets are processed inside the request; bigger batches keep their body in the
  row and a worker processes them (``batch_process``, enqueued after commit).
- A worker *claims* the batch (received → processing) and holds it under a lease it renews with every chunk
  it commits; ``run`` grows with every claim, and every write of the worker is guarded by it, so a worker
  that lost its lease stops at its next chunk instead of overwriting someone else's progress.
- An unexpected error ends the batch ``failed`` at once, with ``finished_at`` and a report of every ticket:
  the stored ones (created, duplicate, rejected) and the ones never reached (``not_processed``).
- A worker that dies (killed at Q_TIMEOUT, kill -9, a cluster restart that loses its task) leaves the lease
  to run out: ``batch_sweep`` queues the batch again, resuming after the last committed chunk, and fails it
  after API_BATCH_MAX_ATTEMPTS claims.
- PostgreSQL or the broker going away is not an error of the batch: a worker waits for the database and hands
  the batch back (``_hand_back``); a task the broker refused or lost is queued again when the bulk cluster sees
  the broker back (``batch_requeue_received``).
- Resending a batch_id: done → 422 as always (its report is at /batches/{id}); held by a live worker → 409;
  failed or abandoned → the new body is processed from the start: tickets already stored answer as
  ``duplicate`` with their ids (natural keys), the rest are stored.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.utils import timezone

from infra.errors import Conflict, DomainError, InvalidInput, Unprocessable
from infra.events import record_event, transition
from infra.jsontext import loads
from infra.outages import database_unavailable, hand_back_after_outage
from infra.queues import BULK, after_commit, enqueue_or_leave
from tickets.ingest import archive
from tickets.ingest.batch import CHUNK, Item, Outcome, context_for, ingest, not_processed
from tickets.models import Batch, Merchant, Ticket
from tickets.signals import batch_finished

log = logging.getLogger(__name__)

S = Batch.Status
LIVE = (S.RECEIVED, S.PROCESSING)
_BATCH_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
_COUNTS = ["status", "processed_count", "created_count", "duplicate_count", "rejected_count", "finished_at", "error",
           "run", "attempts", "lease_until"]
RESEND_HINT = "Reenvía el mismo batch_id para terminarlo: los tickets ya guardados se responden como duplicados."


def _lease(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) + dt.timedelta(seconds=settings.API_BATCH_LEASE_SECONDS)


def _check_batch_id(batch_id) -> str:
    if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
        raise InvalidInput(details={"batch_id": [
            "Obligatorio: hasta 100 caracteres entre letras, dígitos, «.», «_», «:» y «-»."]})
    return batch_id


# --- receiving ----------------------------------------------------------------------------------------------


@transaction.atomic
def batch_submit(*, merchant: Merchant, batch_id, tickets: list | None = None, zip_data: bytes | None = None,
                 actor: str = "", default_branch=None) -> Batch:
    """Receive a batch (JSON list or ZIP), or a resend of one that failed or was abandoned (see module doc).

    Small ones are processed now; large ones by the worker (after commit). ``default_branch`` (the API key's
    branch) is remembered on the batch for tickets that name none.
    """
    batch_id = _check_batch_id(batch_id)
    if zip_data is None:
        if not isinstance(tickets, list) or not tickets:
            raise InvalidInput(details={"tickets": ["Envía una lista con al menos un ticket."]})
        count, source = len(tickets), "json"
    else:
        count, source = archive.member_count(zip_data), "zip"
        if not count:
            raise InvalidInput("El ZIP no contiene archivos.", code="empty_zip")
    limit = settings.API_BATCH_MAX_TICKETS
    if count > limit:
        raise InvalidInput(f"Un lote admite a lo más {limit:,} tickets; este trae {count:,}.", code="batch_too_large",
                           details={"tickets": [f"Máximo {limit:,} tickets por lote."]})
    batch = _receive(merchant, batch_id, count=count, source=source, actor=actor)
    branch_id = getattr(default_branch, "pk", None)
    if batch.default_branch_id != branch_id:
        Batch.objects.filter(pk=batch.pk).update(default_branch_id=branch_id)
        batch.default_branch_id = branch_id
    if count <= settings.API_BATCH_SYNC_MAX:
        items = _items(tickets, zip_data)
        if _claim(batch, actor=actor):
            _run(batch, items, actor=actor, start=0, report=[])
    else:
        # ensure_ascii (the default) writes a lone surrogate as "\ud800": the stored body always encodes.
        body = json.dumps(tickets, default=str).encode() if tickets is not None else zip_data
        Batch.objects.filter(pk=batch.pk).update(payload=body)
        after_commit(enqueue_batch, batch.pk)
    batch.refresh_from_db(fields=_COUNTS)
    return batch


def _receive(merchant, batch_id: str, *, count: int, source: str, actor: str) -> Batch:
    """A new Batch row in ``received``, or the existing one reset for a resend (refused when it may not be)."""
    existing = Batch.objects.select_for_update().filter(merchant=merchant, batch_id=batch_id).first()
    if existing is None:
        try:
            with transaction.atomic():
                batch = Batch.objects.create(merchant=merchant, batch_id=batch_id, source=source, total_count=count,
                                             lease_until=_lease())
        except IntegrityError:  # a concurrent first submission won the batch_id
            existing = Batch.objects.select_for_update().filter(merchant=merchant, batch_id=batch_id).first()
            if existing is None:
                raise
        else:
            record_event(merchant_id=merchant.pk, entity="batch", object_id=batch.pk, from_status="",
                         to_status=batch.status, actor=actor, reason=f"lote recibido ({count} tickets, {source})")
            batch.merchant = merchant
            return batch
    existing.merchant = merchant
    now = timezone.now()
    _refuse_resend(existing, now)
    reset = transition(
        existing, entity="batch", to=S.RECEIVED, expected=[existing.status], actor=actor,
        reason=f"lote reenviado para terminarlo ({count} tickets, {source}); antes: {existing.created_count} "
               f"creados de {existing.total_count}",
        where=Q(run=existing.run), source=source, total_count=count, processed_count=0, created_count=0,
        duplicate_count=0, rejected_count=0, report=[], error="", finished_at=None, payload=None, attempts=0,
        lease_until=_lease(now),
    )
    if not reset:  # the row changed between the read and the update (the row lock should rule it out)
        raise Conflict(f"El lote «{batch_id}» cambió mientras se reenviaba; consulta /api/v1/batches/{batch_id}.",
                       code="batch_in_progress", details={"batch_id": [batch_id]})
    return existing


def _refuse_resend(batch: Batch, now: dt.datetime) -> None:
    batch_id = batch.batch_id
    if batch.status == S.DONE:
        when = batch.created_at.astimezone(batch.merchant.tzinfo).strftime("%Y-%m-%d %H:%M")
        raise Unprocessable(f"El lote «{batch_id}» ya se recibió el {when}; usa otro batch_id. Consulta su "
                            f"resultado en /api/v1/batches/{batch_id}.", code="batch_already_received",
                            details={"batch_id": [batch_id]})
    if batch.status in LIVE and batch.lease_until is not None and batch.lease_until >= now:
        wait = max(1, int((batch.lease_until - now).total_seconds()) + 1)
        raise Conflict(
            f"El lote «{batch_id}» todavía se está procesando ({batch.processed_count:,} de {batch.total_count:,} "
            f"tickets). Consulta su avance en /api/v1/batches/{batch_id}; reenvíalo solo si termina con error.",
            code="batch_in_progress", headers={"Retry-After": str(wait)},
            details={"batch_id": [batch_id], "status": batch.status, "processed_count": batch.processed_count,
                     "total_count": batch.total_count})


def enqueue_batch(batch_pk: int) -> None:
    """After the commit that stored the batch. A broker that is away must not turn the stored batch into a 500
    (the POS would resend it into a 409): the batch waits in ``received`` under its lease, and the bulk cluster
    queues it again when the broker is back (``batch_requeue_received``), the sweeper at the latest."""
    enqueue_or_leave("tickets.ingest.tasks.process_batch", batch_pk, queue=BULK, task_name=f"ticket-batch-{batch_pk}",
                     group="batch")


def _items(tickets: list | None, zip_data: bytes | None) -> list[Item]:
    if tickets is not None:
        return [Item({"index": i}, t) for i, t in enumerate(tickets)]
    return [Item({"index": i, "file": m.name}, m.payload, m.error)
            for i, m in enumerate(archive.read_members(zip_data))]


# --- processing -----------------------------------------------------------------------------------------------


def _claim(batch: Batch, *, actor: str) -> bool:
    """received → processing under a fresh lease and a new ``run``; False if someone else has it."""
    run = batch.run + 1
    return transition(batch, entity="batch", to=S.PROCESSING, expected=[S.RECEIVED], actor=actor,
                      reason=f"procesando (intento {batch.attempts + 1})", where=Q(run=batch.run),
                      run=run, attempts=batch.attempts + 1, lease_until=_lease())


def _mine(batch: Batch) -> Q:
    return Q(run=batch.run)


class _LeaseLost(Exception):
    pass


def _run(batch: Batch, items: list[Item], *, actor: str, start: int, report: list[dict]) -> str:
    """Ingest ``items[start:]`` chunk by chunk; each chunk, the progress and the renewed lease commit together.

    The report is kept in memory and written with each chunk (never read back: it can be megabytes).
    """
    merchant = batch.merchant
    source = Ticket.Source.ZIP if batch.source == "zip" else Ticket.Source.BATCH
    begin = start
    try:
        ctx = context_for(merchant, batch.default_branch_id)
        for begin in range(start, len(items), CHUNK):
            chunk = items[begin:begin + CHUNK]
            kept = len(report)
            try:
                with transaction.atomic():
                    outcome: Outcome = ingest(merchant=merchant, items=chunk, source=source, batch_pk=batch.pk,
                                              actor=actor, ctx=ctx)
                    report.extend(outcome.entries)
                    renewed = Batch.objects.filter(pk=batch.pk, status=S.PROCESSING, run=batch.run).update(
                        processed_count=begin + len(chunk),
                        created_count=F("created_count") + outcome.created,
                        duplicate_count=F("duplicate_count") + outcome.duplicate,
                        rejected_count=F("rejected_count") + outcome.rejected,
                        report=report, lease_until=_lease(),
                    )
                    if not renewed:
                        raise _LeaseLost
            except BaseException:
                del report[kept:]
                raise
    except _LeaseLost:
        log.warning("batch %s: lease lost (run %s); another worker or a resend has it", batch.pk, batch.run)
        return "lease lost"
    except Exception as exc:
        if database_unavailable(exc):
            # Not the batch's fault, and nothing can be written now: in a request the whole batch rolls back
            # (503, the POS resends it); a worker hands it back once the database is (batch_process).
            raise
        log.exception("batch %s: unexpected error processing tickets from index %s", batch.pk, begin)
        _fail(batch, report + not_processed(items[begin:], f"No se procesó: el lote se detuvo por un error "
                                                             f"interno. {RESEND_HINT}"),
              error=f"Error interno al procesar el lote a partir del ticket {begin}; quedó registrado. Se guardaron "
                    f"los tickets anteriores (ver report). {RESEND_HINT}", actor=actor)
        return "failed"
    batch.refresh_from_db(fields=_COUNTS)
    batch.report = report
    if transition(batch, entity="batch", to=S.DONE, expected=[S.PROCESSING], actor=actor, where=_mine(batch),
                  reason=f"{batch.created_count} creados, {batch.duplicate_count} duplicados, "
                         f"{batch.rejected_count} rechazados", finished_at=timezone.now(), payload=None,
                  lease_until=None):
        batch_finished.send(sender=Batch, batch=batch)
    return "done"


def _fail(batch: Batch, report: list[dict], *, error: str, actor: str) -> bool:
    """End a batch this worker holds as failed, with its whole report; False if it no longer holds it."""
    with transaction.atomic():
        if not transition(batch, entity="batch", to=S.FAILED, expected=[S.PROCESSING], actor=actor,
                          where=_mine(batch), reason=error[:500], error=error, report=report,
                          finished_at=timezone.now(), payload=None, lease_until=None):
            return False
        batch.refresh_from_db(fields=_COUNTS)
        batch.report = report
        batch_finished.send(sender=Batch, batch=batch)
    return True


def batch_process(*, batch_pk: int) -> str:
    """Worker side of a large batch: claim it, read its stored body, resume after the last committed chunk."""
    batch = Batch.objects.select_related("merchant").filter(pk=batch_pk, status=S.RECEIVED).first()
    if batch is None or not _claim(batch, actor="worker"):
        return "nothing to do"
    report = list(batch.report) if batch.processed_count else []
    try:
        data = bytes(batch.payload or b"")
        items = _items(None, data) if batch.source == "zip" else _items(loads(data), None)
    except (DomainError, ValueError) as exc:  # a ZIP or JSON body that cannot be read
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        _fail(batch, report, error=f"No se pudo leer el lote: {message}", actor="worker")
        return "failed"
    except Exception:
        log.exception("batch %s: its stored body could not be read", batch.pk)
        _fail(batch, report, error=f"Error interno al leer el lote; quedó registrado. {RESEND_HINT}", actor="worker")
        return "failed"
    try:
        return _run(batch, items, actor="worker", start=batch.processed_count, report=report)
    except Exception as exc:
        hand_back_after_outage(exc, lambda: _hand_back(batch), wait_seconds=settings.API_BATCH_LEASE_SECONDS,
                               what=f"batch {batch.pk}")
        raise


def _hand_back(batch: Batch) -> None:
    """processing → received for the run this worker holds, queued again after commit: it resumes after its last
    committed chunk (the sweeper would, once the lease ran out)."""
    with transaction.atomic():
        if transition(batch, entity="batch", to=S.RECEIVED, expected=[S.PROCESSING], actor="worker",
                      where=_mine(batch), lease_until=_lease(),
                      reason="reencolado: la base de datos dejó de responder mientras se procesaba"):
            after_commit(enqueue_batch, batch.pk)


def batch_requeue_received(*, limit: int = 1000) -> int:
    """A bulk cluster starts, or its broker or database is back after an outage: tasks of batches still waiting
    (``received``) may be gone with the broker. Queue them again now rather than when their lease runs out; a
    batch whose task did survive is claimed once, and its twin finds nothing to do. Returns how many."""
    pks = list(Batch.objects.filter(status=S.RECEIVED, payload__isnull=False).order_by("pk")
               .values_list("pk", flat=True)[:limit])
    for pk in pks:
        enqueue_batch(pk)
    return len(pks)


# --- repair -------------------------------------------------------------------------------------------------------


def batch_sweep(*, limit: int = 100) -> int:
    """Periodic: batches whose lease ran out (worker killed, task lost, cluster restarted) are queued again to
    resume after their last committed chunk; after API_BATCH_MAX_ATTEMPTS claims they are failed with their
    report instead (a batch that kills its worker every time must not loop forever). Returns how many."""
    now = timezone.now()
    stale = (Batch.objects.filter(status__in=LIVE)
             .filter(Q(lease_until__lt=now) | Q(lease_until__isnull=True))
             .annotate(has_payload=ExpressionWrapper(Q(payload__isnull=False), output_field=BooleanField()))
             .defer("payload", "report").select_related("merchant").order_by("pk")[:limit])
    handled = 0
    for batch in stale:
        guard = _mine(batch) & (Q(lease_until=batch.lease_until) if batch.lease_until else Q(lease_until__isnull=True))
        with transaction.atomic():
            if batch.attempts >= settings.API_BATCH_MAX_ATTEMPTS or not batch.has_payload:
                done = _abandon(batch, guard, now)
            else:
                done = transition(batch, entity="batch", to=S.RECEIVED, expected=[batch.status], actor="sweeper",
                                  where=guard, lease_until=_lease(now),
                                  reason=f"reencolado: el trabajador dejó de responder tras {batch.processed_count:,} "
                                         f"de {batch.total_count:,} tickets" if batch.status == S.PROCESSING else
                                         "reencolado: la tarea no arrancó a tiempo")
                if done:
                    after_commit(enqueue_batch, batch.pk)
        handled += bool(done)
    if handled:
        log.warning("batch sweeper handled %d abandoned batch(es)", handled)
    return handled


def _abandon(batch: Batch, guard: Q, now: dt.datetime) -> bool:
    report = list(Batch.objects.filter(pk=batch.pk).values_list("report", flat=True).first() or [])
    done = batch.processed_count
    message = f"No se procesó: el trabajador dejó de responder. {RESEND_HINT}"
    report += [{"index": i, "status": "not_processed", "code": "not_processed", "errors": {"ticket": [message]}}
               for i in range(done, batch.total_count)]
    error = (f"El lote se detuvo en el ticket {done:,} de {batch.total_count:,}: el trabajador dejó de responder "
             f"{batch.attempts} veces. {RESEND_HINT}")
    if not transition(batch, entity="batch", to=S.FAILED, expected=[batch.status], actor="sweeper", where=guard,
                      reason=error[:500], error=error, report=report, finished_at=now, payload=None, lease_until=None):
        return False
    batch.refresh_from_db(fields=_COUNTS)
    batch.report = report
    batch_finished.send(sender=Batch, batch=batch)
    return True
