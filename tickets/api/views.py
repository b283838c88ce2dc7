"""POS REST API for tickets: one small view per operation; each calls a service from tickets.services.

Everything is scoped to the API key's merchant: another merchant's ticket or batch is a plain 404.
"""

from __future__ import annotations

import csv
import gc
import io

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.api.parsers import CappedMultiPartParser, TicketJSONParser
from infra.errors import InvalidInput, NotFound, PayloadTooLarge
from tickets import services
from tickets.api import serializers as s
from tickets.models import Batch, Ticket


def _errors(*codes: int) -> dict:
    texts = {
        400: "Datos inválidos (details: por campo)", 401: "Falta la llave de API o no es válida",
        403: "La llave no tiene el permiso", 404: "No existe (o es de otro comercio)",
        409: "Conflicto con el estado actual", 413: "Contenido demasiado grande",
        415: "Tipo de contenido no admitido", 422: "No se puede procesar", 429: "Demasiadas solicitudes (Retry-After)",
    }
    return {c: OpenApiResponse(s.ErrorEnvelope, description=texts[c]) for c in codes}


COMMON = (400, 401, 403, 404, 429)
TICKET_ID = OpenApiParameter("pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="Id del ticket.")
TICKET_EXAMPLE = {
    "branch": "CENTRO",
    "number": "A-000123",
    "sold_at": "2026-05-31T13:45:00-06:00",
    "payment_form": "04",
    "total": "163.50",
    "lines": [
        {"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO DE COLA 600 ML",
         "quantity": "2", "unit_price": "22.00", "tax_object": "02",
         "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]},
        {"product_code": "50181900", "unit_code": "H87", "description": "PAN BLANCO CAJA",
         "quantity": "1", "unit_price": "48.50", "tax_object": "02",
         "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.000000"}]},
        {"product_code": "14111514", "unit_code": "H87", "description": "CUADERNO PROFESIONAL",
         "quantity": "1", "unit_price": "71.00", "discount": "0.00", "tax_object": "02",
         "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]},
    ],
}
ERROR_EXAMPLE = OpenApiExample(
    "Error", status_codes=["400"], response_only=True,
    value={"error": {"code": "invalid_ticket", "message": "El ticket tiene datos inválidos.",
                     "details": {"total": ["El total del ticket A-1 (100.00) no coincide con la suma de sus partidas "
                                           "menos descuentos (163.50)."]}}},
)


class TicketsView(APIView):
    permission_classes = [HasScope("tickets")]
    parser_classes = [TicketJSONParser]

    @property
    def merchant(self):
        return self.request.auth.merchant

    @property
    def actor(self) -> str:
        return f"api:{self.request.auth.prefix}"

    @property
    def key_branch(self):
        """The API key's branch (a POS belongs to one), if the key names one of its own merchant's."""
        key = self.request.auth
        if key.branch_id is None:
            return None
        branch = key.branch
        return branch if branch.merchant_id == key.merchant_id else None


def _query(serializer_class, request):
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class TicketCollection(TicketsView):
    @extend_schema(
        operation_id="tickets_create", summary="Registrar un ticket", tags=["tickets"], request=s.TicketIn,
        responses={201: s.TicketOut, 200: OpenApiResponse(s.TicketOut, description="Reenvío idéntico: el guardado"),
                   **_errors(400, 401, 403, 409, 413, 415, 429)},
        examples=[
            OpenApiExample("Ticket con renglones", value=TICKET_EXAMPLE, request_only=True),
            OpenApiExample("Ticket como CFDI", request_only=True,
                           value={"branch": "CENTRO", "number": "A-000124", "document": "PD94bWwgdmVyc2lvbj0i…"}),
            OpenApiExample("Conflicto", status_codes=["409"], response_only=True, value={"error": {
                "code": "ticket_conflict",
                "message": "Ya existe el ticket A-000123 de la sucursal CENTRO con datos distintos (total).",
                "details": {"fields": ["total"], "ticket_id": 42}}}),
            ERROR_EXAMPLE,
        ],
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise InvalidInput("El cuerpo debe ser un objeto JSON con un ticket.", code="invalid_ticket")
        reg = services.ticket_register(merchant=self.merchant, payload=request.data, actor=self.actor,
                                       default_branch=self.key_branch)
        ticket = Ticket.objects.select_related("branch", "merchant").get(pk=reg.ticket.pk)
        body = s.ticket_detail(ticket)
        if reg.entry.get("warnings"):
            body["warnings"] = reg.entry["warnings"]
        return Response(body, status=status.HTTP_201_CREATED if reg.created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="tickets_list", summary="Buscar tickets", tags=["tickets"], parameters=[s.TicketQuery],
        responses={200: s.TicketListOut, **_errors(*COMMON)},
    )
    def get(self, request):
        q = _query(s.TicketQuery, request)
        qs = Ticket.objects.filter(merchant=self.merchant)
        if q.get("number"):
            qs = qs.filter(number=q["number"])
        if q.get("branch"):
            qs = qs.filter(branch__code=q["branch"])
        if q.get("status"):
            qs = qs.filter(status=q["status"])
        if q.get("sold_from"):
            qs = qs.filter(sold_at__gte=q["sold_from"])
        if q.get("sold_to"):
            qs = qs.filter(sold_at__lte=q["sold_to"])
        if q.get("invoiced") is True:
            qs = qs.filter(status=Ticket.Status.INVOICED)
        elif q.get("invoiced") is False:
            qs = qs.exclude(status=Ticket.Status.INVOICED)
        totals = qs.aggregate(count=Count("id"), amount=Sum("total"))
        limit, offset = q["limit"], q["offset"]
        page = qs.select_related("branch", "merchant").order_by("-sold_at", "-id")[offset:offset + limit]
        return Response({
            "count": totals["count"],
            "total_amount": f"{totals['amount'] or 0:.2f}",
            "limit": limit,
            "offset": offset,
            "results": [s.ticket_summary(t) for t in page],
        })


class TicketBatchView(TicketsView):
    parser_classes = [TicketJSONParser, CappedMultiPartParser]

    def dispatch(self, request, *args, **kwargs):
        # 10,000 parsed tickets are ~10^6 objects without cycles: a full collection in the middle of a batch
        # costs more than the batch's own work. Collect as usual once the answer is built.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    @extend_schema(
        operation_id="tickets_batch", summary="Registrar un lote (JSON hasta 10,000 tickets, o ZIP)", tags=["tickets"],
        request={"application/json": s.BatchIn, "multipart/form-data": s.BatchZipIn},
        responses={
            200: OpenApiResponse(s.BatchOut, description="Procesado: todos creados o duplicados"),
            207: OpenApiResponse(s.BatchOut, description="Procesado con tickets rechazados, o detenido por un error "
                                                         "(status failed: reenvía el mismo batch_id)"),
            202: OpenApiResponse(s.BatchOut, description="Lote grande: se procesa en segundo plano; consulta url"),
            **_errors(400, 401, 403, 409, 413, 415, 422, 429),
        },
        examples=[
            OpenApiExample("Lote JSON", request_only=True, media_type="application/json",
                           value={"batch_id": "2026-05-31-CENTRO-1", "tickets": [TICKET_EXAMPLE]}),
            OpenApiExample("Lote repetido", status_codes=["422"], response_only=True, value={"error": {
                "code": "batch_already_received",
                "message": "El lote «2026-05-31-CENTRO-1» ya se recibió el 2026-05-31 14:00; usa otro batch_id.",
                "details": {"batch_id": ["2026-05-31-CENTRO-1"]}}}),
            OpenApiExample("Lote aún en proceso", status_codes=["409"], response_only=True, value={"error": {
                "code": "batch_in_progress",
                "message": "El lote «2026-05-31-CENTRO-1» todavía se está procesando (3,000 de 8,000 tickets). "
                           "Consulta su avance en /api/v1/batches/2026-05-31-CENTRO-1; reenvíalo solo si termina "
                           "con error.",
                "details": {"batch_id": ["2026-05-31-CENTRO-1"], "status": "processing", "processed_count": 3000,
                            "total_count": 8000}}}),
        ],
        description="Un `batch_id` ya terminado se rechaza (422); uno que sigue en proceso, 409 con Retry-After. "
                    "Uno que terminó en `failed` (o cuyo proceso se abandonó) se puede reenviar con el mismo "
                    "`batch_id` para terminarlo: los tickets ya guardados responden `duplicate` con su id y se "
                    "guardan los demás.",
    )
    def post(self, request):
        data = request.data
        if request.content_type.startswith("multipart/"):
            upload = request.FILES.get("file[0]") or request.FILES.get("file")
            batch_id = data.get("batchId") or data.get("batch_id")
            if upload is None:
                raise InvalidInput(details={"file[0]": ["Adjunta el ZIP en el campo «file[0]»."]})
            if upload.size > settings.API_ZIP_MAX_BYTES:
                raise PayloadTooLarge(f"El ZIP pesa más de {settings.API_ZIP_MAX_BYTES // (1024 * 1024)} MB.",
                                      code="zip_too_large")
            batch = services.batch_submit(merchant=self.merchant, batch_id=batch_id, zip_data=upload.read(),
                                          actor=self.actor, default_branch=self.key_branch)
        else:
            if not isinstance(data, dict):
                raise InvalidInput("El cuerpo debe ser un objeto {batch_id, tickets}.", code="invalid_batch")
            batch = services.batch_submit(merchant=self.merchant, batch_id=data.get("batch_id", data.get("batchId")),
                                          tickets=data.get("tickets"), actor=self.actor,
                                          default_branch=self.key_branch)
        batch.merchant = self.merchant
        body = s.batch_out(batch)
        if batch.status in (Batch.Status.RECEIVED, Batch.Status.PROCESSING):
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})
        failed = batch.status == Batch.Status.FAILED
        return Response(body, status=207 if batch.rejected_count or failed else 200)


class TicketDetail(TicketsView):
    @extend_schema(operation_id="tickets_retrieve", parameters=[TICKET_ID], summary="Un ticket, con sus renglones y facturas",
                   tags=["tickets"], responses={200: s.TicketOut, **_errors(*COMMON)})
    def get(self, request, pk: str):
        ticket = services.merchant_ticket(merchant=self.merchant, ticket_id=pk)
        ticket.merchant = self.merchant
        return Response(s.ticket_detail(ticket))


class TicketValidate(TicketsView):
    @extend_schema(
        operation_id="tickets_validate", summary="¿Se puede autofacturar? Y si no, por qué", tags=["tickets"],
        parameters=[s.ValidateQuery], responses={200: s.ValidationOut, **_errors(*COMMON)},
        examples=[OpenApiExample("Total distinto", response_only=True, value={
            "can_self_invoice": False, "code": "total_mismatch", "message": "El total no coincide con el ticket.",
            "ticket": None})],
    )
    def get(self, request):
        q = _query(s.ValidateQuery, request)
        result = services.ticket_validate(merchant=self.merchant, number=q["number"], total=q.get("total"),
                                          date=q.get("date"), branch_code=q.get("branch"))
        ticket = None
        if result.ticket is not None:
            result.ticket.merchant = self.merchant
            ticket = s.ticket_summary(result.ticket)
        return Response({"can_self_invoice": result.can_self_invoice, "code": result.code,
                         "message": result.message, "ticket": ticket})


class TicketExpire(TicketsView):
    @extend_schema(operation_id="tickets_expire", parameters=[TICKET_ID], summary="Terminar ya el plazo de autofacturación",
                   description="El ticket ya no se puede autofacturar; sigue entrando en la factura global.",
                   tags=["tickets"], request=None, responses={200: s.TicketOut, **_errors(*COMMON, 409)})
    def post(self, request, pk: str):
        ticket = services.ticket_expire(merchant=self.merchant, ticket_id=pk, actor=self.actor)
        ticket.merchant = self.merchant
        return Response(s.ticket_detail(ticket))


class TicketVoid(TicketsView):
    @extend_schema(operation_id="tickets_void", parameters=[TICKET_ID], summary="Cancelar el ticket (devolución o venta cancelada)",
                   description="Queda fuera de toda factura. Se rechaza (409) si ya se facturó o está en una global.",
                   tags=["tickets"], request=s.VoidIn, responses={200: s.TicketOut, **_errors(*COMMON, 409, 415)})
    def post(self, request, pk: str):
        reason = request.data.get("reason", "") if isinstance(request.data, dict) else ""
        if not isinstance(reason, str) or len(reason) > 500:
            raise InvalidInput(details={"reason": ["Texto de hasta 500 caracteres."]})
        ticket = services.ticket_void(merchant=self.merchant, ticket_id=pk, actor=self.actor, reason=reason)
        ticket.merchant = self.merchant
        return Response(s.ticket_detail(ticket))


def _merchant_batch(merchant, batch_id: str) -> Batch:
    batch = Batch.objects.filter(merchant=merchant, batch_id=batch_id).first()
    if batch is None:
        raise NotFound("No existe ese lote en tu comercio.", code="batch_not_found")
    batch.merchant = merchant
    return batch


class BatchDetail(TicketsView):
    @extend_schema(operation_id="batches_retrieve", summary="Avance y resultado por ticket de un lote",
                   tags=["batches"], responses={200: s.BatchOut, **_errors(*COMMON)})
    def get(self, request, batch_id: str):
        return Response(s.batch_out(_merchant_batch(self.merchant, batch_id)))


CSV_COLUMNS = ["index", "file", "ref_id", "branch", "number", "status", "ticket_id", "code", "errors",
               "warnings", "self_invoice_url", "expires_at"]


class BatchReportCsv(TicketsView):
    @extend_schema(operation_id="batches_report_csv", summary="Resultado por ticket en CSV (hojas de cálculo)",
                   tags=["batches"], responses={(200, "text/csv"): OpenApiTypes.STR, **_errors(*COMMON)})
    def get(self, request, batch_id: str):
        batch = _merchant_batch(self.merchant, batch_id)
        out = io.StringIO()
        out.write("\ufeff")  # Excel opens UTF-8 with accents correctly only with a BOM
        writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for entry in batch.report:
            row = dict(entry)
            row["errors"] = " | ".join(f"{k}: {' '.join(v)}" for k, v in (entry.get("errors") or {}).items())
            row["warnings"] = " | ".join(entry.get("warnings") or [])
            writer.writerow(row)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="lote-{batch.batch_id}.csv"'
        return response



