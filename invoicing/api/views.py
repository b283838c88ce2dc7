"""Invoices API for points of sale and ERPs (scope "invoices"). Views only translate HTTP ↔ services."""

import datetime as dt

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.api.schema import (
    IDEMPOTENCY_KEY,
    TAG_INVOICES,
    content_disposition,
    error,
    error_example,
    path_id,
    retry_after,
)
from infra.logcontext import bind
from invoicing.api import examples as ex
from invoicing.api.params import choice_param, date_param, int_param
from invoicing.api.serializers import (
    InvoiceCreatedOut,
    InvoiceCreateIn,
    InvoiceListOut,
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
from invoicing.services.schedule import scheduled_invoice_withdraw

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
LIVE_DOCUMENT = LEGAL
BINARY = {"type": "string", "format": "binary"}
INVOICE_ID = path_id("id", "Id de la factura.")
DOCUMENT_FORMAT = OpenApiParameter("fmt", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["xml", "pdf", "zip"],
                                   pattern="^(xml|pdf|zip)$", description="xml, pdf o zip.")


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
        summary="Listar facturas", operation_id="invoices_list", tags=[TAG_INVOICES],
        description="De la más reciente a la más antigua. `count` cuenta todas las que cumplen el filtro; "
                    "`results` es la página (`limit`, `offset`).",
        parameters=[
            OpenApiParameter("status", str, enum=[s for s, _ in Invoice.Status.choices]),
            OpenApiParameter("kind", str, enum=[k for k, _ in Invoice.Kind.choices]),
            OpenApiParameter("uuid", str, description="Folio fiscal; uno que no es un UUID no encuentra nada."),
            OpenApiParameter("rfc", str, description="RFC del receptor, p. ej. CACX7605101P8"),
            OpenApiParameter("date_from", dt.date, description="Creadas desde ese día (hora local del comercio)."),
            OpenApiParameter("date_to", dt.date, description="Creadas hasta ese día, incluido."),
            OpenApiParameter("limit", int, description=f"Hasta {MAX_LIMIT} ({DEFAULT_LIMIT} por omisión)."),
            OpenApiParameter("offset", int, description="Cuántas saltar."),
        ],
        responses={200: InvoiceListOut},
        examples=[OpenApiExample("Página", value=ex.INVOICE_LIST, response_only=True)],
    )
    def get(self, request):
        qs = self.merchant_invoices(request)
        params = request.query_params
        if params.get("status"):
            qs = qs.filter(status=choice_param(request, "status", Invoice.Status.values))
        if params.get("kind"):
            qs = qs.filter(kind=choice_param(request, "kind", Invoice.Kind.values))
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
        summary="Facturar tickets", operation_id="invoices_create", tags=[TAG_INVOICES],
        description="Crea la factura (estado «pending») y la timbra en segundo plano: consulta "
                    "`GET /invoices/{id}` hasta «stamped» (o recibe el webhook `invoice.stamped`). Con el encabezado "
                    "Idempotency-Key, toda solicitud con esa llave y el mismo cuerpo (tickets y receptor) "
                    "responde 202 con la misma factura, también las que llegan al mismo tiempo; la misma llave "
                    "con otro cuerpo responde 422 `idempotency_key_reused` con `invoice_id` y los campos que "
                    "difieren. Sin llave, un ticket ya facturado responde 409 `ticket_already_invoiced` con "
                    "`ticket_id` e `invoice_id` de la factura que lo tiene. El receptor se valida con las reglas "
                    "del SAT al recibirlo (400 `invalid_receptor`), nunca después al timbrar.\n\n"
                    "Emisión programada: con «issue_at» (fecha y hora con zona horaria) la factura queda "
                    "«scheduled»: aparta sus tickets (ni otra factura ni la global los toman) y no tiene folio ni "
                    "CFDI hasta esa hora; entonces recibe su folio y se sella y timbra con las reglas de ese día, "
                    "con Fecha = hora del timbrado (a más tardar un minuto después de «issue_at», salvo que el PAC "
                    "no responda). Antes de su hora se retira con POST /api/v1/invoices/{id}/withdraw. Errores: 400 "
                    "`issue_at_in_past` (más de 5 minutos en el pasado; hasta 5 minutos se emite ya) y 400 "
                    "`issue_at_too_late` (después del plazo de facturación de un ticket, o a menos de una hora del "
                    "límite de 24 h para timbrar la factura global del periodo en que se vendió).",
        parameters=[IDEMPOTENCY_KEY],
        request=InvoiceCreateIn,
        responses={
            202: InvoiceCreatedOut,
            400: error("Datos inválidos o un receptor que el SAT rechazaría (`details.problems`).", error_example(
                "invalid_receptor", "Tu RFC «XYZ» no tiene un formato válido: son 4 letras (persona física) o 3 "
                                    "(persona moral), 6 dígitos de la fecha (AAMMDD) y 3 caracteres de homoclave.",
                {"rfc": ["Tu RFC «XYZ» no tiene un formato válido."],
                 "problems": [{"field": "rfc", "code": "RFC_FORMATO", "message": "Tu RFC «XYZ» no tiene un formato "
                                                                                 "válido."}]})),
            404: error("Algún ticket no existe en tu comercio.", error_example(
                "ticket_not_found", "No encontramos el ticket 9999.", {"ticket_id": 9999})),
            409: error("Un ticket ya está facturado, en una global, cancelado, o en otra solicitud en curso.",
                       error_example("ticket_already_invoiced", "El ticket A-000123 ya fue facturado.",
                                     {"ticket_id": 5012, "invoice_id": 871})),
            422: error("Misma Idempotency-Key con otro cuerpo, monedas mezcladas, demasiados conceptos…",
                       error_example("idempotency_key_reused",
                                     "La llave de idempotencia ya se usó para una factura con otros tickets o con "
                                     "otros datos del receptor.", {"invoice_id": 871, "fields": ["ticket_ids"]})),
        },
        examples=[
            OpenApiExample("Persona física", request_only=True, value={"ticket_ids": [5012], "receptor": ex.RECEPTOR_IN}),
            OpenApiExample("Persona moral", request_only=True, value={"ticket_ids": [5012, 5013], "receptor": {
                "rfc": "EKU9003173C9", "name": "ESCUELA KEMPER URGATE S.A. DE C.V.", "tax_regime": "601",
                "postal_code": "42501", "cfdi_use": "G03", "emails": ["compras@example.com"]}}),
            OpenApiExample("Residente en el extranjero", request_only=True,
                           value={"ticket_ids": [5014], "receptor": ex.FOREIGN_RECEPTOR_IN}),
            OpenApiExample("Recibida", response_only=True, status_codes=["202"], value=ex.INVOICE_CREATED),
            OpenApiExample("Recibida, con aviso", response_only=True, status_codes=["202"],
                           value=ex.INVOICE_CREATED_WARNING),
            OpenApiExample("Emisión programada", request_only=True, value={
                "ticket_ids": [901], "issue_at": "2026-06-01T09:00:00-06:00",
                "receptor": {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612",
                             "postal_code": "36257", "cfdi_use": "G03", "emails": ["xochilt@example.com"]}}),
            OpenApiExample("Programada después del plazo", status_codes=["400"], response_only=True, value={
                "error": {"code": "issue_at_too_late",
                          "message": "No se puede programar la factura para el 05/06/2026 09:00: el plazo para "
                                     "facturar el ticket T-901 termina el 31/05/2026 23:59. Prográmala antes o "
                                     "factúrala ahora (sin issue_at).",
                          "details": {"issue_at": ["2026-06-05T09:00:00-06:00"], "ticket_id": 901,
                                      "latest": "2026-06-01T05:59:59+00:00"}}}),
        ],
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
            issue_at=data.validated_data.get("issue_at"),
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
    @extend_schema(summary="Consultar una factura", operation_id="invoices_retrieve", tags=[TAG_INVOICES],
                   parameters=[INVOICE_ID], responses={200: InvoiceOut},
                   examples=[OpenApiExample("Timbrada", value=ex.INVOICE, response_only=True),
                             OpenApiExample("Por timbrar", value=ex.INVOICE_PENDING, response_only=True),
                             OpenApiExample("Fallida", value=ex.INVOICE_FAILED, response_only=True)])
    def get(self, request, pk: int):
        return Response(InvoiceOut(self.get_invoice(request, pk), context={"request": request}).data)


class InvoiceWithdraw(_InvoicesView):
    @extend_schema(
        summary="Retirar una factura programada",
        operation_id="invoices_withdraw", tags=[TAG_INVOICES], parameters=[INVOICE_ID],
        description="Cancela una factura «scheduled» antes de su hora: pasa a «withdrawn», nunca se emite (sin "
                    "CFDI ni folio) y sus tickets quedan libres para otra factura o la factura global. Errores: "
                    "404 `not_found`; 409 `not_scheduled` si ya no está programada (una factura timbrada se cancela "
                    "ante el SAT con POST …/cancel).",
        request=None,
        responses={200: InvoiceOut,
                   409: error("Ya no está programada.", error_example(
                       "not_scheduled", "Solo se retira una factura programada que aún no se emite; esta está "
                       "«Timbrada». Si ya está timbrada, cancélala ante el SAT.", {"status": "stamped"}))},
        examples=[
            OpenApiExample("Retirada", response_only=True, status_codes=["200"], value={
                "id": 42, "kind": "ingreso", "status": "withdrawn", "serie": "F", "folio": None, "uuid": None,
                "currency": "MXN", "exchange_rate": None, "payment_form": "01", "payment_method": "PUE",
                "subtotal": "100.00", "discount": "0.00", "tax_total": "16.00", "withheld_total": "0.00",
                "total": "116.00", "issued_at": None, "stamped_at": None, "issue_at": "2026-06-01T09:00:00-06:00",
                "pac": "", "attempts": 0,
                "receptor": {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612",
                             "postal_code": "36257", "cfdi_use": "G03", "emails": ["xochilt@example.com"],
                             "foreign_country": "", "foreign_tax_id": ""},
                "ticket_ids": [901], "error": None, "links": {"self": "https://facturas.example.com/api/v1/invoices/42"},
                "cancellation": None, "created_at": "2026-05-30T18:00:00-06:00"}),
            OpenApiExample("Ya no está programada", response_only=True, status_codes=["409"], value={
                "error": {"code": "not_scheduled", "message": "Solo se retira una factura programada que aún no se "
                          "emite; esta está «Timbrada». Si ya está timbrada, cancélala ante el SAT.",
                          "details": {"status": "stamped"}}}),
        ],
    )
    def post(self, request, pk: int):
        scheduled_invoice_withdraw(merchant=request.auth.merchant, invoice_id=pk, actor=str(request.user))
        return Response(InvoiceOut(self.get_invoice(request, pk), context={"request": request}).data)


class InvoiceDocument(_InvoicesView):
    @extend_schema(
        summary="Descargar XML, PDF o ZIP", operation_id="invoices_document", tags=[TAG_INVOICES],
        description="El CFDI timbrado (`xml`, application/xml), su representación impresa (`pdf`, application/pdf) o "
                    "ambos (`zip`, application/zip). El PDF de una factura grande se genera en segundo plano: "
                    "mientras tanto la respuesta es 202 con el encabezado Retry-After (segundos); repite la "
                    "solicitud. Antes de timbrarse: 409 `not_stamped`.",
        parameters=[INVOICE_ID, DOCUMENT_FORMAT, content_disposition(200), retry_after(202)],
        responses={
            (200, "application/xml"): OpenApiResponse(BINARY, description="El documento, como adjunto.", examples=[
                OpenApiExample("CFDI", value=ex.XML_DOCUMENT, media_type="application/xml")]),
            (200, "application/pdf"): OpenApiResponse(BINARY, description="El documento, como adjunto."),
            (200, "application/zip"): OpenApiResponse(BINARY, description="El documento, como adjunto."),
            (202, "application/json"): OpenApiResponse(PdfPendingOut, description="El PDF aún se genera.",
                                 examples=[OpenApiExample("Generando", value=ex.PDF_PENDING)]),
            (409, "application/json"): error("La factura aún no está timbrada (o falló).", error_example(
                "not_stamped", "La factura aún no está timbrada.", {"status": "pending"})),
        },
    )
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
    @extend_schema(
        summary="Reenviar por correo", operation_id="invoices_resend", tags=[TAG_INVOICES],
        description="Encola el envío del XML y el PDF a `emails` o, sin ellos, a los correos del receptor.",
        parameters=[INVOICE_ID], request=ResendIn,
        responses={202: InvoiceOut,
                   409: error("Solo se reenvían facturas timbradas.", error_example(
                       "not_stamped", "Solo se reenvían facturas timbradas.", {"status": "pending"})),
                   422: error("La factura no tiene correo y no se indicó ninguno.", error_example(
                       "no_email", "La factura no tiene correo registrado: indica «emails»."))},
        examples=[OpenApiExample("A contabilidad", request_only=True, value={"emails": ["contabilidad@example.com"]}),
                  OpenApiExample("Encolado", response_only=True, status_codes=["202"], value=ex.INVOICE)],
    )
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
