"""The documents a stamped invoice hands out: the stored PDF, the email with XML + PDF, and the ZIP of both.

The delivery queue (services/delivery.py) calls ``invoice_pdf_render`` and ``invoice_email_send`` after an
invoice is stamped; the shoppers' downloads, the admin and the API call ``invoice_pdf_download`` /
``invoice_zip``, which never render a large invoice inside the request (``PdfNotReady``), and queue resends
with ``invoice_email_resend_enqueue``.
"""

from __future__ import annotations

import io
import logging
import zipfile

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from infra.events import record_event
from infra.models import Event
from infra.queues import BULK, DELIVER, enqueue_on_commit
from invoicing.delivery_queue import concept_count, delivery_request_pdf, is_large
from invoicing.errors import InvoicingError
from invoicing.lifecycle import LEGAL
from invoicing.models import Invoice, InvoiceDelivery
from invoicing.pdf import SANDBOX_WATERMARK, money, render_invoice_pdf, safe_color

logger = logging.getLogger(__name__)

# Statuses whose invoice carries a stamped XML (a cancelled CFDI is still a document one may download).
DOWNLOADABLE = LEGAL
EMAIL_EVENT = "email_sent"
MAX_RECIPIENTS = 10
PDF_RETRY_AFTER_SECONDS = 5


def _stamped(invoice_id: int) -> Invoice:
    invoice = Invoice.objects.select_related("merchant", "branch").filter(pk=invoice_id).first()
    if invoice is None:
        raise InvoicingError("invoice_not_found", "La factura no existe.", status=404)
    if invoice.status not in DOWNLOADABLE or not invoice.stamped_xml or not invoice.uuid:
        raise InvoicingError("invoice_not_stamped", "La factura todavía no está timbrada.", status=409)
    return invoice


def is_downloadable(invoice: Invoice) -> bool:
    return invoice.status in DOWNLOADABLE and bool(invoice.stamped_xml) and invoice.uuid is not None


def document_basename(invoice: Invoice) -> str:
    """``{RFC emisor}_{serie}{folio}_{UUID}``: the name of the XML, the PDF and the ZIP."""
    folio = f"{invoice.serie}{invoice.folio or ''}"
    return f"{invoice.merchant.rfc}_{folio}_{str(invoice.uuid).upper()}"


def _stored_pdf(invoice: Invoice) -> bytes | None:
    if not invoice.pdf:
        return None
    try:
        with invoice.pdf.storage.open(invoice.pdf.name, "rb") as fh:
            return fh.read()
    except OSError:  # the row names a file the storage lost: render it again
        return None


def invoice_pdf_render(*, invoice_id: int, force: bool = False) -> None:
    """Render the PDF and store it in ``invoice.pdf`` (Django storage). Skipped when already stored.

    Not atomic on purpose: rendering takes ~0.1 s and must not hold a transaction. The row is updated with a
    guarded UPDATE so that two workers racing store one file; the loser deletes its own copy.
    """
    invoice = _stamped(invoice_id)
    if not force and _stored_pdf(invoice) is not None:
        return
    _render_and_store(invoice)


def _render_and_store(invoice: Invoice) -> bytes:
    body = render_invoice_pdf(invoice)
    field = invoice.pdf.field
    seen = invoice.pdf.name or ""
    name = field.generate_filename(invoice, f"{document_basename(invoice)}.pdf")
    stored = field.storage.save(name, ContentFile(body), max_length=field.max_length)
    if Invoice.objects.filter(pk=invoice.pk, pdf=seen).update(pdf=stored) == 1:
        if seen and seen != stored:
            field.storage.delete(seen)  # replaced (force) or a name whose file was lost
        invoice.pdf.name = stored
    else:
        field.storage.delete(stored)  # another worker stored one first: keep theirs
        invoice.refresh_from_db(fields=["pdf"])
    return body


class PdfNotReady(InvoicingError):
    """A large invoice's PDF is being rendered in the background; ask again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int = PDF_RETRY_AFTER_SECONDS):
        self.retry_after = retry_after
        super().__init__("pdf_not_ready", "Estamos generando tu PDF; estará listo en unos segundos.",
                         {"retry_after": retry_after}, status=202)


def invoice_pdf_bytes(invoice: Invoice) -> bytes:
    """The stored PDF, or rendered (and stored) now: for workers, which may take the time a large one needs."""
    if not is_downloadable(invoice):
        raise InvoicingError("invoice_not_stamped", "La factura todavía no está timbrada.", status=409)
    body = _stored_pdf(invoice)
    if body is None:
        body = _render_and_store(invoice)
    return body


def invoice_pdf_download(invoice: Invoice) -> bytes:
    """The PDF for a web request: the stored one, else rendered now if the invoice is small (up to
    INVOICE_PDF_LARGE_CONCEPTS concepts, about a second), else queued for the background and ``PdfNotReady``:
    a giant invoice once held a request for 46 s."""
    if not is_downloadable(invoice):
        raise InvoicingError("invoice_not_stamped", "La factura todavía no está timbrada.", status=409)
    body = _stored_pdf(invoice)
    if body is not None:
        return body
    if is_large(concept_count(invoice.stamped_xml)):
        delivery_request_pdf(invoice)
        raise PdfNotReady()
    return _render_and_store(invoice)


def invoice_xml_bytes(invoice: Invoice) -> bytes:
    if not is_downloadable(invoice):
        raise InvoicingError("invoice_not_stamped", "La factura todavía no está timbrada.", status=409)
    return bytes(invoice.stamped_xml)


def invoice_zip(invoice: Invoice) -> bytes:
    """A ZIP with ``{RFC}_{serie}{folio}_{UUID}.xml`` and ``.pdf`` (``PdfNotReady`` like the PDF download)."""
    xml = invoice_xml_bytes(invoice)
    pdf = invoice_pdf_download(invoice)
    base = document_basename(invoice)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{base}.xml", xml)
        zf.writestr(f"{base}.pdf", pdf)
    return buffer.getvalue()


# ---------------------------------------------------------------- email


def _clean_recipients(addresses) -> list[str]:
    seen: list[str] = []
    for raw in addresses or []:
        address = str(raw).strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError as exc:
            raise InvoicingError("invalid_email", f"El correo «{address}» no es válido.",
                                 details={"to": address}, status=400) from exc
        if address.lower() not in (s.lower() for s in seen):
            seen.append(address)
    if len(seen) > MAX_RECIPIENTS:
        raise InvoicingError("too_many_recipients", f"Se puede enviar a un máximo de {MAX_RECIPIENTS} correos.",
                             status=400)
    return seen


def public_download_url(invoice: Invoice, fmt: str) -> str:
    path = reverse("invoice-public-download", args=(invoice.public_code, fmt))
    return f"{settings.PUBLIC_BASE_URL}{path}"


def _already_emailed(invoice: Invoice) -> bool:
    # The event: invoices delivered before InvoiceDelivery existed.
    return (InvoiceDelivery.objects.filter(pk=invoice.pk, email_sent_at__isnull=False).exists()
            or Event.objects.filter(entity="invoice", object_id=invoice.pk, data__kind=EMAIL_EVENT).exists())


def _message_id(invoice: Invoice) -> str:
    """The first delivery's Message-ID, the same on every attempt: if a worker died between the mail server's
    "OK" and recording it, the retry's message is the same message to the receiver's mail client."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "localhost"
    return f"<factura-{str(invoice.uuid).lower()}@{domain}>"


def invoice_email_send(*, invoice_id: int, to: list[str] | None = None, actor: str = "",
                       skip_if_sent: bool = False) -> int:
    """Email the XML and the PDF; returns how many messages went out (0 or 1).

    ``to`` None sends to the receptor's addresses (and marks the invoice's delivery as emailed); a list sends
    there instead (a resend to another address). ``skip_if_sent`` makes the automatic send after stamping safe
    to retry: nothing goes out twice. An event row records who got it (the status does not change).
    """
    invoice = _stamped(invoice_id)
    recipients = _clean_recipients(invoice.receptor_emails if to is None else to)
    if not recipients:
        if to is not None:
            raise InvoicingError("no_recipients", "Indica al menos un correo.", status=400)
        return 0
    if skip_if_sent and _already_emailed(invoice):
        return 0
    merchant = invoice.merchant
    base = document_basename(invoice)
    serie_folio = f"{invoice.serie}-{invoice.folio}" if invoice.folio else invoice.serie
    context = {
        "invoice": invoice,
        "merchant": merchant,
        "serie_folio": serie_folio,
        "uuid": str(invoice.uuid).upper(),
        "total": money(invoice.total),
        "brand_color": safe_color(merchant.brand_color),
        "sandbox": invoice.pac == "sandbox",
        "watermark": SANDBOX_WATERMARK,
        "stamped_at": invoice.stamped_at.astimezone(merchant.tzinfo) if invoice.stamped_at else None,
        "links": {fmt: public_download_url(invoice, fmt) for fmt in ("pdf", "xml", "zip")},
    }
    # In the language the shopper used to ask for it (Invoice.language; the site's, es-MX, by default).
    with translation.override(invoice.language or settings.LANGUAGE_CODE):
        subject = gettext("Tu factura %(serie_folio)s de %(merchant)s") % {"serie_folio": serie_folio,
                                                                          "merchant": merchant.legal_name}
        body = render_to_string("email/invoice.txt", context)
        html = render_to_string("email/invoice.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=[merchant.contact_email] if merchant.contact_email else None,
        headers={"Message-ID": _message_id(invoice)} if skip_if_sent else None,
    )
    message.attach_alternative(html, "text/html")
    message.attach(f"{base}.xml", bytes(invoice.stamped_xml), "application/xml")
    message.attach(f"{base}.pdf", invoice_pdf_bytes(invoice), "application/pdf")
    sent = message.send(fail_silently=False)
    if to is None:
        InvoiceDelivery.objects.filter(pk=invoice.pk, email_sent_at__isnull=True).update(email_sent_at=timezone.now())
    record_event(
        merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk, from_status=invoice.status,
        to_status=invoice.status, actor=actor, reason=f"Correo enviado a {', '.join(recipients)}",
        data={"kind": EMAIL_EVENT, "to": recipients, "resend": to is not None},
    )
    return sent


def invoice_email_resend_enqueue(*, invoice: Invoice, to: list[str] | None = None, actor: str = "") -> None:
    """Queue a resend (the portal's, the admin's and the API's "reenviar"): it may have to render the PDF, which
    for a large invoice takes long, so never inside the request; large invoices go to the bulk queue."""
    recipients = _clean_recipients(to) if to is not None else None
    queue = BULK if is_large(concept_count(invoice.stamped_xml)) else DELIVER
    enqueue_on_commit("invoicing.tasks.send_invoice_email", invoice.pk, recipients, actor, queue=queue, group="email")
