"""Extra stamps: a second UUID found for one sale.

Failover keeps it from happening (services/failover.py), but two stamps can still meet: a PAC that stamped a
request whose answer was lost and said so late (a late check, ``doubt_check``), or two workers that both stamped
one invoice at two PACs (the store finds the invoice stamped already, ``_store_outcomes``). The invoice keeps the
UUID it stored first, its legal document; the other is cancelled with motivo 02 ("comprobante emitido con
errores sin relación") through the cancellation machinery, at the PAC that stamped it, and the merchant is told:
an event on the invoice, the ``invoice.duplicate_stamp`` webhook and an email, when found and when SAT answers.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from infra.events import record_event
from infra.models import Event
from invoicing.models import ExtraStamp, Invoice
from invoicing.pac import pac_named
from invoicing.services.cancel import extra_stamp_cancellation
from invoicing.services.cancel_notify import merchant_recipients
from invoicing.services.duplicates_notify import EVENT, duplicate_stamp_updated, merchant_email_on_commit  # noqa: F401

log = logging.getLogger("invoicing.pac")

EMAIL_EVENT = "duplicate_stamp_email"
HOW = {"late_answer": "respuesta tardía de un PAC", "check": "verificación posterior con el PAC"}


def extra_stamp_found(*, invoice: Invoice, result, pac_name: str, how: str) -> ExtraStamp | None:
    """Record a stamp of ``invoice``'s sale that is not its UUID and start its cancellation (motivo 02).

    Idempotent by UUID: the same extra stamp found twice is recorded once. Returns None when ``result`` is the
    invoice's own UUID.
    """

    legal = str(invoice.uuid).upper() if invoice.uuid else ""
    if result.uuid.upper() == legal:
        return None
    with transaction.atomic():
        try:
            with transaction.atomic():
                extra = ExtraStamp.objects.create(
                    merchant_id=invoice.merchant_id, invoice=invoice, uuid=result.uuid.upper(), pac=pac_name,
                    stamped_xml=result.stamped_xml, stamped_at=result.stamped_at, how=how)
        except IntegrityError:
            return ExtraStamp.objects.filter(uuid=result.uuid.upper()).first()
        label = pac_named(invoice.merchant, pac_name).label
        keeps = (f"La factura conserva su folio fiscal {legal}" if legal
                 else "La factura no quedó timbrada (se rechazó), así que ningún comprobante ampara esta venta")
        record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                     from_status=invoice.status, to_status=invoice.status, actor="timbrado",
                     reason=f"Se encontró un segundo folio fiscal de esta venta: {extra.uuid} ({label}, "
                            f"{HOW.get(how, how)}). {keeps}; el sobrante se cancela con motivo 02.",
                     data={"kind": "extra_stamp", "extra_stamp": str(extra.uuid).upper(), "pac": pac_name,
                           "how": how})
        cancellation = extra_stamp_cancellation(extra)
        duplicate_stamp_updated(extra, cancellation)
        merchant_email_on_commit(extra.pk, "detected")
    log.warning("invoice %s: extra stamp %s from %s (%s), cancelling it with motivo 02", invoice.pk, extra.uuid,
                pac_name, how)
    return extra


SUBJECTS = {
    "detected": "Se detectó un timbre duplicado de la factura {folio}: se está cancelando",
    "cancelled": "Timbre duplicado de la factura {folio} cancelado",
    "not_cancelled": "Atención: el timbre duplicado de la factura {folio} no se pudo cancelar",
}


def duplicate_email_send(*, extra_stamp_id: int, kind: str) -> int:
    """Tell the merchant (``kind``: detected, cancelled, not_cancelled); at most once per kind."""

    extra = ExtraStamp.objects.select_related("invoice__merchant").get(pk=extra_stamp_id)
    invoice, merchant = extra.invoice, extra.invoice.merchant
    if Event.objects.filter(entity="invoice", object_id=invoice.pk, data__kind=EMAIL_EVENT,
                            data__what=kind, data__extra_stamp=str(extra.uuid).upper()).exists():
        return 0
    recipients = merchant_recipients(merchant)
    if not recipients:
        log.warning("extra stamp %s: merchant %s has no email to tell (%s)", extra.pk, merchant.pk, kind)
        return 0
    cancellation = extra.cancellations.order_by("-pk").first()
    folio = f"{invoice.serie}-{invoice.folio}" if invoice.folio else f"#{invoice.pk}"
    context = {"kind": kind, "merchant": merchant, "invoice": invoice, "folio": folio, "extra": extra,
               "extra_uuid": str(extra.uuid).upper(), "how": HOW.get(extra.how, extra.how),
               "legal_uuid": str(invoice.uuid).upper() if invoice.uuid else "",
               "cancellation": cancellation,
               "admin_url": f"{settings.PUBLIC_BASE_URL}/admin/invoicing/invoice/{invoice.pk}/change/"}
    message = EmailMessage(subject=SUBJECTS[kind].format(folio=folio),
                           body=render_to_string("email/duplicate_stamp_merchant.txt", context),
                           from_email=settings.DEFAULT_FROM_EMAIL, to=recipients)
    sent = message.send(fail_silently=False)
    record_event(merchant_id=merchant.pk, entity="invoice", object_id=invoice.pk, from_status=invoice.status,
                 to_status=invoice.status, reason=f"Aviso de timbre duplicado ({kind}) enviado a {', '.join(recipients)}",
                 data={"kind": EMAIL_EVENT, "what": kind, "extra_stamp": str(extra.uuid).upper(), "to": recipients})
    return sent
