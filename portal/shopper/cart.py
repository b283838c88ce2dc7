"""The shopper's cart: tickets of one merchant to put in one invoice, kept in the session by id.

Ids never leave the server; pages and forms name a ticket by its random public code.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from invoicing.services.issue import MAX_TICKETS_PER_INVOICE
from portal.shopper.lookup import ticket_outcome
from portal.shopper.messages import shopper_message
from tickets.models import Merchant, Ticket

SESSION_KEY = "portal_cart"


def _carts(request) -> dict:
    return request.session.get(SESSION_KEY, {})


def cart_ids(request, merchant: Merchant) -> list[int]:
    return list(_carts(request).get(str(merchant.pk), []))


def _save(request, merchant: Merchant, ids: list[int]) -> None:
    carts = dict(_carts(request))
    if ids:
        carts[str(merchant.pk)] = ids
    else:
        carts.pop(str(merchant.pk), None)
    request.session[SESSION_KEY] = carts


def cart_add(request, merchant: Merchant, ticket: Ticket) -> bool:
    """Add ``ticket``; False when the cart is full. Adding a ticket twice is a no-op."""
    assert ticket.merchant_id == merchant.pk
    ids = cart_ids(request, merchant)
    if ticket.pk in ids:
        return True
    if len(ids) >= MAX_TICKETS_PER_INVOICE:
        return False
    _save(request, merchant, [*ids, ticket.pk])
    return True


def cart_currency_conflict(request, merchant: Merchant, ticket: Ticket) -> str:
    """Why ``ticket`` cannot share the cart's invoice ("" when it can): a CFDI has one Moneda and one
    TipoCambio, so tickets in another currency, or sold at another exchange rate, go in another invoice."""
    others = [i for i in cart_ids(request, merchant) if i != ticket.pk]
    if not others:
        return ""
    first = Ticket.objects.filter(merchant=merchant, pk__in=others).values_list("currency", "exchange_rate").first()
    if first is None or first == (ticket.currency, ticket.exchange_rate):
        return ""
    if first[0] != ticket.currency:
        return _("El ticket %(number)s está en %(currency)s y tu factura en %(cart)s: una factura lleva una sola "
                 "moneda. Factura primero estos tickets y después el otro.") % {
            "number": ticket.number, "currency": ticket.currency, "cart": first[0]}
    return _("El ticket %(number)s se cobró con otro tipo de cambio (%(rate)s pesos por %(currency)s; tu factura "
             "lleva %(cart)s): una factura lleva un solo tipo de cambio. Factúralo por separado.") % {
        "number": ticket.number, "rate": ticket.exchange_rate, "currency": ticket.currency, "cart": first[1]}


def cart_set(request, merchant: Merchant, ids: list[int]) -> None:
    _save(request, merchant, list(dict.fromkeys(ids))[:MAX_TICKETS_PER_INVOICE])


def cart_remove(request, merchant: Merchant, public_code: str) -> None:
    ids = cart_ids(request, merchant)
    drop = set(Ticket.objects.filter(merchant=merchant, pk__in=ids, public_code=public_code).values_list("pk", flat=True))
    _save(request, merchant, [i for i in ids if i not in drop])


def cart_clear(request, merchant: Merchant) -> None:
    _save(request, merchant, [])


def cart_tickets(request, merchant: Merchant) -> tuple[list[Ticket], list[str]]:
    """The cart's tickets that can still be invoiced, and messages for the ones dropped since they were added
    (invoiced meanwhile, expired, put in a global…)."""
    ids = cart_ids(request, merchant)
    if not ids:
        return [], []
    by_id = {t.pk: t for t in Ticket.objects.filter(merchant=merchant, pk__in=ids).select_related("branch")}
    kept, dropped = [], []
    for pk in ids:
        ticket = by_id.get(pk)
        if ticket is None:
            continue
        outcome = ticket_outcome(merchant=merchant, ticket=ticket)
        if outcome.can_invoice:
            kept.append(ticket)
        else:
            dropped.append(_("Ticket %(number)s: %(why)s") % {"number": ticket.number,
                                                               "why": shopper_message(outcome.message)})
    if len(kept) != len(ids):
        _save(request, merchant, [t.pk for t in kept])
    return kept, dropped
