"""What a cancellation would do, before anything is sent (services/cancel.py sends it).

``cancellation_plan`` answers with the receptor's acceptance and why, the legal deadline, what happens to the
tickets, or the refusal (a Spanish ``InvoicingError``). The admin's confirmation pages show it, the API answers
with it, the request and the reissue refuse with it. The rules themselves are SAT's, in
invoicing/cfdi/cancellation.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from invoicing.cfdi import cancellation as rules
from invoicing.errors import InvoicingError
from invoicing.lifecycle import CANCELLATION
from invoicing.models import Cancellation, Invoice

S = Invoice.Status
T = Cancellation.Tickets


def invoice_facts(invoice: Invoice) -> rules.CfdiFacts:
    kind = {Invoice.Kind.EGRESO: rules.EGRESO}.get(invoice.kind, rules.INGRESO)
    return rules.CfdiFacts(tipo=kind, total=invoice.total, receptor_rfc=invoice.receptor_rfc,
                           issued_at=invoice.issued_at or invoice.stamped_at or invoice.created_at,
                           emisor_rfc=invoice.merchant.rfc, currency=invoice.currency,
                           is_global=invoice.kind == Invoice.Kind.GLOBAL)


def invoice_deadline(invoice: Invoice) -> rules.Deadline:
    return rules.cancellation_deadline(issued_at=invoice.issued_at or invoice.stamped_at or invoice.created_at,
                                       emisor_rfc=invoice.merchant.rfc, tz=invoice.merchant.time_zone)


def deadline_passed(invoice: Invoice, at: dt.datetime | None = None) -> bool:
    return invoice_deadline(invoice).passed(at or timezone.now())


@dataclass
class CancellationPlan:
    invoice: Invoice
    motive: str
    acceptance: rules.Acceptance
    deadline: rules.Deadline
    tickets_action: str
    ticket_count: int
    near_deadline: bool
    replacement: Invoice | None = None
    refusal: InvoicingError | None = None

    @property
    def tickets_text(self) -> str:
        one = self.ticket_count == 1
        which = "El ticket de la factura" if one else f"Los {self.ticket_count} tickets de la factura"
        stays, frees, voids = ("queda", "queda libre", "se cancela") if one else ("quedan", "quedan libres",
                                                                                 "se cancelan")
        when = "cuando el SAT confirme la cancelación; si se rechaza, no cambia" + ("" if one else "n")
        folio = f" {self.replacement.serie}-{self.replacement.folio}" if self.replacement else ""
        return {
            T.REPLACEMENT: f"{which} {stays} en el CFDI sustituto{folio}; ningún ticket cambia.",
            T.RELEASE: f"{which} {frees} {when}: el cliente puede volver a facturar"
                       + ("lo" if one else "los") + " dentro del plazo, o entra" + ("" if one else "n")
                       + " en la siguiente factura global.",
            T.VOID: f"{which} {voids} {when}: la venta no se realizó y no entrará" + ("" if one else "n")
                    + " en ninguna factura.",
            T.GLOBAL_REISSUE: "La factura global se reexpide sin los tickets de la solicitud tardía (TipoRelacion "
                              "04); los demás tickets pasan a la nueva global.",
            T.NONE: "Este comprobante no tiene tickets propios: ningún ticket cambia.",
        }[self.tickets_action]

    @property
    def deadline_text(self) -> str:
        return (f"Se puede cancelar hasta el {rules.long_date(self.deadline.last_day)} (mes de la declaración anual "
                "del ejercicio en que se emitió, CFF 29-A).")

    def as_dict(self) -> dict:
        return {
            "motive": self.motive,
            "motive_name": rules.MOTIVES.get(self.motive, ""),
            "requires_acceptance": self.acceptance.required,
            "acceptance_reason": self.acceptance.reason,
            "acceptance_message": self.acceptance.message,
            "deadline": self.deadline.last_day.isoformat(),
            "deadline_message": self.deadline_text,
            "near_deadline": self.near_deadline,
            "tickets": self.tickets_action,
            "tickets_message": self.tickets_text,
        }


def _refuse(code: str, message: str, details: dict | None = None, status: int = 422) -> InvoicingError:
    return InvoicingError(code, message, details or {}, status=status)


def _tickets_action(invoice: Invoice, motive: str, choice: str | None) -> tuple[str, InvoicingError | None]:
    if motive == rules.MOTIVE_WITH_REPLACEMENT:
        return T.REPLACEMENT, (_refuse("tickets_not_allowed", "Con el motivo 01 los tickets pasan al CFDI sustituto: "
                                       "no indiques «tickets».") if choice else None)
    if motive == rules.MOTIVE_GLOBAL:
        return T.GLOBAL_REISSUE, None
    if invoice.kind == Invoice.Kind.EGRESO:
        return T.NONE, None
    default = T.VOID if motive == "03" else T.RELEASE  # 03: the sale did not happen
    if choice in (None, ""):
        return default, None
    if choice not in (T.RELEASE, T.VOID):
        return default, _refuse("invalid_tickets_action", "«tickets» debe ser «release» (liberarlos) o «void» "
                                "(cancelarlos).", {"tickets": [choice]})
    return choice, None


def related_blockers(invoice: Invoice) -> list[Invoice]:
    """Our CFDIs still vigente that relate to this one other than by substitution: SAT says "No cancelable"
    until they are cancelled (a credit note to a global, for example)."""
    if not invoice.uuid:
        return []
    return list(Invoice.objects.filter(merchant_id=invoice.merchant_id, relations__related_uuid=invoice.uuid,
                                       status__in=(S.STAMPED, *CANCELLATION, S.PENDING, S.SEALED, S.ON_HOLD))
                .exclude(relations__relation_type="04").exclude(pk=invoice.pk).distinct().order_by("pk"))


def cancellation_plan(*, invoice: Invoice, motive: str, replacement: Invoice | None = None,
                      tickets: str | None = None, at: dt.datetime | None = None, internal: bool = False,
                      waiting_replacement: bool = False) -> CancellationPlan:
    """What cancelling ``invoice`` with ``motive`` would do, and ``refusal`` when it may not be done.

    ``internal`` lets motivo 04 through (the late-request route is its only user); ``waiting_replacement`` is
    the reissue's check, made before its replacement exists at SAT.
    """
    at = at or timezone.now()
    motive = (motive or "").strip()
    facts_ok = invoice.status in (S.STAMPED, *CANCELLATION, S.CANCELLED)
    acceptance = rules.acceptance(invoice_facts(invoice), at=at) if facts_ok else rules.Acceptance(False, "")
    deadline = invoice_deadline(invoice)
    action, refusal = _tickets_action(invoice, motive, tickets)
    near = deadline.days_left(at) <= settings.CANCELLATION_DEADLINE_WARNING_DAYS
    plan = CancellationPlan(invoice=invoice, motive=motive, acceptance=acceptance, deadline=deadline,
                            tickets_action=action, ticket_count=invoice.ticket_links.count(), near_deadline=near,
                            replacement=replacement)
    plan.refusal = refusal or _refusal(invoice, motive, replacement, deadline, at, internal=internal,
                                       waiting_replacement=waiting_replacement)
    return plan


def _refusal(invoice, motive, replacement, deadline, at, *, internal, waiting_replacement) -> InvoicingError | None:
    if invoice.status in CANCELLATION or _active(invoice) is not None:
        return _refuse("cancellation_in_progress", "Esta factura ya tiene una cancelación en proceso; espera la "
                       "respuesta del SAT.", {"status": invoice.status}, status=409)
    if invoice.status == S.CANCELLED:
        return _refuse("already_cancelled", "Esta factura ya está cancelada.", {"status": invoice.status}, 409)
    if invoice.status == S.SCHEDULED:
        return _refuse("not_stamped", "Esta factura está programada y aún no se emite: retírala con POST "
                       f"/api/v1/invoices/{invoice.pk}/withdraw (o «Cancelar la emisión programada» en la "
                       "administración); no hay nada que cancelar ante el SAT.", {"status": invoice.status}, 409)
    if invoice.status != S.STAMPED:
        return _refuse("not_stamped", "Solo se cancelan facturas timbradas.", {"status": invoice.status}, 409)
    if motive not in rules.MOTIVES:
        return _refuse("invalid_motive", "El motivo de cancelación debe ser 01, 02, 03 o 04.", {"motive": [motive]})
    if motive == rules.MOTIVE_GLOBAL:
        if invoice.kind != Invoice.Kind.GLOBAL:
            return _refuse("invalid_motive", "El motivo 04 es solo para facturas globales.", {"motive": [motive]})
        if not internal:
            return _refuse("motive_04_late_request_only", "El motivo 04 se aplica solo cuando un cliente pide "
                           "factura de un ticket que ya está en la global: la solicitud tardía (política «cancelar "
                           "y reexpedir») cancela y reexpide la global por sí sola.", {"motive": [motive]})
    if motive == rules.MOTIVE_WITH_REPLACEMENT and not waiting_replacement:
        problem = _replacement_problem(invoice, replacement)
        if problem:
            return problem
    elif replacement is not None and motive != rules.MOTIVE_WITH_REPLACEMENT:
        return _refuse("replacement_not_allowed", "El CFDI sustituto solo se indica con el motivo 01.",
                       {"replacement_id": [replacement.pk]})
    if deadline.passed(at):
        return _refuse("cancellation_deadline_passed",
                       f"Ya no se puede cancelar esta factura: el plazo terminó el "
                       f"{rules.long_date(deadline.last_day)} (CFF 29-A: hasta el mes de la declaración anual del "
                       "ejercicio en que se emitió; cancelar después se multa). Para corregirla emite una nota de "
                       "crédito.", {"deadline": deadline.last_day.isoformat()})
    blockers = related_blockers(invoice)
    if blockers:
        return _refuse("has_related_documents", "El SAT no permite cancelarla mientras tenga documentos "
                       "relacionados vigentes: cancela primero " + ", ".join(str(b) for b in blockers[:5]) + ".",
                       {"invoice_ids": [b.pk for b in blockers]}, status=409)
    return None


def _replacement_problem(invoice: Invoice, replacement: Invoice | None) -> InvoicingError | None:
    if replacement is None:
        return _refuse("replacement_required", "El motivo 01 requiere el CFDI que sustituye a esta factura "
                       "(«replacement_id»), timbrado y relacionado con TipoRelacion 04; usa «reexpedir» para "
                       "emitirlo.")
    if replacement.merchant_id != invoice.merchant_id or replacement.pk == invoice.pk:
        return _refuse("replacement_not_found", "No existe ese CFDI sustituto.", {"replacement_id": [replacement.pk]},
                       status=404)
    if replacement.status != S.STAMPED:
        return _refuse("replacement_not_stamped", "El CFDI sustituto debe estar timbrado antes de cancelar el "
                       "original.", {"replacement_status": replacement.status}, status=409)
    if not replacement.relations.filter(relation_type="04", related_uuid=invoice.uuid).exists():
        return _refuse("replacement_not_related", "El CFDI sustituto debe relacionar a esta factura con "
                       "TipoRelacion 04 (sustitución).", {"replacement_id": [replacement.pk]})
    if set(invoice.ticket_links.values_list("ticket_id", flat=True)) - set(
            replacement.ticket_links.values_list("ticket_id", flat=True)):
        return _refuse("replacement_tickets_differ", "El CFDI sustituto no ampara los mismos tickets que la factura "
                       "que sustituye.", {"replacement_id": [replacement.pk]})
    return None


def _active(invoice: Invoice) -> Cancellation | None:
    return invoice.cancellations.filter(status__in=Cancellation.ACTIVE, extra_stamp__isnull=True).first()
