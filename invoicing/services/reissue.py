"""Correct an invoice's receptor: stamp the replacement first, then cancel the original with motivo 01.

SAT's order (RULES.md §6, GUIA Q42): 1) the correct CFDI, relating the old UUID with TipoRelacion 04; 2) the
cancellation of the old one with motivo 01 and FolioSustitucion = the new UUID; 3) SAT decides whether the
receptor must accept. ``invoice_reissue`` does 1 and records 2 as a ``waiting`` cancellation; the cancellation
follow-up (services/cancel.py) sends it once the replacement is stamped, or drops it if the replacement fails.

Both documents stay consistent whatever SAT answers: the replacement holds the same tickets from the start (they
stay ``invoiced``); if the receptor rejects the cancellation both CFDIs are vigente, as SAT sees them, and the
merchant is told; if the replacement cannot be stamped the original keeps everything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from django.db import transaction
from django.utils import timezone

from infra.events import record_event
from invoicing.cfdi import cancellation as rules
from invoicing.errors import InvoicingError
from invoicing.folios import folio_next
from invoicing.lifecycle import invoice_created
from invoicing.models import Cancellation, Invoice, InvoiceRelation, InvoiceTicket
from invoicing.services import cancel_notify as notify
from invoicing.services.cancel import ENTITY, cancellation_plan, invoice_deadline
from invoicing.services.issue import RECEPTOR_FIELDS, invoice_receptor
from invoicing.services.receptor import receptor_check, receptor_normalized
from invoicing.stamp_queue import stamp_queue_wake_on_commit

FISCAL_FIELDS = tuple(name for name in RECEPTOR_FIELDS if name != "emails")


def invoice_reissue(*, merchant, invoice_id: int, changes: dict, actor: str = "",
                    source: str = Cancellation.Source.API) -> Cancellation:
    """Issue the corrected invoice (pending: it goes to stamping now) and the waiting motivo-01 cancellation of
    the original; returns the cancellation (``.replacement`` is the new invoice).

    ``changes`` holds the receptor fields to change (rfc, name, tax_regime, postal_code, cfdi_use, emails),
    judged by the receptor rules like any new invoice. Refused while another cancellation is under way, past the
    legal deadline, for anything but a stamped ingreso, or when no fiscal datum changes.
    """
    unknown = sorted(set(changes) - set(RECEPTOR_FIELDS))
    if unknown:
        raise InvoicingError("validation_error", f"Campos desconocidos: {', '.join(unknown)}.",
                             {name: ["Campo desconocido."] for name in unknown}, status=400)
    with transaction.atomic():
        invoice = (Invoice.objects.select_for_update(of=("self",)).select_related("merchant", "branch")
                   .filter(merchant=merchant, pk=invoice_id).first())
        if invoice is None:
            raise InvoicingError("not_found", "No existe esa factura.", status=404)
        if invoice.kind != Invoice.Kind.INGRESO:
            raise InvoicingError("not_reissuable", "Solo se corrigen los datos del receptor de una factura "
                                 "nominativa (no de una global ni de una nota de crédito).", {"kind": invoice.kind},
                                 status=422)
        plan = cancellation_plan(invoice=invoice, motive=rules.MOTIVE_WITH_REPLACEMENT, waiting_replacement=True)
        if plan.refusal is not None:
            raise plan.refusal
        original = invoice_receptor(invoice)
        if "emails" in changes and isinstance(changes["emails"], list | tuple):
            changes = {**changes, "emails": tuple(changes["emails"])}
        receptor = receptor_normalized(replace(original, **changes))
        receptor_check(receptor)
        if all(getattr(receptor, name) == getattr(original, name) for name in FISCAL_FIELDS):
            raise InvoicingError("no_changes", "Los datos fiscales son los mismos de la factura: no hay nada que "
                                 "corregir (para enviarla a otro correo, usa «reenviar»).", status=422)
        replacement = _replacement(invoice, receptor, actor=actor)
        cancellation = Cancellation.objects.create(
            merchant=merchant, invoice=invoice, motive=rules.MOTIVE_WITH_REPLACEMENT, replacement=replacement,
            tickets_action=Cancellation.Tickets.REPLACEMENT, status=Cancellation.Status.WAITING, source=source,
            actor=actor[:150], requires_acceptance=plan.acceptance.required,
            acceptance_reason=plan.acceptance.reason, deadline=plan.deadline.last_day, next_check_at=timezone.now(),
        )
        changed = [name for name in FISCAL_FIELDS if getattr(receptor, name) != getattr(original, name)]
        record_event(merchant_id=merchant.pk, entity=ENTITY, object_id=cancellation.pk, from_status="",
                     to_status=Cancellation.Status.WAITING, actor=actor,
                     reason=f"reexpedición: la factura #{replacement.pk} sustituye a la #{invoice.pk} "
                            f"({', '.join(changed)}); la cancelación (motivo 01) se envía cuando se timbre",
                     data={**plan.as_dict(), "changed": changed})
        notify.cancellation_updated(cancellation, invoice)
        if plan.near_deadline:
            notify.near_deadline_on_commit(cancellation.pk)
        stamp_queue_wake_on_commit()
    return cancellation


def _replacement(invoice: Invoice, receptor, *, actor: str) -> Invoice:
    replacement = Invoice.objects.create(
        merchant_id=invoice.merchant_id, branch=invoice.branch, kind=Invoice.Kind.INGRESO, serie=invoice.serie,
        folio=folio_next(merchant_id=invoice.merchant_id, serie=invoice.serie),
        receptor_rfc=receptor.rfc, receptor_name=receptor.name, receptor_tax_regime=receptor.tax_regime,
        receptor_postal_code=receptor.postal_code, receptor_cfdi_use=receptor.cfdi_use,
        receptor_emails=list(receptor.emails), language=invoice.language, currency=invoice.currency,
        payment_form=invoice.payment_form,
        payment_method=invoice.payment_method, subtotal=invoice.subtotal, discount=invoice.discount,
        tax_total=invoice.tax_total, withheld_total=invoice.withheld_total, total=invoice.total,
    )
    # The tickets stay ``invoiced``: held by the original until it is cancelled, by the replacement after.
    InvoiceTicket.objects.bulk_create(InvoiceTicket(invoice=replacement, ticket_id=link.ticket_id, amount=link.amount)
                                      for link in invoice.ticket_links.order_by("ticket_id"))
    InvoiceRelation.objects.create(invoice=replacement, relation_type="04", related_uuid=invoice.uuid,
                                   related_invoice=invoice)
    invoice_created(replacement, actor=actor, reason=f"sustituye a la factura #{invoice.pk} ({invoice.serie}-"
                                                     f"{invoice.folio}, UUID {str(invoice.uuid).upper()})")
    return replacement


# --- the shopper's own correction ------------------------------------------------------------------------


def self_correction_until(invoice: Invoice) -> dt.datetime | None:
    """Until when the shopper may correct her data from the invoice's page (the merchant's window, never past
    the legal deadline); None when the merchant does not allow it."""
    merchant = invoice.merchant
    stamped = invoice.stamped_at or invoice.issued_at
    if merchant.self_correction_window == merchant.CorrectionWindow.OFF or stamped is None:
        return None
    if merchant.self_correction_window == merchant.CorrectionWindow.DAYS:
        until = stamped + dt.timedelta(days=merchant.self_correction_days)
    else:  # the month of the invoice, in the merchant's zone
        local = timezone.localtime(invoice.issued_at or stamped, merchant.tzinfo)
        first = local.date().replace(day=1) + dt.timedelta(days=32)
        until = dt.datetime.combine(first.replace(day=1), dt.time.min, tzinfo=merchant.tzinfo)
    return min(until, invoice_deadline(invoice).ends_at)


def shopper_correction(*, invoice: Invoice, current_rfc: str, receptor, actor: str = "portal") -> Cancellation:
    """"Corregir mis datos": the shopper proves she is the receptor (the RFC the invoice was made to), within the
    merchant's window; then the reissue. ``receptor`` is the corrected ReceptorData."""
    import secrets

    until = self_correction_until(invoice)
    if until is None:
        raise InvoicingError("correction_not_allowed", "Esta tienda no permite corregir los datos de una factura "
                             f"desde aquí; comunícate con {invoice.merchant.contact_phrase('la tienda')}.", status=409)
    if timezone.now() >= until:
        shown = timezone.localtime(until, invoice.merchant.tzinfo) - dt.timedelta(seconds=1)
        raise InvoicingError("correction_window_closed", f"El plazo para corregir tus datos terminó el "
                             f"{rules.long_date(shown.date())}; comunícate con "
                             f"{invoice.merchant.contact_phrase('la tienda')}.", status=409)
    if not secrets.compare_digest(current_rfc.encode(), invoice.receptor_rfc.encode()):
        raise InvoicingError("rfc_mismatch", "Ese RFC no es el de esta factura: escribe el RFC con el que "
                             "facturaste.", {"current_rfc": ["No coincide con la factura."]}, status=400)
    changes = {name: getattr(receptor, name) for name in RECEPTOR_FIELDS}
    return invoice_reissue(merchant=invoice.merchant, invoice_id=invoice.pk, changes=changes, actor=actor,
                           source=Cancellation.Source.PORTAL)
