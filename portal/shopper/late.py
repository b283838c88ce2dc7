"""Late requests: a ticket already in a stamped global invoice (DESIGN.md "Late request", issue 8).

The merchant's policy decides: a credit note to the global or cancel-and-reissue, then the nominative
invoice (``invoicing.services.late_request.late_request_issue``), or "refuse", where the portal explains.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _

from invoicing.services.late_request import late_request_issue
from tickets.models import Merchant


def _issue_late(*, merchant, ticket_ids, receptor, actor="", idempotency_key=None, language=""):
    # Same call shape as invoice_issue, the same key: a double click replays the one request's invoice.
    return late_request_issue(merchant=merchant, ticket_ids=ticket_ids, receptor=receptor, actor=actor,
                              idempotency_key=idempotency_key, language=language)


def late_request_service(merchant: Merchant) -> Callable | None:
    """The late-request service to call for ``merchant``, or None when late requests are not possible."""
    if merchant.late_request_policy == Merchant.LatePolicy.REFUSE:
        return None
    return _issue_late


def late_explanation(merchant: Merchant, numbers: list[str]) -> str:
    """What will happen to tickets already in a global, for the cart, the confirmation and the progress page."""
    values = {"numbers": ", ".join(numbers), "merchant": merchant.legal_name}
    if len(numbers) > 1:
        first = _("Los tickets %(numbers)s ya están en la factura global que %(merchant)s emite por sus ventas al "
                  "público en general. Para facturarlo a tu nombre, ") % values
    else:
        first = _("El ticket %(numbers)s ya está en la factura global que %(merchant)s emite por sus ventas al "
                  "público en general. Para facturarlo a tu nombre, ") % values
    if merchant.late_request_policy == Merchant.LatePolicy.CANCEL_REISSUE:
        steps = _("primero cancelaremos esa factura global ante el SAT y la volveremos a emitir sin tu compra (o, si "
                  "ya no puede cancelarse, emitiremos una nota de crédito que la descuente), y enseguida tu factura.")
    else:
        steps = _("primero emitiremos una nota de crédito que lo descuenta de esa factura global, y enseguida tu "
                  "factura.")
    return first + steps + " " + _("No tienes que hacer nada más: ese trámite es del comercio ante el SAT y a ti solo "
                                   "te llega tu factura. Puede tardar unos minutos más de lo normal.")
