"""Invoices API for points of sale and ERPs (scope "invoices"). Views only translate HTTP ↔ services."""

import datetime as dt

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.logcontext import bind
from invoicing.api.params import date_param, int_param
from invoicing.api.serializers import (
    ErrorOut,
    InvoiceCreatedOut,
    InvoiceCreateIn,
    InvoiceOut,
    PdfPendingOut,
    ResendIn,
)
from invoicing.cfdi.rfc import normalize_rfc
from invoicing.downloads import document_response
from invoicing.errors import InvoicingError
from invoicing.lifecycle import LEGAL
from invoicing.models import Cancellation, Invoice
from invoicing.services import ReceptorData, invoice_issue
from invoicing.services.documents import PdfNotReady, invoice_email_resend_enqueue
from invoicing.services.receptor import issues_out, receptor_check

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
LIVE_DOCUMENT = LEGAL


class _InvoicesView(APIView):
    permission_classes = [HasScope("invoices")]

    def merchant_invoices(self, request):
        cancellations = Prefetch("cancellations", queryset=Cancellation.objects.select_related("replacement"))
        return Invoice.objects.filter(merchant=request.auth.merchant).prefetch_related(cancellations)

    def get_invoice(self, request, pk: int) -> Invoice:
        invoice = self.merchant_invoices(request).prefetch_related("ticket_links").filter(pk=pk).first()
        if invoice is None:
            raise InvoicingError("not_found", "No existe esa factura.", status=404)
        bind(invoice_id=invoice.pk)
        return invoice


class InvoiceCollection(_InvoicesView):
    @extend_schema(
        summary="Listar facturas",
        operation_id="v1_invoices_list",
        parameters=[
            OpenApiParameter("status", str, enum=[s for s, _ in Invoice.Status.choices]),
            OpenApiParameter("kind", str, enum=[k for k, _ in Invoice.Kind.choices]),
            OpenApiParameter("uuid", str), OpenApiParameter("rfc", str, description="RFC del receptor"),
            OpenApiParameter("date_from", dt.date), OpenApiParameter("date_to", dt.date),
            OpenApiParameter("limit", int), OpenApiParameter("offset", int),
        ],
        responses={200: InvoiceOut(many=True), 400: ErrorOut},
    )
    def get(self, request):
        qs = self.merchant_invoices(request)
        params = request.query_params
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        if params.get("kind"):
            qs = qs.filter(kind=params["kind"])
        if params.get("uuid"):
            qs = qs.filter(uuid__iexact=params["uuid"].strip()) if _looks_like_uuid(params["uuid"]) else qs.none()
        if params.get("rfc"):
            qs = qs.filter(receptor_rfc=normalize_rfc(params["rfc"]))
        tz = request.auth.merchant.tzinfo
        if date_from := date_param(request, "date_from"):
            qs = qs.filter(created_at__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=tz))
        if date_to := date_param(request, "date_to"):
            qs = qs.filter(created_at__lt=dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz))
        limit = int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        offset = int_param(request, "offset", 0)
        page = qs.order_by("-created_at", "-pk").prefetch_related("ticket_links")[offset:offset + limit]
        return Response({
            "count": qs.count(),
            "limit": limit,
            "offset": offset,
            "results": InvoiceOut(page, many=True, context={"request": request}).data,
        })

    @extend_schema(
        summary="Facturar tickets",
        description="Crea la factura (estado «pending») y la timbra en segundo plano. Con el encabezado "
                    "Idempotency-Key, toda solicitud con esa llave y el mismo cuerpo (tickets y receptor) "
                    "responde 202 con la misma factura, también las que llegan al mismo tiempo; la misma llave "
                    "con otro cuerpo responde 422 `idempotency_key_reused` con `invoice_id` y los campos que "
                    "difieren. Sin llave, un ticket ya facturado responde 409 `ticket_already_invoiced` con "
                    "`ticket_id` e `invoice_id` de la factura que lo tiene.",
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        request=InvoiceCreateIn,
        responses={202: InvoiceCreatedOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    )
    def post(self, request):
        data = InvoiceCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        key = (request.headers.get("Idempotency-Key") or "").strip() or None
        if key and len(key) > 100:
            raise InvoicingError("validation_error", "Idempotency-Key admite hasta 100 caracteres.",
                                 {"Idempotency-Key": ["Máximo 100 caracteres."]}, status=400)
        receptor = ReceptorData(**data.validated_data["receptor"])
        warnings = receptor_check(receptor)  # a bad receptor is a 400 here, with the portal's codes and messages
        invoice = invoice_issue(
            merchant=request.auth.merchant,
            ticket_ids=data.validated_data["ticket_ids"],
            receptor=receptor,
            actor=str(request.user),
            idempotency_key=key,
            enforce_deadline=False,  # the merchant itself may invoice an expired ticket
        )
        invoice = Invoice.objects.prefetch_related("ticket_links").get(pk=invoice.pk)
        context = {"request": request, "warnings": issues_out(warnings)}
        return Response(InvoiceCreatedOut(invoice, context=context).data, status=status.HTTP_202_ACCEPTED)


def _looks_like_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value.strip())
    except ValueError:
        return False
    return True


class InvoiceDetail(_InvoicesView):
    @extend_schema(summary="Consultar una factura", responses={200: InvoiceOut, 404: ErrorOut})
    def get(self, request, pk: int):
        return Response(InvoiceOut(self.get_invoice(request, pk), context={"request": request}).data)


class InvoiceDocument(_InvoicesView):
    @extend_schema(summary="Descargar XML, PDF o ZIP", operation_id="v1_invoices_document",
                   description="El PDF de una factura grande se genera en segundo plano: mientras tanto la "
                               "respuesta es 202 con el encabezado Retry-After (segundos); repite la solicitud.",
                   responses={(200, "application/octet-stream"): bytes, 202: PdfPendingOut, 404: ErrorOut,
                              409: ErrorOut})
    def get(self, request, pk: int, fmt: str):
        invoice = self.get_invoice(request, pk)
        if invoice.status not in LIVE_DOCUMENT:
            raise InvoicingError("not_stamped", "La factura aún no está timbrada.", {"status": invoice.status})
        try:
            return document_response(invoice, fmt)
        except PdfNotReady as exc:
            return Response({"status": "generating", "message": exc.message, "retry_after": exc.retry_after},
                            status=status.HTTP_202_ACCEPTED, headers={"Retry-After": str(exc.retry_after)})


class InvoiceResend(_InvoicesView):
    @extend_schema(summary="Reenviar por correo", request=ResendIn,
                   responses={202: InvoiceOut, 404: ErrorOut, 409: ErrorOut})
    def post(self, request, pk: int):
        invoice = self.get_invoice(request, pk)
        data = ResendIn(data=request.data)
        data.is_valid(raise_exception=True)
        if invoice.status != Invoice.Status.STAMPED:
            raise InvoicingError("not_stamped", "Solo se reenvían facturas timbradas.", {"status": invoice.status})
        emails = data.validated_data.get("emails") or invoice.receptor_emails
        if not emails:
            raise InvoicingError("no_email", "La factura no tiene correo registrado: indica «emails».", status=422)
        invoice_email_resend_enqueue(invoice=invoice, to=list(emails), actor=str(request.user))
        return Response(InvoiceOut(invoice, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
