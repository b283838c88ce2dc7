"""Cancel a stamped CFDI with SAT's motives and follow the request until SAT's answer is final.

``cancellation_plan`` says what a cancellation would do, before anything is sent: whether the receptor must
accept and why, until when the CFDI can be cancelled at all, what happens to its tickets; or why it is refused.
The admin's confirmation page shows it, the API answers with it.

``cancellation_request`` records the request (one active per invoice: the invoice row is locked and a partial
unique index backs it) and moves the invoice ``stamped → cancelling``; a task sends it after commit.
``cancellation_advance`` moves a request on, and the periodic follow-up calls it for every active request whose
check is due, with backoff: send it to the PAC (SAT down: retried later), ask SAT's status while the receptor
has not answered, and record the final answer:

- cancelled: the invoice ``→ cancelled``; its tickets follow the motive (docs/cancellation.md): 01 they are on
  the replacement already, 02/03 released or voided as the merchant chose, 04 the late request re-issues the
  global without the requested tickets, in the same transaction.
- rejected by the receptor, or refused by SAT or the PAC: the invoice is ``stamped`` again and nothing else
  changes; the merchant is emailed.

Every step writes its event rows and sends the ``invoice.cancellation_updated`` webhook. A reissue
(services/reissue.py) creates its request ``waiting``: it is sent once the replacement is stamped.

A request for an extra stamp (``extra_stamp_cancellation``, services/duplicates.py) cancels that second UUID,
motivo 02, at the PAC that stamped it, through the same steps; the invoice, its status and its tickets never
move for it, and its webhook is ``invoice.duplicate_stamp``.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from infra.events import record_event, transition
from infra.queues import BULK, enqueue_on_commit
from invoicing import pac as pacs
from invoicing.cfdi import cancellation as rules
from invoicing.cfdi.csd import CsdError
from invoicing.engine_inputs import engine_csd
from invoicing.errors import InvoicingError
from invoicing.lifecycle import CANCELLATION, LIVE, invoice_transition
from invoicing.models import Cancellation, Invoice
from invoicing.pac import PacError
from invoicing.pac.base import CANCELLED, IN_PROCESS
from invoicing.services import cancel_notify as notify
from invoicing.services import global_reissue
from invoicing.services.cancel_plan import (  # noqa: F401 - callers import the plan from here too
    CancellationPlan,
    _refuse,
    cancellation_plan,
    deadline_passed,
    invoice_deadline,
    invoice_facts,
    related_blockers,
)
from invoicing.services.duplicates_notify import duplicate_stamp_updated, merchant_email_on_commit
from tickets.models import Ticket

log = logging.getLogger(__name__)

S = Invoice.Status
C = Cancellation.Status
T = Cancellation.Tickets
ENTITY = "cancellation"
CLAIM_SECONDS = 120  # a worker holding a request this long without finishing has died: another takes it


def get_pac(merchant, name: str = ""):  # through the module, so that a test pointing invoicing.pac.get_pac at a fake is heard
    """The merchant's PAC called ``name``: a CFDI is cancelled and followed at the PAC that stamped it (the
    secondary, after a failover)."""
    return pacs.pac_named(merchant, name)


def _target(cancellation: Cancellation) -> tuple[str, object]:
    """The UUID this request cancels and the PAC it goes to: the invoice's, or the extra stamp's."""
    invoice = cancellation.invoice
    extra = cancellation.extra_stamp
    if extra is not None:
        return str(extra.uuid).upper(), get_pac(invoice.merchant, extra.pac)
    return str(invoice.uuid).upper(), get_pac(invoice.merchant, invoice.pac)


def _updated(cancellation: Cancellation, invoice: Invoice) -> None:
    """The webhook of a step: the invoice's cancellation, or the extra stamp's."""
    if cancellation.extra_stamp_id:
        cancellation.refresh_from_db()
        duplicate_stamp_updated(cancellation.extra_stamp, cancellation)
    else:
        notify.cancellation_updated(cancellation, invoice)


# --- the request ---------------------------------------------------------------------------------------


def cancellation_request(*, merchant, invoice_id: int, motive: str, replacement_id: int | None = None,
                         tickets: str | None = None, actor: str = "", source: str = Cancellation.Source.API,
                         internal: bool = False) -> Cancellation:
    """Record the request and move the invoice to ``cancelling``; the send happens after commit (a task).

    Scoped to ``merchant``: another merchant's invoice (or replacement) is not found. Two requests for one
    invoice at once make one cancellation: the second is ``cancellation_in_progress`` (409).
    """
    try:
        with transaction.atomic():
            cancellation = _request(merchant=merchant, invoice_id=invoice_id, motive=motive,
                                    replacement_id=replacement_id, tickets=tickets, actor=actor, source=source,
                                    internal=internal)
    except IntegrityError as exc:  # the partial unique index: a concurrent request won
        raise _refuse("cancellation_in_progress", "Esta factura ya tiene una cancelación en proceso; espera la "
                      "respuesta del SAT.", status=409) from exc
    _advance_on_commit(cancellation.pk)
    return cancellation


def _request(*, merchant, invoice_id, motive, replacement_id, tickets, actor, source, internal) -> Cancellation:
    invoice = (Invoice.objects.select_for_update(of=("self",)).select_related("merchant")
               .filter(merchant=merchant, pk=invoice_id).first())
    if invoice is None:
        raise _refuse("not_found", "No existe esa factura.", status=404)
    replacement = None
    if replacement_id is not None:
        replacement = Invoice.objects.filter(merchant=merchant, pk=replacement_id).first()
        if replacement is None:
            raise _refuse("replacement_not_found", "No existe ese CFDI sustituto.",
                          {"replacement_id": [replacement_id]}, status=404)
    plan = cancellation_plan(invoice=invoice, motive=motive, replacement=replacement, tickets=tickets,
                             internal=internal)
    if plan.refusal is not None:
        raise plan.refusal
    now = timezone.now()
    cancellation = Cancellation.objects.create(
        merchant=merchant, invoice=invoice, motive=plan.motive, replacement=replacement,
        tickets_action=plan.tickets_action, status=C.REQUESTED, source=source, actor=actor[:150],
        requires_acceptance=plan.acceptance.required, acceptance_reason=plan.acceptance.reason,
        deadline=plan.deadline.last_day, next_check_at=now,
    )
    record_event(merchant_id=merchant.pk, entity=ENTITY, object_id=cancellation.pk, from_status="",
                 to_status=C.REQUESTED, actor=actor, reason=f"motivo {plan.motive}: {plan.acceptance.message}",
                 data=plan.as_dict())
    if not invoice_transition(invoice, to=S.CANCELLING, expected=S.STAMPED, actor=actor,
                              reason=f"cancelación #{cancellation.pk} solicitada (motivo {plan.motive})",
                              data={"cancellation_id": cancellation.pk}, updated_at=now):
        raise _refuse("cancellation_in_progress", "Esta factura ya tiene una cancelación en proceso.", status=409)
    notify.cancellation_updated(cancellation, invoice)
    if plan.near_deadline:
        notify.near_deadline_on_commit(cancellation.pk)
    return cancellation


def extra_stamp_cancellation(extra, *, actor: str = "timbrado") -> Cancellation:
    """Request the cancellation of an extra stamp (motivo 02), sent after commit. The invoice does not move."""
    invoice = extra.invoice
    now = timezone.now()
    acceptance = rules.acceptance(invoice_facts(invoice), at=now)  # the same document: the same facts
    cancellation = Cancellation.objects.create(
        merchant_id=invoice.merchant_id, invoice=invoice, extra_stamp=extra, motive="02", tickets_action=T.NONE,
        status=C.REQUESTED, source=Cancellation.Source.DUPLICATE, actor=actor,
        requires_acceptance=acceptance.required, acceptance_reason=acceptance.reason,
        deadline=invoice_deadline(invoice).last_day, next_check_at=now,
    )
    record_event(merchant_id=invoice.merchant_id, entity=ENTITY, object_id=cancellation.pk, from_status="",
                 to_status=C.REQUESTED, actor=actor,
                 reason=f"timbre sobrante {str(extra.uuid).upper()} de la factura #{invoice.pk}: motivo 02. "
                        f"{acceptance.message}", data={"extra_stamp": str(extra.uuid).upper()})
    _advance_on_commit(cancellation.pk)
    return cancellation


def _advance_on_commit(cancellation_id: int) -> None:
    enqueue_on_commit("invoicing.tasks_cancel.advance_cancellation", cancellation_id, queue=BULK, group="cancel")


# --- the follow-up -------------------------------------------------------------------------------------


def backoff_seconds(attempts: int) -> int:
    base = settings.CANCELLATION_POLL_BASE_SECONDS
    return min(base * 2 ** max(attempts - 1, 0), settings.CANCELLATION_POLL_MAX_SECONDS)


def _claim(cancellation_id: int) -> Cancellation | None:
    """Take the request for this worker (pushes its next check a lease ahead), if it is active and due."""
    now = timezone.now()
    due = Q(next_check_at__isnull=True) | Q(next_check_at__lte=now)
    claimed = Cancellation.objects.filter(due, pk=cancellation_id, status__in=Cancellation.ACTIVE).update(
        next_check_at=now + dt.timedelta(seconds=CLAIM_SECONDS))
    if not claimed:
        return None
    return Cancellation.objects.select_related("invoice__merchant", "replacement", "extra_stamp").get(pk=cancellation_id)


def cancellation_advance(*, cancellation_id: int) -> str:
    """Do the next due step of a request; returns its status. Safe to call any time, from any worker."""
    cancellation = _claim(cancellation_id)
    if cancellation is None:
        return Cancellation.objects.values_list("status", flat=True).get(pk=cancellation_id)
    try:
        if cancellation.status == C.WAITING:
            _advance_waiting(cancellation)
        elif cancellation.status == C.REQUESTED:
            _send(cancellation)
        else:
            _poll(cancellation)
    except Exception:
        # Unexpected (a bug, the database): looked at again after a pause, never left claimed for good.
        log.exception("cancellation %s could not advance", cancellation_id)
        _later(cancellation, "internal", "Error interno al dar seguimiento; se reintentará.")
    return Cancellation.objects.values_list("status", flat=True).get(pk=cancellation_id)


def cancellation_ids_due(limit: int = 500) -> list[int]:
    now = timezone.now()
    return list(Cancellation.objects.filter(status__in=Cancellation.ACTIVE)
                .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
                .order_by("next_check_at", "pk").values_list("pk", flat=True)[:limit])


def _later(cancellation: Cancellation, code: str, message: str, *, status_text: str | None = None) -> None:
    """Not final yet: look again after the backoff (SAT down, the receptor has not answered)."""
    attempts = cancellation.attempts + 1
    fields = {"attempts": attempts, "next_check_at": timezone.now() + dt.timedelta(seconds=backoff_seconds(attempts)),
              "last_code": str(code)[:40], "last_message": message, "updated_at": timezone.now()}
    if status_text is not None:
        fields["sat_status"] = status_text[:60]
    Cancellation.objects.filter(pk=cancellation.pk, status=cancellation.status).update(**fields)


def _advance_waiting(cancellation: Cancellation) -> None:
    """A reissue's request: sent once the replacement is stamped; dropped if the replacement failed."""
    replacement = cancellation.replacement
    replacement.refresh_from_db(fields=["status", "uuid", "last_error_message"])
    if replacement.status == S.STAMPED:
        if _send_after_replacement(cancellation):
            cancellation.refresh_from_db()
            _send(cancellation)
        return
    if replacement.status in (S.FAILED, S.CANCELLED):
        _abandon(cancellation, replacement)
        return
    _later(cancellation, "waiting", "Esperando a que se timbre el CFDI sustituto.")


@transaction.atomic
def _send_after_replacement(cancellation: Cancellation) -> bool:
    invoice = Invoice.objects.select_for_update().select_related("merchant").get(pk=cancellation.invoice_id)
    acceptance = rules.acceptance(invoice_facts(invoice), at=timezone.now())  # as of now, when it is sent
    if not transition(cancellation, entity=ENTITY, to=C.REQUESTED, expected=C.WAITING, actor=cancellation.actor,
                      reason=f"CFDI sustituto timbrado ({str(cancellation.replacement.uuid).upper()}): se solicita "
                             f"la cancelación con motivo 01. {acceptance.message}", next_check_at=timezone.now(),
                      requires_acceptance=acceptance.required, acceptance_reason=acceptance.reason):
        return False
    if not invoice_transition(invoice, to=S.CANCELLING, expected=S.STAMPED, actor=cancellation.actor,
                              reason=f"cancelación #{cancellation.pk} solicitada (motivo 01, sustituida por "
                                     f"#{cancellation.replacement_id})", data={"cancellation_id": cancellation.pk},
                              updated_at=timezone.now()):
        transaction.set_rollback(True)
        return False
    notify.cancellation_updated(cancellation, invoice)
    return True


@transaction.atomic
def _abandon(cancellation: Cancellation, replacement: Invoice) -> None:
    why = (f"El CFDI sustituto #{replacement.pk} no se pudo timbrar ({replacement.last_error_message or 'sin detalle'})"
           ": la factura original sigue vigente y no se envió la cancelación.")
    if transition(cancellation, entity=ENTITY, to=C.ABANDONED, expected=C.WAITING, actor="seguimiento",
                  reason=why[:500], last_message=why, finished_at=timezone.now(), next_check_at=None):
        notify.cancellation_updated(cancellation, cancellation.invoice)
        notify.merchant_on_commit(cancellation.pk, "abandoned")


def _certificate(invoice: Invoice):
    certificate = invoice.certificate or invoice.merchant.certificates.filter(is_active=True).first()
    if certificate is None:
        raise _refuse("sin_csd", "El comercio no tiene un certificado de sello digital (CSD) activo.")
    return engine_csd(certificate, expected_rfc=invoice.merchant.rfc)


def _send(cancellation: Cancellation) -> None:
    invoice = cancellation.invoice
    try:
        csd = _certificate(invoice)
        replacement_uuid = str(cancellation.replacement.uuid).upper() if cancellation.replacement_id else None
        uuid, pac = _target(cancellation)
        result = pac.cancel(uuid=uuid, motivo=cancellation.motive, replacement_uuid=replacement_uuid, certificate=csd)
    except PacError as exc:
        if exc.permanent:
            _finish(cancellation, C.REFUSED, code=exc.code, message=exc.message)
        else:
            _later(cancellation, exc.code, exc.message)
        return
    except InvoicingError as exc:  # no active CSD: nothing reached the PAC
        _finish(cancellation, C.REFUSED, code=exc.code, message=exc.message)
        return
    except CsdError as exc:  # the CSD cannot be loaded: nothing reached the PAC
        _finish(cancellation, C.REFUSED, code="csd", message=str(exc))
        return
    Cancellation.objects.filter(pk=cancellation.pk, requested_at__isnull=True).update(requested_at=timezone.now())
    if result.status == CANCELLED:
        _finish(cancellation, C.CANCELLED, code=result.code, message=result.message, acuse=result.acuse,
                sat_status="Cancelado sin aceptación" if not cancellation.requires_acceptance else "Cancelado")
    elif result.status == IN_PROCESS:
        # SAT took the request (201/202), which is not yet a cancellation: its status service says what it is.
        _to_pending(cancellation, result)
        _poll(Cancellation.objects.select_related("invoice__merchant", "replacement", "extra_stamp")
              .get(pk=cancellation.pk))
    else:
        _finish(cancellation, C.REFUSED, code=result.code, message=result.message, acuse=result.acuse)


@transaction.atomic
def _to_pending(cancellation: Cancellation, result) -> None:
    invoice = Invoice.objects.select_for_update().get(pk=cancellation.invoice_id)
    if transition(cancellation, entity=ENTITY, to=C.PENDING, expected=C.REQUESTED, actor="PAC",
                  reason=f"{result.code}: {result.message}"[:500], last_code=str(result.code)[:40],
                  last_message=result.message, acuse=result.acuse, updated_at=timezone.now()):
        if cancellation.extra_stamp_id:  # the invoice is not what is being cancelled
            _updated(cancellation, invoice)
            cancellation.status = C.PENDING
            return
        invoice_transition(invoice, to=S.CANCEL_PENDING, expected=S.CANCELLING, actor="PAC",
                           reason=f"el SAT recibió la solicitud ({result.code}); "
                                  + ("en espera de la respuesta del receptor" if cancellation.requires_acceptance
                                     else "en espera de la confirmación del SAT"),
                           data={"cancellation_id": cancellation.pk}, updated_at=timezone.now())
        notify.cancellation_updated(cancellation, invoice)
    cancellation.status = C.PENDING


def _poll(cancellation: Cancellation) -> None:
    """Ask SAT (through the PAC) where the request stands."""
    invoice = cancellation.invoice
    try:
        uuid, pac = _target(cancellation)
        status = pac.status(uuid=uuid, emisor_rfc=invoice.merchant.rfc, receptor_rfc=invoice.receptor_rfc,
                            total=invoice.total)
    except PacError as exc:
        _later(cancellation, exc.code, exc.message)
        return
    estatus = status.estatus_cancelacion or ""
    if status.estado == "Cancelado" or estatus in ("Cancelado sin aceptación", "Cancelado con aceptación",
                                                   "Plazo vencido"):
        _finish(cancellation, C.CANCELLED, code="sat", message=f"{status.estado} ({estatus or 'sin detalle'})",
                sat_status=estatus or status.estado)
    elif estatus == "Solicitud rechazada":
        _finish(cancellation, C.REJECTED, code="sat", message="El receptor rechazó la cancelación.",
                sat_status=estatus)
    else:
        _later(cancellation, "sat", f"{status.estado or 'Sin respuesta'}: {estatus or 'solicitud aún sin registrar'}",
               status_text=estatus or status.estado)


# --- final answers -------------------------------------------------------------------------------------


def _finish(cancellation: Cancellation, outcome: str, *, code: str, message: str, acuse: bytes | None = None,
            sat_status: str = "") -> None:
    with transaction.atomic():
        current = Cancellation.objects.select_for_update().get(pk=cancellation.pk)
        if current.status not in (C.REQUESTED, C.PENDING):
            return  # another worker recorded the answer first
        invoice = Invoice.objects.select_for_update().select_related("merchant").get(pk=current.invoice_id)
        now = timezone.now()
        fields = {"last_code": str(code)[:40], "last_message": message, "finished_at": now, "next_check_at": None,
                  "sat_status": sat_status[:60] or current.sat_status, "updated_at": now}
        if acuse:
            fields["acuse"] = acuse
        transition(current, entity=ENTITY, to=outcome, expected=current.status, actor="SAT",
                   reason=f"{code}: {message}"[:500], **fields)
        if current.extra_stamp_id:
            _extra_finished(current, invoice, outcome, code=code, message=message)
            return
        if outcome == C.CANCELLED:
            invoice_transition(invoice, to=S.CANCELLED, expected=CANCELLATION, actor="SAT",
                               reason=f"cancelada (motivo {current.motive}): {message}"[:500],
                               data={"cancellation_id": current.pk, "code": str(code)}, updated_at=now)
            if current.tickets_action == T.GLOBAL_REISSUE:
                global_reissue.global_cancelled(invoice)
            else:
                _tickets_follow(current, invoice)
            notify.invoice_cancelled(invoice)
        else:
            invoice_transition(invoice, to=S.STAMPED, expected=CANCELLATION, actor="SAT",
                               reason=f"cancelación #{current.pk} {current.get_status_display().lower()}: "
                                      f"{message}"[:500], data={"cancellation_id": current.pk, "code": str(code)},
                               updated_at=now)
            if current.source != Cancellation.Source.LATE_REQUEST:
                notify.merchant_on_commit(current.pk, outcome)
        notify.cancellation_updated(current, invoice)
        notify.documents_on_commit(current.pk, outcome)


def _extra_finished(cancellation: Cancellation, invoice: Invoice, outcome: str, *, code: str, message: str) -> None:
    """SAT's final answer on an extra stamp: the invoice keeps its status; the merchant hears either way, and a
    stamp that stays vigente needs a person."""
    extra = cancellation.extra_stamp
    cancelled = outcome == C.CANCELLED
    record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk, from_status=invoice.status,
                 to_status=invoice.status, actor="SAT",
                 reason=(f"Timbre sobrante {str(extra.uuid).upper()} cancelado (motivo 02)." if cancelled else
                         f"El timbre sobrante {str(extra.uuid).upper()} no se pudo cancelar ({code}: {message})."
                         )[:500],
                 data={"kind": "extra_stamp", "extra_stamp": str(extra.uuid).upper(), "cancellation_id": cancellation.pk,
                       "outcome": outcome})
    _updated(cancellation, invoice)
    merchant_email_on_commit(extra.pk, "cancelled" if cancelled else "not_cancelled")


def _tickets_follow(cancellation: Cancellation, invoice: Invoice) -> None:
    """Release or void the tickets the cancelled invoice held (02/03); 01 leaves them on the replacement."""
    held = {Invoice.Kind.INGRESO: Ticket.Status.INVOICED, Invoice.Kind.GLOBAL: Ticket.Status.GLOBALIZED}.get(invoice.kind)
    action = cancellation.tickets_action
    if held is None or action not in (T.RELEASE, T.VOID):
        return
    # A ticket another live document of the same kind holds (a replacement, a re-issued global) stays there.
    others = Invoice.objects.filter(kind=invoice.kind, status__in=LIVE).exclude(pk=invoice.pk)
    tickets = (Ticket.objects.select_for_update().filter(invoice_links__invoice=invoice, status=held)
               .exclude(invoice_links__invoice__in=others).order_by("pk"))
    to = Ticket.Status.OPEN if action == T.RELEASE else Ticket.Status.VOID
    why = (f"factura #{invoice.pk} cancelada (motivo {cancellation.motive}): "
           + ("ticket liberado" if action == T.RELEASE else "la venta no se realizó"))
    for ticket in tickets:
        transition(ticket, entity="ticket", to=to, expected=held, actor=cancellation.actor or "cancelación",
                   reason=why, updated_at=timezone.now())


# --- read side -----------------------------------------------------------------------------------------


def latest_cancellation(invoice: Invoice) -> Cancellation | None:
    return invoice.cancellations.filter(extra_stamp__isnull=True).order_by("-pk").first()
