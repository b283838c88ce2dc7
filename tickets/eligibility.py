"""Can this ticket be self-invoiced, until when, and if not, why: the one rule every path asks.

The portal's lookup and cart, the POS API (``can_self_invoice``, ``/tickets/validate``), ``invoice_issue`` and
late requests all call ``ticket_eligibility``; none of them compares ``expires_at`` itself.

The self-invoicing window ends AT ``expires_at``: a ticket can be invoiced while ``now < expires_at`` and not
from that instant on. ``ticket_expire`` sets ``expires_at = now``, so "end the window now" takes effect at once.
An expired ticket is not a status: it stays ``open`` and goes into the global invoice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from tickets.models import Merchant, Ticket

OK = "ok"
LATE_REQUEST = "globalized_late"  # in a stamped global, and the merchant's late-request policy takes it out
VOID = "void"
INVOICED = "invoiced"
EXPIRED = "expired"
GLOBALIZED = "globalized"  # in a stamped global, and the merchant does not issue late invoices

# What services answer (InvoicingError code) when they refuse a ticket for that reason.
ERROR_CODES = {
    VOID: "ticket_void",
    INVOICED: "ticket_already_invoiced",
    EXPIRED: "ticket_expired",
    GLOBALIZED: "late_request_refused",
}

MESSAGES = {
    OK: "El ticket {number} se puede facturar.",
    LATE_REQUEST: "El ticket {number} ya estaba en la factura global del comercio; al facturarlo, el comercio lo "
                  "retira de esa factura global. Puedes continuar.",
    VOID: "El ticket {number} fue cancelado en la tienda (por ejemplo, por una devolución) y no se puede facturar.",
    INVOICED: "El ticket {number} ya fue facturado.",
    EXPIRED: "El plazo para facturar el ticket {number} venció el {expired_on}. Ya no es posible facturarlo en "
             "línea; si tienes dudas, comunícate con {contact}.",
    GLOBALIZED: "El ticket {number} ya se incluyó en la factura global del comercio (la que emite por las ventas "
                "al público en general) y el comercio no emite facturas individuales después de eso, por lo que "
                "ya no se puede facturar en línea. Si necesitas tu factura, comunícate con {contact}.",
}


@dataclass(frozen=True)
class Eligibility:
    code: str
    message: str
    until: dt.datetime  # end of the window (the ticket's expires_at)
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code in (OK, LATE_REQUEST)

    @property
    def error_code(self) -> str:
        return ERROR_CODES.get(self.code, "")


def window_open(expires_at: dt.datetime, now: dt.datetime) -> bool:
    """The boundary, in one place: open strictly before ``expires_at``."""
    return now < expires_at


def window_open_q(now: dt.datetime) -> Q:
    """``window_open`` as a query filter, for guarded updates and listings."""
    return Q(expires_at__gt=now)


def ticket_eligibility(ticket, *, merchant: Merchant, now: dt.datetime | None = None,
                       enforce_deadline: bool = True) -> Eligibility:
    """The verdict for ``ticket`` (anything with ``number``, ``status`` and ``expires_at``) of ``merchant``.

    ``enforce_deadline`` is off when the merchant itself invoices (its API may invoice an expired ticket).
    Checks run in a fixed order (void, invoiced, expired, in a global) so every path gives the same reason.
    """
    now = now or timezone.now()
    status, number, expires_at = ticket.status, ticket.number, ticket.expires_at

    def verdict(code: str, **details) -> Eligibility:
        expired_on = timezone.localtime(expires_at, merchant.tzinfo).strftime("%d/%m/%Y") if code == EXPIRED else ""
        message = MESSAGES[code].format(number=number, expired_on=expired_on,
                                        contact=merchant.contact_phrase("el comercio" if code == EXPIRED else "la tienda"))
        return Eligibility(code, message, expires_at, details)

    if status == Ticket.Status.VOID:
        return verdict(VOID)
    if status == Ticket.Status.INVOICED:
        return verdict(INVOICED)
    if enforce_deadline and not window_open(expires_at, now):
        return verdict(EXPIRED, expired_at=expires_at.isoformat())
    if status == Ticket.Status.GLOBALIZED:
        return verdict(GLOBALIZED if merchant.late_request_policy == Merchant.LatePolicy.REFUSE else LATE_REQUEST)
    return verdict(OK)
