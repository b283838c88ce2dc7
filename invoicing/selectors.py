"""Read queries of the back office shared by its pages: invoices needing attention and the invoice search.

"Needs attention" is defined here once (the dashboard's counts, the invoice list's filter, the badges). It names
statuses by their attribute on ``Invoice.Status`` and skips the ones the model does not have yet, so the explicit
on-hold and cancellation statuses of the state machine join in as soon as they exist.
"""

from __future__ import annotations

import re
import uuid as uuid_module

from django.db.models import Q

from invoicing.cfdi.rfc import RFC_PATTERN
from invoicing.models import Invoice, InvoiceTicket, LateRequest


def statuses(*names: str) -> list[str]:
    """The values of those ``Invoice.Status`` members that exist (others are ignored)."""
    return [getattr(Invoice.Status, name).value for name in names if hasattr(Invoice.Status, name)]


IN_FLIGHT = ("PENDING", "SEALED")


def _parked_by_late_request() -> Q:
    return Q(pk__in=LateRequest.objects.filter(status=LateRequest.Status.IN_PROGRESS).values("invoice_id"))


def attention_categories() -> dict[str, tuple[str, Q]]:
    """Each kind of invoice staff must look at: key → (Spanish label, filter)."""
    retrying = Q(status__in=statuses(*IN_FLIGHT), attempts__gt=0) & ~Q(last_error_code="")
    on_hold = Q(status__in=statuses("ON_HOLD", "HELD")) | (Q(status__in=statuses(*IN_FLIGHT))
                                                          & _parked_by_late_request())
    return {
        "failed": ("Rechazadas", Q(status__in=statuses("FAILED"))),
        "retrying": ("Con error / reintentando", retrying),
        "on_hold": ("En espera", on_hold),
        "cancel_pending": ("Cancelación pendiente",
                           Q(status__in=statuses("CANCELLING", "CANCEL_REQUESTED", "CANCEL_PENDING",
                                                 "CANCELLATION_REQUESTED", "CANCELLATION_PENDING"))),
        "cancel_rejected": ("Cancelación rechazada",
                            Q(status__in=statuses("CANCEL_REJECTED", "CANCELLATION_REJECTED"))),
    }


def needs_attention() -> Q:
    """Any of the categories above."""
    combined = Q(pk__in=[])
    for _, condition in attention_categories().values():
        combined |= condition
    return combined


# ---------------------------------------------------------------- search

# What a customer reads off the invoice: "F-1", "F1", "f 1", "FAC-0012".
SERIE_FOLIO = re.compile(r"^([A-ZÑ]+[A-ZÑ0-9]*?)\s*[-_/ ]?\s*0*([0-9]{1,18})$")


def invoice_search(queryset, term: str, *, merchant_id: int | None):
    """``queryset`` narrowed to what ``term`` names: UUID, serie-folio as typed, receptor RFC, email, ticket number
    or receptor name. Each branch is an indexed lookup within the merchant, except name and email (contains)."""
    term = " ".join((term or "").split())
    if not term:
        return queryset
    upper = term.upper()
    try:
        return queryset.filter(uuid=uuid_module.UUID(term))
    except ValueError:
        pass
    found = Q(pk__in=[])
    if RFC_PATTERN.match(upper.replace(" ", "")):
        found |= Q(receptor_rfc=upper.replace(" ", ""))
    if match := SERIE_FOLIO.match(upper):
        typed = match[1]  # series are stored as the merchant wrote them: the usual spellings keep the index usable
        found |= Q(serie__in={typed, typed.lower(), typed.capitalize()}, folio=int(match[2]))
    if upper.isdigit():
        found |= Q(folio=int(upper)) if len(upper) <= 18 else Q(pk__in=[])
    if "@" in term:
        found |= Q(receptor_emails__icontains=term)
    tickets = InvoiceTicket.objects.filter(ticket__number=term)
    if merchant_id is not None:
        tickets = tickets.filter(ticket__merchant_id=merchant_id)  # the (merchant, number) index
    found |= Q(pk__in=tickets.values("invoice_id"))
    if "@" not in term and len(term) >= 3:
        found |= Q(receptor_name__icontains=term)
    return queryset.filter(found)
