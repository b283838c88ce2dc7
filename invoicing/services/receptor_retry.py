"""The receptor corrects her data after the PAC refused the invoice for it, and the same invoice is stamped.

The most common real rejection is a name or postal code that is not the one SAT has for the RFC (CFDI40145,
CFDI40147). Such an invoice never became a CFDI: nothing at SAT is replaced, so instead of a new invoice the
failed one goes back to the stamping queue (failed → pending) with the corrected data and the same serie and
folio, and takes its tickets again — still open, still within the self-invoicing window, as at issue.

Only a nominative invoice refused for the receptor's data (``invoicing.cfdi.receptor.ERROR_FIELDS``) may be
retried, a few times at most. A late request's invoice (its global was already corrected for it) and a
replacement (its tickets stay with the invoice it was to replace) are not: they keep their own ways back.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from infra.events import transition
from infra.models import Event
from invoicing.cfdi.receptor import error_field
from invoicing.errors import InvoicingError
from invoicing.lifecycle import invoice_transition
from invoicing.models import Invoice, InvoiceRelation, LateRequest
from invoicing.services.issue import (
    RECEPTOR_FIELDS,
    _comparable,
    invoice_receptor,
    receptor_postal_code,
)
from invoicing.services.receptor import ReceptorData, receptor_check, receptor_normalized
from invoicing.stamp_queue import stamp_queue_wake_on_commit
from tickets import eligibility
from tickets.eligibility import ticket_eligibility
from tickets.models import Merchant, Ticket

MAX_RETRIES = 5  # each costs a PAC call: past this, a person (the merchant) looks at it


def _retries(invoice: Invoice) -> int:
    return Event.objects.filter(entity="invoice", object_id=invoice.pk, from_status=Invoice.Status.FAILED,
                                to_status=Invoice.Status.PENDING).count()


def receptor_retry_blocker(invoice: Invoice) -> str:
    """Why the receptor cannot correct ``invoice`` and retry it ("" when she can): a Spanish sentence."""
    if invoice.kind != Invoice.Kind.INGRESO or invoice.status != Invoice.Status.FAILED:
        return "Esta factura no está rechazada."
    if not error_field(invoice.last_error_code):
        return "El rechazo no se debe a tus datos fiscales."
    if LateRequest.objects.filter(invoice=invoice).exists() or InvoiceRelation.objects.filter(invoice=invoice).exists():
        return "Esta factura no puede volver a enviarse con datos corregidos."
    if _retries(invoice) >= MAX_RETRIES:
        return "Ya corregiste tus datos varias veces y el SAT sigue rechazándolos."
    return ""


def invoice_receptor_retry(*, merchant: Merchant, invoice_id: int, receptor: ReceptorData,
                           actor: str = "portal") -> Invoice:
    """Put the failed ``invoice_id`` back in the stamping queue with ``receptor``; returns it (pending).

    Refusals (InvoicingError): the receptor rules' own (400); ``retry_not_possible`` (409) with the reason;
    ``receptor_unchanged`` (400) when the data are the ones SAT refused; a ticket that is no longer open, or
    whose window closed, with its eligibility code and message (409). Guarded: two retries racing make one.
    """
    receptor = receptor_normalized(receptor)
    receptor_check(receptor)
    with transaction.atomic():
        invoice = (Invoice.objects.select_for_update(of=("self",)).select_related("merchant")
                   .filter(merchant=merchant, pk=invoice_id, kind=Invoice.Kind.INGRESO).first())
        if invoice is None:
            raise InvoicingError("invoice_not_found", "No encontramos la factura.", status=404)
        blocker = receptor_retry_blocker(invoice)
        if blocker:
            raise InvoicingError("retry_not_possible", blocker, {"invoice_id": invoice.pk}, status=409)
        before = invoice_receptor(invoice)
        if all(_comparable(getattr(before, f)) == _comparable(getattr(receptor, f)) for f in RECEPTOR_FIELDS
               if f != "emails"):
            field = error_field(invoice.last_error_code)
            raise InvoicingError("receptor_unchanged", "Son los mismos datos que el SAT rechazó: corrígelos como "
                                 "aparecen en tu Constancia de Situación Fiscal.", {"field": field}, status=400)
        now = timezone.now()
        tickets = list(Ticket.objects.select_for_update().filter(invoice_links__invoice=invoice).order_by("pk"))
        for ticket in tickets:
            verdict = ticket_eligibility(ticket, merchant=merchant, now=now)
            if verdict.code == eligibility.LATE_REQUEST:  # went into a global meanwhile: a late request now
                raise InvoicingError("ticket_in_global_invoice", f"El ticket {ticket.number} ya se incluyó en la "
                                     "factura global del comercio: búscalo de nuevo para facturarlo.",
                                     {"ticket_id": ticket.pk}, status=409)
            if verdict.code != eligibility.OK:
                raise InvoicingError(verdict.error_code or "ticket_unavailable", verdict.message,
                                     {"ticket_id": ticket.pk}, status=409)
        for ticket in tickets:
            if not transition(ticket, entity="ticket", expected=Ticket.Status.OPEN, to=Ticket.Status.INVOICED,
                              actor=actor, reason=f"factura #{invoice.pk}: datos del receptor corregidos",
                              updated_at=now):
                raise InvoicingError("tickets_busy", "Los tickets están cambiando en este momento; intenta de "
                                     "nuevo.", status=409)  # rolls back the ones already taken
        rejected = invoice.last_error_code
        invoice_transition(
            invoice, expected=Invoice.Status.FAILED, to=Invoice.Status.PENDING, actor=actor,
            reason=f"reintento con los datos del receptor corregidos (rechazo {rejected})",
            data={"rejected": rejected, "before": _snapshot(before), "after": _snapshot(receptor)},
            receptor_rfc=receptor.rfc, receptor_name=receptor.name, receptor_tax_regime=receptor.tax_regime,
            receptor_postal_code=receptor_postal_code(receptor, invoice.branch_id),
            receptor_cfdi_use=receptor.cfdi_use, receptor_emails=list(receptor.emails),
            receptor_country=receptor.foreign_country, receptor_tax_id=receptor.foreign_tax_id,
            # The sealed XML carried the refused data: it is sealed again, with a new Fecha.
            sealed_xml=None, certificate=None, issued_at=None, attempts=0, next_attempt_at=None, lease_until=None,
            last_error_code="", last_error_message="", last_error_permanent=False, updated_at=now,
        )
        stamp_queue_wake_on_commit()
    return invoice


def _snapshot(receptor: ReceptorData) -> dict:
    return {"rfc": receptor.rfc, "name": receptor.name, "tax_regime": receptor.tax_regime,
            "postal_code": receptor.postal_code, "cfdi_use": receptor.cfdi_use}
