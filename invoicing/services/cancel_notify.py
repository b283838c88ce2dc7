"""What a cancellation tells the outside: the ``invoice.cancellation_updated`` webhook, the merchant's emails
(a rejection or refusal, a request near the legal deadline, a replacement that never stamped) and, after a
shopper's correction, the notice to the shopper with the cancelled document.

Webhooks are written in the caller's transaction (they exist exactly when the change does); emails and the PDF
go out from tasks after commit.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from infra.events import record_event
from infra.models import Event
from infra.queues import DELIVER, enqueue_on_commit
from invoicing.cfdi import cancellation as rules
from invoicing.models import Cancellation
from invoicing.services.documents import document_basename, invoice_pdf_bytes, invoice_pdf_render
from invoicing.webhooks.models import WebhookEndpoint
from invoicing.webhooks.services import invoice_event_data, webhook_emit
from tickets.models import MerchantMembership

log = logging.getLogger(__name__)

EVENT = "invoice.cancellation_updated"
MERCHANT_EMAIL_EVENT = "cancellation_email"


def cancellation_data(cancellation) -> dict:
    """How the API and the webhook show a cancellation."""
    replacement = cancellation.replacement
    return {
        "id": cancellation.pk,
        "status": cancellation.status,
        "motive": cancellation.motive,
        "motive_name": rules.MOTIVES.get(cancellation.motive, ""),
        "replacement_id": cancellation.replacement_id,
        "replacement_uuid": str(replacement.uuid).upper() if replacement is not None and replacement.uuid else None,
        "tickets": cancellation.tickets_action,
        "requires_acceptance": cancellation.requires_acceptance,
        "acceptance_reason": cancellation.acceptance_reason,
        "acceptance_message": (rules.Acceptance(cancellation.requires_acceptance, cancellation.acceptance_reason)
                               .message if cancellation.acceptance_reason in rules.REASONS else ""),
        "tickets_message": cancellation.get_tickets_action_display(),
        "deadline": cancellation.deadline.isoformat() if cancellation.deadline else None,
        "source": cancellation.source,
        "sat_status": cancellation.sat_status,
        "last_code": cancellation.last_code,
        "last_message": cancellation.last_message,
        "requested_at": cancellation.requested_at,
        "finished_at": cancellation.finished_at,
        "next_check_at": cancellation.next_check_at,
        "created_at": cancellation.created_at,
    }


def _emit(event: str, invoice, data=dict) -> None:
    try:
        with transaction.atomic():  # a savepoint: a webhook problem never undoes the cancellation's step
            if not WebhookEndpoint.objects.filter(merchant_id=invoice.merchant_id, is_active=True).exists():
                return
            webhook_emit(merchant_id=invoice.merchant_id, event=event, data={**invoice_event_data(invoice), **data()})
    except Exception:
        log.exception("webhook %s for invoice %s could not be emitted", event, invoice.pk)


def cancellation_updated(cancellation, invoice) -> None:
    """``invoice.cancellation_updated``: every step of a request (requested, pending, cancelled, rejected…)."""
    def data() -> dict:
        cancellation.refresh_from_db()
        return {"cancellation": cancellation_data(cancellation)}

    _emit(EVENT, invoice, data)


def invoice_cancelled(invoice) -> None:
    _emit("invoice.cancelled", invoice)


def _enqueue(func: str, *args) -> None:
    enqueue_on_commit(func, *args, queue=DELIVER, group="cancel")


def merchant_on_commit(cancellation_id: int, kind: str) -> None:
    _enqueue("invoicing.tasks_cancel.cancellation_email", cancellation_id, kind)


def near_deadline_on_commit(cancellation_id: int) -> None:
    _enqueue("invoicing.tasks_cancel.cancellation_email", cancellation_id, "near_deadline")


def documents_on_commit(cancellation_id: int, outcome: str) -> None:
    if outcome == "cancelled":
        _enqueue("invoicing.tasks_cancel.cancelled_documents", cancellation_id)


# --- emails --------------------------------------------------------------------------------------------


SUBJECTS = {
    "rejected": "Cancelación rechazada por el receptor: factura {folio}",
    "refused": "Cancelación no aceptada: factura {folio}",
    "abandoned": "Cancelación no enviada: factura {folio}",
    "near_deadline": "Cancelación cerca del plazo legal: factura {folio}",
}


def merchant_recipients(merchant) -> list[str]:
    """The merchant's contact address and its back-office users'."""
    addresses = [merchant.contact_email] if merchant.contact_email else []
    addresses += [m.user.email for m in MerchantMembership.objects.filter(merchant=merchant, user__is_active=True)
                  .select_related("user") if m.user.email]
    return list(dict.fromkeys(a.strip() for a in addresses if a and a.strip()))


def _folio(invoice) -> str:
    return f"{invoice.serie}-{invoice.folio}" if invoice.folio else f"#{invoice.pk}"


def cancellation_email_send(*, cancellation_id: int, kind: str) -> int:
    """Tell the merchant (``kind``: rejected, refused, abandoned, near_deadline); at most once per kind."""
    cancellation = Cancellation.objects.select_related("invoice__merchant", "replacement").get(pk=cancellation_id)
    invoice = cancellation.invoice
    merchant = invoice.merchant
    if Event.objects.filter(entity="cancellation", object_id=cancellation.pk, data__kind=MERCHANT_EMAIL_EVENT,
                            data__what=kind).exists():
        return 0
    recipients = merchant_recipients(merchant)
    if not recipients:
        log.warning("cancellation %s: merchant %s has no email to tell (%s)", cancellation.pk, merchant.pk, kind)
        return 0
    deadline = cancellation.deadline
    context = {
        "kind": kind,
        "merchant": merchant,
        "invoice": invoice,
        "folio": _folio(invoice),
        "uuid": str(invoice.uuid).upper() if invoice.uuid else "",
        "cancellation": cancellation,
        "motive_name": rules.MOTIVES.get(cancellation.motive, ""),
        "replacement": cancellation.replacement,
        "replacement_folio": _folio(cancellation.replacement) if cancellation.replacement else "",
        "replacement_uuid": str(cancellation.replacement.uuid).upper() if cancellation.replacement
        and cancellation.replacement.uuid else "",
        "deadline": rules.long_date(deadline) if deadline else "",
        "days_left": (deadline - timezone.localdate(timezone=merchant.tzinfo)).days if deadline else None,
        "admin_url": f"{settings.PUBLIC_BASE_URL}/admin/invoicing/invoice/{invoice.pk}/change/",
    }
    message = EmailMessage(subject=SUBJECTS[kind].format(folio=_folio(invoice)),
                           body=render_to_string("email/cancellation_merchant.txt", context),
                           from_email=settings.DEFAULT_FROM_EMAIL, to=recipients)
    sent = message.send(fail_silently=False)
    record_event(merchant_id=merchant.pk, entity="cancellation", object_id=cancellation.pk,
                 from_status=cancellation.status, to_status=cancellation.status,
                 reason=f"Aviso al comercio ({kind}) enviado a {', '.join(recipients)}",
                 data={"kind": MERCHANT_EMAIL_EVENT, "what": kind, "to": recipients})
    return sent


def cancelled_documents(*, cancellation_id: int) -> None:
    """After a cancellation: the stored PDF says so; a shopper's own correction gets the cancelled document."""
    cancellation = Cancellation.objects.select_related("invoice__merchant", "replacement").get(pk=cancellation_id)
    invoice_pdf_render(invoice_id=cancellation.invoice_id, force=True)
    if cancellation.source == Cancellation.Source.PORTAL:
        receptor_cancelled_email_send(cancellation=cancellation)


def receptor_cancelled_email_send(*, cancellation) -> int:
    """The shopper's corrected invoice replaced this one: send the cancelled document with a note."""
    invoice = cancellation.invoice
    if Event.objects.filter(entity="cancellation", object_id=cancellation.pk, data__kind="receptor_email").exists():
        return 0
    replacement = cancellation.replacement
    recipients = list(dict.fromkeys([*invoice.receptor_emails, *(replacement.receptor_emails if replacement else [])]))
    if not recipients:
        return 0
    merchant = invoice.merchant
    context = {"merchant": merchant, "folio": _folio(invoice), "uuid": str(invoice.uuid).upper(),
               "replacement_folio": _folio(replacement) if replacement else "",
               "replacement_uuid": str(replacement.uuid).upper() if replacement and replacement.uuid else ""}
    from django.utils import translation
    from django.utils.translation import gettext

    with translation.override((replacement.language if replacement else invoice.language) or settings.LANGUAGE_CODE):
        subject = gettext("Factura %(folio)s de %(merchant)s cancelada y sustituida") % {
            "folio": _folio(invoice), "merchant": merchant.legal_name}
        body = render_to_string("email/cancelled_receptor.txt", context)
    message = EmailMessage(subject=subject, body=body,
                           from_email=settings.DEFAULT_FROM_EMAIL, to=recipients,
                           reply_to=[merchant.contact_email] if merchant.contact_email else None)
    base = document_basename(invoice)
    message.attach(f"{base}_CANCELADA.pdf", invoice_pdf_bytes(invoice), "application/pdf")
    message.attach(f"{base}.xml", bytes(invoice.stamped_xml), "application/xml")
    sent = message.send(fail_silently=False)
    record_event(merchant_id=merchant.pk, entity="cancellation", object_id=cancellation.pk,
                 from_status=cancellation.status, to_status=cancellation.status,
                 reason=f"Aviso de cancelación enviado al receptor ({', '.join(recipients)})",
                 data={"kind": "receptor_email", "to": recipients})
    return sent
