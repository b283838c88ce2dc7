"""What the progress page says while an invoice is not stamped yet, and when it starts saying it.

For the first seconds a spinner is enough; after ``PORTAL_SLOW_STAMP_SECONDS`` without a stamp the page says
what is happening (in the queue, waiting for the PAC, the PAC away and retried, a late request's global being
corrected first) and that the invoice will be emailed: nobody has to keep the page open.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from infra.models import Event
from invoicing.models import Invoice
from portal.shopper.late import late_explanation

WAITING = (Invoice.Status.ON_HOLD, Invoice.Status.PENDING, Invoice.Status.SEALED)


def _asked_at(invoice: Invoice) -> dt.datetime:
    """When the shopper asked for this invoice: its creation, or her last correction of a rejected one."""
    retried = (Event.objects.filter(entity="invoice", object_id=invoice.pk, from_status=Invoice.Status.FAILED,
                                    to_status=Invoice.Status.PENDING)
               .order_by("-pk").values_list("created_at", flat=True).first())
    return max(invoice.created_at, retried) if retried else invoice.created_at


def progress_state(invoice: Invoice, now: dt.datetime | None = None) -> dict:
    """{"slow": bool, "message": str}: whether to explain the wait, and what is happening."""
    if invoice.status not in WAITING:
        return {"slow": False, "message": ""}
    now = now or timezone.now()
    wait = dt.timedelta(seconds=settings.PORTAL_SLOW_STAMP_SECONDS)
    if invoice.status == Invoice.Status.ON_HOLD:
        numbers = list(invoice.tickets.order_by("number").values_list("number", flat=True))
        return {"slow": True, "message": late_explanation(invoice.merchant, numbers or [_("de tu compra")])}
    if invoice.attempts and not invoice.last_error_permanent and invoice.last_error_code:
        message = _("El servicio de timbrado (el PAC que certifica las facturas ante el SAT) no está respondiendo en "
                    "este momento. Lo volvemos a intentar automáticamente (intento %(attempt)s).") % {
            "attempt": invoice.attempts}
        return {"slow": True, "message": message}
    slow = now - invoice.created_at >= wait and now - _asked_at(invoice) >= wait
    if invoice.status == Invoice.Status.SEALED:
        message = _("Tu factura ya está sellada; el servicio de timbrado (el PAC que la certifica ante el SAT) está "
                    "tardando más de lo normal en responder.")
    elif invoice.lease_until and invoice.lease_until > now:  # a worker has it: sealing, then the PAC
        message = _("Ya la estamos generando; el servicio de timbrado (el PAC que la certifica ante el SAT) está "
                    "tardando más de lo normal.")
    else:
        message = _("Hay varias facturas en fila antes que la tuya; la timbraremos en cuanto llegue su turno.")
    return {"slow": slow, "message": message}
