"""Downloads of a stamped invoice's XML, PDF and ZIP: by random code for shoppers, by id in the admin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from infra.logcontext import bind
from invoicing.models import Invoice
from invoicing.services.documents import (
    DOWNLOADABLE,
    PdfNotReady,
    document_basename,
    invoice_email_resend_enqueue,
    invoice_pdf_download,
    invoice_xml_bytes,
    invoice_zip,
    is_downloadable,
)

FORMATS = {
    "xml": ("application/xml", invoice_xml_bytes),
    "pdf": ("application/pdf", invoice_pdf_download),
    "zip": ("application/zip", invoice_zip),
}


def document_response(invoice: Invoice, fmt: str) -> HttpResponse:
    """An attachment named ``{RFC}_{serie}{folio}_{UUID}.{fmt}``; 404 for unknown formats or unstamped invoices.

    Raises ``PdfNotReady`` while a large invoice's PDF renders in the background (``pdf_pending_response``).
    """
    if fmt not in FORMATS or not is_downloadable(invoice):
        raise Http404("La factura no existe o todavía no está timbrada.")
    content_type, producer = FORMATS[fmt]
    response = HttpResponse(producer(invoice), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{document_basename(invoice)}.{fmt}"'
    response["Cache-Control"] = "private, max-age=0, no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def pdf_pending_response(request, invoice: Invoice, exc: PdfNotReady) -> HttpResponse:
    """202 and a Spanish page that reloads itself: the PDF is being rendered in the background."""
    response = render(request, "portal/pdf_pending.html", {"merchant": invoice.merchant,
                                                           "retry_after": exc.retry_after}, status=202)
    response["Retry-After"] = str(exc.retry_after)
    response["Cache-Control"] = "no-store"
    return response


def public_download(request, code: str, fmt: str):
    """Shoppers' link (from the progress page and the email): the random public code, never an id."""
    invoice = (
        Invoice.objects.select_related("merchant")
        .filter(public_code=code, status__in=DOWNLOADABLE, uuid__isnull=False)
        .first()
    )
    if invoice is None:
        raise Http404("La factura no existe o todavía no está timbrada.")
    bind(merchant_id=invoice.merchant_id, invoice_id=invoice.pk)
    try:
        return document_response(invoice, fmt)
    except PdfNotReady as exc:
        return pdf_pending_response(request, invoice, exc)


class InvoiceDocumentsAdminMixin:
    """For InvoiceAdmin: download links on the change page and a "Reenviar por correo" action.

    The download view looks the invoice up through ``get_queryset`` (MerchantScopedAdmin), so staff of one
    merchant get a 404 for another merchant's invoice.
    """

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        urls = [
            path(
                "<path:object_id>/documento/<str:fmt>/",
                self.admin_site.admin_view(self.document_view),
                name="{}_{}_document".format(*info),
            )
        ]
        return urls + super().get_urls()

    def document_view(self, request, object_id, fmt):
        invoice = self.get_queryset(request).select_related("merchant").filter(pk=object_id).first()
        if invoice is None or not self.has_view_permission(request, invoice):
            raise Http404("La factura no existe.")
        try:
            return document_response(invoice, fmt)
        except PdfNotReady as exc:
            return pdf_pending_response(request, invoice, exc)

    @admin.display(description="Documentos")
    def document_links(self, obj):
        if obj is None or obj.pk is None or not is_downloadable(obj):
            return "Disponibles cuando la factura esté timbrada."
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_document"
        links = [(reverse(name, args=(obj.pk, fmt)), label) for fmt, label in
                 (("xml", "Descargar XML"), ("pdf", "Descargar PDF"), ("zip", "Descargar ZIP"))]
        return format_html(
            '<span class="invoice-documents">{}</span>',
            format_html_join(" · ", '<a class="button" href="{}">{}</a>', links),
        )

    @admin.action(description="Reenviar por correo al receptor", permissions=["resend"])
    def resend_email(self, request, queryset):
        # Queued, not sent here: the PDF may have to be rendered first, which takes long for a large invoice.
        queued = 0
        for invoice in queryset.filter(status__in=DOWNLOADABLE):
            if not invoice.receptor_emails:
                self.message_user(request, f"{invoice}: no tiene correos del receptor.", messages.WARNING)
                continue
            invoice_email_resend_enqueue(invoice=invoice, actor=request.user.get_username())
            queued += 1
        not_stamped = queryset.exclude(status__in=DOWNLOADABLE).count()
        if not_stamped:
            self.message_user(request, f"{not_stamped} factura(s) sin timbrar no se enviaron.", messages.WARNING)
        if queued:
            self.message_user(request, f"Se reenviarán {queued} factura(s) por correo en unos momentos.",
                              messages.SUCCESS)
