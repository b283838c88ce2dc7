"""Late requests (RULES.md §2.1): a shopper asks for an invoice of tickets already in a factura global.

``late_request_issue`` is what the shopper portal calls when ``invoice_issue`` answered
``ticket_in_global_invoice``. It creates the shopper's nominative invoice at once (so the portal can follow
it) but holds it (status ``on_hold``: outside the stamping queue) until the global is corrected, according to ``merchant.late_request_policy``:

* ``credit_note``: per global, a CFDI de egreso for those tickets related with TipoRelacion 01, receptor
  público en general with UsoCFDI G02, ClaveProdServ 84111506 / ClaveUnidad ACT, ticket in NoIdentificacion
  (SAT route 1/3). When it is stamped, the nominative invoice is released.
* ``cancel_reissue``: per global, cancel it with motivo 04 ("Operación nominativa relacionada en una
  factura global", no FolioSustitucion — motivo 01 is the one that needs a replacement UUID, RULES.md §6),
  and, in the transaction that records the cancellation, re-issue it without the requested tickets, relating
  the cancelled UUID with TipoRelacion 04 (SAT route 2, "Escenario 4"). Then the nominative invoice is
  released. Past the global's cancellation deadline (31 March / 30 April of the next year, CFF 29-A) the
  request falls back to a credit note.
* ``refuse``: answered at once with a Spanish explanation.

``late_request_advance`` moves a request on. It is idempotent and re-reads everything from the database, so
the periodic task that calls it for every request in progress resumes the chain after any crash.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from infra.events import record_event, transition
from infra.queues import BULK, enqueue_on_commit
from invoicing.cfdi.inputs import NOMBRE_PUBLICO_GENERAL, RFC_PUBLICO_GENERAL
from invoicing.errors import InvoicingError
from invoicing.folios import folio_next
from invoicing.lifecycle import invoice_created, invoice_transition
from invoicing.models import Cancellation, Invoice, InvoiceRelation, InvoiceTicket, LateRequest
from invoicing.services.cancel import cancellation_advance, cancellation_request, deadline_passed
from invoicing.services.global_reissue import ACTOR
from invoicing.services.issue import (
    ReceptorData,
    idempotent_issue,
    invoice_concepts_check,
    live_invoice_id,
    receptor_normalized,
    receptor_postal_code,
)
from invoicing.services.receptor import receptor_check
from invoicing.stamp_queue import stamp_queue_wake_on_commit
from tickets import eligibility
from tickets.eligibility import ticket_eligibility
from tickets.models import Merchant, Ticket, TicketLine

log = logging.getLogger(__name__)

MAX_TICKETS = 50
CANCEL_MOTIVO = "04"

Policy = Merchant.LatePolicy

def _enqueue_advance(late_request_id: int) -> None:
    """With the broker away, ``advance_late_requests`` (every minute) moves it on instead."""
    enqueue_on_commit("invoicing.tasks_global.advance_late_request", late_request_id, queue=BULK,
                      task_name=f"late-request-{late_request_id}", group="late-request", repaired=True)


def late_request_issue(*, merchant: Merchant, ticket_ids: list[int], receptor: ReceptorData, actor: str = "",
                       enforce_deadline: bool = True, idempotency_key: str | None = None,
                       language: str = "") -> Invoice:
    """Accept a shopper's request for tickets already in a global; returns their (parked) nominative invoice.

    The portal shows "tu factura está lista" when this invoice is ``stamped``, like any other. A ticket is in
    at most one request at a time; ``idempotency_key`` works as for ``invoice_issue`` (a double click on the
    portal's confirmation answers with the one request's invoice).
    """
    receptor = receptor_normalized(receptor)

    def accept() -> Invoice:
        receptor_check(receptor)
        ids = sorted({int(i) for i in ticket_ids})
        if not ids:
            raise InvoicingError("no_tickets", "Indica al menos un ticket para facturar.", status=422)
        if len(ids) > MAX_TICKETS:
            raise InvoicingError("too_many_tickets", f"Una factura puede incluir hasta {MAX_TICKETS} tickets.",
                                 status=422)
        with transaction.atomic():
            return _accept(merchant=merchant, ids=ids, receptor=receptor, actor=actor or ACTOR,
                           enforce_deadline=enforce_deadline, idempotency_key=idempotency_key, language=language)

    return idempotent_issue(merchant=merchant, ticket_ids=ticket_ids, receptor=receptor,
                            idempotency_key=idempotency_key, issue=accept)


def _accept(*, merchant, ids, receptor, actor, enforce_deadline, idempotency_key, language="") -> Invoice:
    tickets = list(Ticket.objects.select_for_update().filter(merchant=merchant, pk__in=ids).order_by("pk"))
    if len(tickets) != len(ids):
        raise InvoicingError("ticket_not_found", "No encontramos uno de los tickets.", status=404)
    now = timezone.now()
    for t in tickets:
        verdict = ticket_eligibility(t, merchant=merchant, now=now, enforce_deadline=enforce_deadline)
        if not verdict.ok:
            details = {"ticket_id": t.pk, **verdict.details}
            if verdict.code == eligibility.INVOICED:
                details["invoice_id"] = live_invoice_id(t.pk)
            raise InvoicingError(verdict.error_code, verdict.message, details)
    # A globalized ticket stays globalized while its request waits: its parked invoice is what says it is
    # taken. Read under the tickets' locks, so a concurrent request for it waits and then sees it.
    for t in tickets:
        if t.status == Ticket.Status.GLOBALIZED and (invoice_id := live_invoice_id(t.pk)) is not None:
            raise InvoicingError("ticket_already_invoiced", f"El ticket {t.number} ya fue facturado.",
                                 {"ticket_id": t.pk, "invoice_id": invoice_id})
    currencies = sorted({t.currency for t in tickets})
    if len(currencies) > 1:
        raise InvoicingError(
            "mixed_currencies",
            f"Los tickets están en monedas distintas ({', '.join(currencies)}): un CFDI lleva una sola moneda y un "
            "solo tipo de cambio. Factúralos por separado, una factura por moneda.",
            {"currencies": currencies}, status=422)
    rates = {t.exchange_rate for t in tickets}
    if len(rates) > 1:
        raise InvoicingError(
            "mixed_exchange_rates",
            f"Los tickets en {currencies[0]} se vendieron con tipos de cambio distintos: un CFDI lleva un solo tipo "
            "de cambio. Factúralos por separado.", {"exchange_rates": sorted(str(r) for r in rates)}, status=422)
    invoice_concepts_check(TicketLine.objects.filter(ticket__in=tickets).count())
    main = max(tickets, key=lambda t: (t.total, -t.pk))
    branch = main.branch
    invoice = Invoice.objects.create(
        merchant=merchant, branch=branch, kind=Invoice.Kind.INGRESO, serie=branch.invoice_serie,
        folio=folio_next(merchant_id=merchant.pk, serie=branch.invoice_serie),
        receptor_rfc=receptor.rfc, receptor_name=receptor.name, receptor_tax_regime=receptor.tax_regime,
        receptor_postal_code=receptor_postal_code(receptor, branch.pk), receptor_cfdi_use=receptor.cfdi_use,
        receptor_emails=list(receptor.emails), receptor_country=receptor.foreign_country,
        receptor_tax_id=receptor.foreign_tax_id, language=language, currency=main.currency,
        exchange_rate=main.exchange_rate,
        payment_form=main.payment_form,
        payment_method="PUE", status=Invoice.Status.ON_HOLD, idempotency_key=idempotency_key,
        subtotal=sum(t.subtotal for t in tickets), discount=sum(t.discount for t in tickets),
        tax_total=sum(t.tax_total for t in tickets), withheld_total=sum(t.withheld_total for t in tickets),
        total=sum(t.total for t in tickets),
    )
    InvoiceTicket.objects.bulk_create(InvoiceTicket(invoice=invoice, ticket=t, amount=t.total) for t in tickets)
    # Open tickets (their global failed meanwhile) are reserved now; globalized ones when the global is fixed.
    for t in tickets:
        if t.status == Ticket.Status.OPEN:
            transition(t, entity="ticket", expected=Ticket.Status.OPEN, to=Ticket.Status.INVOICED, actor=actor,
                       reason=f"factura #{invoice.pk} (solicitud tardía)", updated_at=now)
    lr = LateRequest.objects.create(merchant=merchant, policy=merchant.late_request_policy, invoice=invoice)
    lr.tickets.set(tickets)
    invoice_created(invoice, actor=actor,
                    reason=f"solicitud tardía #{lr.pk} ({lr.get_policy_display()}): en espera de corregir la global")
    record_event(merchant_id=merchant.pk, entity="late_request", object_id=lr.pk, from_status="",
                 to_status=lr.status, actor=actor, data={"tickets": ids, "policy": lr.policy})
    _enqueue_advance(lr.pk)
    return invoice


# --- the chain --------------------------------------------------------------------------------------------


def holding_global(ticket: Ticket) -> Invoice | None:
    """The latest global that took this ticket and did not fail (it may be cancelled)."""
    return (Invoice.objects.filter(kind=Invoice.Kind.GLOBAL, ticket_links__ticket=ticket)
            .exclude(status=Invoice.Status.FAILED).order_by("-pk").first())


def late_request_advance(*, late_request_id: int) -> str:
    """Do the next due step of a late request; returns its status. Safe to call any time, any number of times."""
    lr = LateRequest.objects.select_related("merchant", "invoice").get(pk=late_request_id)
    if lr.status != LateRequest.Status.IN_PROGRESS:
        return lr.status
    by_global: dict[int, tuple[Invoice, list[Ticket]]] = {}
    for t in lr.tickets.order_by("pk"):
        if t.status != Ticket.Status.GLOBALIZED:
            continue
        g = holding_global(t)
        if g is None or g.status == Invoice.Status.CANCELLED:
            continue  # freed: no vigente global holds it any more
        by_global.setdefault(g.pk, (g, []))[1].append(t)
    pending = False
    for g, tickets in by_global.values():
        if g.status in (Invoice.Status.PENDING, Invoice.Status.SEALED):
            pending = True  # wait until the global is stamped (or fails and frees the tickets)
            continue
        policy = lr.policy
        if (policy == Policy.CANCEL_REISSUE and g.status == Invoice.Status.STAMPED
                and not g.cancellations.filter(extra_stamp__isnull=True).exists() and deadline_passed(g)):
            policy = Policy.CREDIT_NOTE
            LateRequest.objects.filter(pk=lr.pk).update(policy=policy)
            record_event(merchant_id=lr.merchant_id, entity="late_request", object_id=lr.pk,
                         from_status=lr.status, to_status=lr.status, actor=ACTOR,
                         reason="la global ya no se puede cancelar (plazo del CFF 29-A): se emite nota de crédito")
        step = _credit_note_step if policy == Policy.CREDIT_NOTE else _cancel_step
        outcome = step(lr, g, tickets)
        if outcome is not True:
            if isinstance(outcome, str):
                return _fail(lr, outcome)
            pending = True
    if pending:
        return lr.status
    return _release(lr)


def _credit_note_step(lr: LateRequest, g: Invoice, tickets: list[Ticket]) -> bool | str:
    """True when this global's tickets are credited by a stamped egreso; a str is a permanent failure."""
    notes = lr.documents.filter(kind=Invoice.Kind.EGRESO, relations__related_invoice=g)
    failed = notes.filter(status=Invoice.Status.FAILED).first()
    if failed is not None:
        return f"La nota de crédito a la factura global no se pudo timbrar: {failed.last_error_message}"
    note = notes.first()
    if note is None:
        _issue_credit_note(lr, g, tickets)
        return False
    return note.status == Invoice.Status.STAMPED


@transaction.atomic
def _issue_credit_note(lr: LateRequest, g: Invoice, tickets: list[Ticket]) -> Invoice | None:
    LateRequest.objects.select_for_update().get(pk=lr.pk)  # one egreso per global even with two workers
    if lr.documents.filter(kind=Invoice.Kind.EGRESO, relations__related_invoice=g).exists():
        return None
    branch = g.branch
    note = Invoice.objects.create(
        merchant_id=lr.merchant_id, branch=branch, kind=Invoice.Kind.EGRESO, serie=branch.credit_note_serie,
        folio=folio_next(merchant_id=lr.merchant_id, serie=branch.credit_note_serie),
        receptor_rfc=RFC_PUBLICO_GENERAL, receptor_name=NOMBRE_PUBLICO_GENERAL, receptor_tax_regime="616",
        receptor_postal_code=branch.postal_code, receptor_cfdi_use="G02", currency=g.currency,
        exchange_rate=g.exchange_rate, payment_form=g.payment_form, payment_method="PUE",
        subtotal=sum(t.subtotal for t in tickets), discount=sum(t.discount for t in tickets),
        tax_total=sum(t.tax_total for t in tickets), total=sum(t.total for t in tickets),
    )
    InvoiceTicket.objects.bulk_create(InvoiceTicket(invoice=note, ticket=t, amount=t.total) for t in tickets)
    InvoiceRelation.objects.create(invoice=note, relation_type="01", related_uuid=g.uuid, related_invoice=g)
    lr.documents.add(note)
    invoice_created(note, actor=ACTOR,
                    reason=f"nota de crédito a la global #{g.pk} por {len(tickets)} ticket(s), solicitud tardía #{lr.pk}")
    stamp_queue_wake_on_commit()
    return note


def _cancel_step(lr: LateRequest, g: Invoice, tickets: list[Ticket]) -> bool | str:
    """Cancel the global with motivo 04 through the cancellation service (invoicing/services/cancel.py), which
    re-issues it without the requested tickets in the transaction that records the cancellation
    (``global_reissue.global_cancelled``). True once it is cancelled; a str is a permanent failure."""
    if g.status == Invoice.Status.CANCELLED:
        return True
    active = g.cancellations.filter(status__in=Cancellation.ACTIVE, extra_stamp__isnull=True).first()
    if active is None and g.status == Invoice.Status.STAMPED:
        tried = (g.cancellations.filter(motive=CANCEL_MOTIVO, created_at__gte=lr.created_at, extra_stamp__isnull=True)
                 .exclude(status__in=Cancellation.ACTIVE).order_by("-pk").first())
        if tried is not None and tried.status != Cancellation.Status.CANCELLED:
            return f"No se pudo cancelar la factura global: {tried.last_message or tried.get_status_display()}"
        try:
            active = cancellation_request(merchant=g.merchant, invoice_id=g.pk, motive=CANCEL_MOTIVO, actor=ACTOR,
                                          source=Cancellation.Source.LATE_REQUEST, internal=True)
        except InvoicingError as exc:
            if exc.code == "cancellation_in_progress":
                return False
            return f"No se pudo cancelar la factura global: {exc.message}"
    if active is not None:
        # Now rather than at the next follow-up: a global needs no acceptance, SAT answers at once.
        cancellation_advance(cancellation_id=active.pk)
        g.refresh_from_db()
    if g.status == Invoice.Status.CANCELLED:
        return True
    if g.status == Invoice.Status.STAMPED and active is not None:
        active.refresh_from_db()
        if active.status != Cancellation.Status.CANCELLED:
            return f"El SAT no canceló la factura global: {active.last_message or active.get_status_display()}"
    return False


@transaction.atomic
def _release(lr: LateRequest) -> str:
    """Everything is in place: the tickets become ``invoiced`` and the nominative invoice goes to stamping."""
    lr = LateRequest.objects.select_for_update().select_related("invoice").get(pk=lr.pk)
    if lr.status != LateRequest.Status.IN_PROGRESS:
        return lr.status
    now = timezone.now()
    for t in Ticket.objects.select_for_update().filter(late_requests=lr).order_by("pk"):
        if t.status in (Ticket.Status.GLOBALIZED, Ticket.Status.OPEN):
            transition(t, entity="ticket", expected=t.status, to=Ticket.Status.INVOICED, actor=ACTOR,
                       reason=f"factura #{lr.invoice_id} (solicitud tardía #{lr.pk})", updated_at=now)
    invoice_transition(lr.invoice, expected=Invoice.Status.ON_HOLD, to=Invoice.Status.PENDING, actor=ACTOR,
                       reason=f"solicitud tardía #{lr.pk}: global corregida", updated_at=now)
    transition(lr, entity="late_request", expected=LateRequest.Status.IN_PROGRESS, to=LateRequest.Status.RELEASED,
               actor=ACTOR, reason="global corregida; factura nominativa en timbrado", updated_at=now)
    stamp_queue_wake_on_commit()
    return lr.status


@transaction.atomic
def _fail(lr: LateRequest, message: str) -> str:
    lr = LateRequest.objects.select_for_update().select_related("invoice").get(pk=lr.pk)
    if not transition(lr, entity="late_request", expected=LateRequest.Status.IN_PROGRESS,
                      to=LateRequest.Status.FAILED, actor=ACTOR, reason=message[:500], last_error=message,
                      updated_at=timezone.now()):
        return lr.status
    invoice_transition(lr.invoice, expected=Invoice.Status.ON_HOLD, to=Invoice.Status.FAILED, actor=ACTOR,
                       reason=message[:500], last_error_code="late_request_failed", last_error_message=message,
               last_error_permanent=True, next_attempt_at=None, updated_at=timezone.now())
    # Tickets reserved from ``open`` go back; globalized ones stay in their (still vigente) global.
    for t in Ticket.objects.select_for_update().filter(late_requests=lr, status=Ticket.Status.INVOICED):
        if not Invoice.objects.filter(ticket_links__ticket=t, kind=Invoice.Kind.INGRESO).exclude(
                pk=lr.invoice_id).exclude(status=Invoice.Status.FAILED).exists():
            transition(t, entity="ticket", expected=Ticket.Status.INVOICED, to=Ticket.Status.OPEN, actor=ACTOR,
                       reason=f"solicitud tardía #{lr.pk} fallida", updated_at=timezone.now())
    return LateRequest.Status.FAILED


def late_request_ids_in_progress() -> list[int]:
    return list(LateRequest.objects.filter(status=LateRequest.Status.IN_PROGRESS).order_by("pk")
                .values_list("pk", flat=True)[:1000])
