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
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.api.parsers import CappedMultiPartParser, TicketJSONParser
from infra.api.schema import (
    TAG_BATCHES,
    TAG_TICKETS,
    content_disposition,
    error,
    error_example,
    location,
    path_id,
    retry_after,
)
from infra.errors import InvalidInput, NotFound, PayloadTooLarge
from tickets import services
from tickets.api import examples as ex
from tickets.api import serializers as s
from tickets.models import Batch, Ticket

TICKET_ID = path_id("id", "Id del ticket (el «id» de su registro).")
INVALID_TICKET = error_example(
    "invalid_ticket", "El ticket tiene datos inválidos.",
    {"total": ["El total (100.00) no coincide con la suma de las partidas menos descuentos (163.50): difiere -63.50."]})


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
        operation_id="tickets_create", summary="Registrar un ticket", tags=[TAG_TICKETS], request=s.TicketIn,
        description="Guarda la venta y responde con su liga de autofacturación (`self_invoice_url`: imprímela como "
                    "QR en el ticket) y su plazo (`expires_at`). Reenviar el mismo ticket (misma sucursal, número y "
                    "datos) responde 200 con el guardado, así que un reintento tras un corte de red es seguro; el "
                    "mismo número con otros datos es 409 `ticket_conflict`.",
        responses={
            201: OpenApiResponse(s.TicketOut, description="Ticket guardado."),
            200: OpenApiResponse(s.TicketOut, description="Reenvío idéntico: el ticket ya guardado."),
            400: error("Datos inválidos: `details` por campo.", INVALID_TICKET),
            409: error("Ya existe ese número en la sucursal con otros datos.", error_example(
                "ticket_conflict", "Ya existe el ticket A-000123 de la sucursal CENTRO con datos distintos (total).",
                {"fields": ["total"], "ticket_id": 5012})),
        },
        examples=[
            OpenApiExample("Ticket con renglones", value=ex.TICKET_IN, request_only=True),
            OpenApiExample("Ticket en dólares", value=ex.TICKET_IN_USD, request_only=True),
            OpenApiExample("Ticket como CFDI", request_only=True,
                           value={"branch": "CENTRO", "number": "A-000124",
                                  "document": "PD94bWwgdmVyc2lvbj0iMS4wIiBlbmNvZGluZz0iVVRGLTgiPz4K"}),
            OpenApiExample("Guardado", value=ex.TICKET_OUT, response_only=True, status_codes=["201", "200"]),
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
        operation_id="tickets_list", summary="Buscar tickets", tags=[TAG_TICKETS], parameters=[s.TicketQuery],
        description="Del más reciente al más antiguo. `count` y `total_amount` son de todos los que cumplen el "
                    "filtro; `results`, de la página (`limit`, `offset`).",
        responses={200: s.TicketListOut},
        examples=[OpenApiExample("Página", value=ex.TICKET_LIST, response_only=True)],
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
        operation_id="batches_create", summary="Registrar un lote (JSON hasta 10,000 tickets, o ZIP)", tags=[TAG_BATCHES],
        request={"application/json": s.BatchIn,
                 "multipart/form-data": OpenApiRequest(s.BatchZipIn, encoding={"file": {"contentType": "application/zip"}})},
        parameters=[location(202), retry_after(409, description="Segundos hasta que conviene volver a consultar el "
                                                                 "lote en proceso.")],
        responses={
            200: OpenApiResponse(s.BatchOut, description="Procesado: todos creados o duplicados."),
            207: OpenApiResponse(s.BatchOut, description="Procesado con tickets rechazados, o detenido por un error "
                                                         "(status failed: reenvía el mismo batch_id)."),
            202: OpenApiResponse(s.BatchOut, description="Lote grande: se procesa en segundo plano; consulta `url` "
                                                         "(también en Location)."),
            400: error("El lote no se puede leer (sin tickets, ZIP dañado, más tickets de los admitidos).",
                       error_example("validation_error", "Hay datos inválidos en la solicitud.",
                                     {"tickets": ["Envía una lista con al menos un ticket."]})),
            409: OpenApiResponse(s.ErrorEnvelope, description="Ese batch_id todavía se está procesando; Retry-After "
                                                              "dice cuándo volver a consultar.", examples=[
                error_example("batch_in_progress",
                              "El lote «2026-05-31-CENTRO-2» todavía se está procesando (3,000 de 8,000 tickets). "
                              "Consulta su avance en /api/v1/batches/2026-05-31-CENTRO-2; reenvíalo solo si "
                              "termina con error.",
                              {"batch_id": ["2026-05-31-CENTRO-2"], "status": "processing", "processed_count": 3000,
                               "total_count": 8000})]),
            413: error("El cuerpo o el ZIP exceden el máximo, o el ZIP se expande demasiado.", error_example(
                "zip_too_large", "El ZIP pesa más de 64 MB.")),
            422: error("Ese batch_id ya se recibió y terminó.", error_example(
                "batch_already_received",
                "El lote «2026-05-31-CENTRO-1» ya se recibió el 2026-05-31 22:00; usa otro batch_id.",
                {"batch_id": ["2026-05-31-CENTRO-1"]})),
        },
        examples=[
            OpenApiExample("Lote JSON", request_only=True, media_type="application/json",
                           value={"batch_id": "2026-05-31-CENTRO-1", "tickets": [ex.TICKET_IN]}),
            OpenApiExample("Lote ZIP", request_only=True, media_type="multipart/form-data",
                           value={"batchId": "2026-05-31-CENTRO-1", "file": "(archivo tickets.zip)"}),
            OpenApiExample("Todos guardados", response_only=True, status_codes=["200"], value=ex.BATCH_DONE),
            OpenApiExample("Con rechazados", response_only=True, status_codes=["207"], value=ex.BATCH_OUT),
            OpenApiExample("En segundo plano", response_only=True, status_codes=["202"], value={
                **ex.BATCH_PROCESSING, "status": "received", "processed_count": 0, "created_count": 0,
                "duplicate_count": 0, "progress": 0.0}),
        ],
        description="Un ticket malo nunca rechaza a los buenos: el resultado de cada uno está en `report`. Un "
                    "`batch_id` ya terminado se rechaza (422); uno que sigue en proceso, 409 con Retry-After. "
                    "Uno que terminó en `failed` (o cuyo proceso se abandonó) se puede reenviar con el mismo "
                    "`batch_id` para terminarlo: los tickets ya guardados responden `duplicate` con su id y se "
                    "guardan los demás. El ZIP va en el campo `file[0]` (o `file`) con `batchId`.",
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
                   tags=[TAG_TICKETS], responses={200: s.TicketOut},
                   examples=[OpenApiExample("Facturado", value=ex.TICKET_INVOICED, response_only=True)])
    def get(self, request, pk: str):
        ticket = services.merchant_ticket(merchant=self.merchant, ticket_id=pk)
        ticket.merchant = self.merchant
        return Response(s.ticket_detail(ticket))


class TicketValidate(TicketsView):
    @extend_schema(
        operation_id="tickets_validate", summary="¿Se puede autofacturar? Y si no, por qué", tags=[TAG_TICKETS],
        parameters=[s.ValidateQuery], responses={200: s.ValidationOut},
        description="La misma regla que el portal y la facturación. `code`: `ok`, `globalized_late`, `void`, "
                    "`invoiced`, `expired`, `globalized`, o de la búsqueda: `not_found`, `ambiguous`, "
                    "`total_mismatch`, `date_mismatch`.",
        examples=[
            OpenApiExample("Se puede", response_only=True, value={
                "can_self_invoice": True, "code": "ok", "message": "El ticket A-000123 se puede facturar.",
                "ticket": ex.TICKET_SUMMARY}),
            OpenApiExample("Total distinto", response_only=True, value={
                "can_self_invoice": False, "code": "total_mismatch", "message": "El total no coincide con el ticket.",
                "ticket": None}),
        ],
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
    @extend_schema(
        operation_id="tickets_expire", parameters=[TICKET_ID], summary="Terminar ya el plazo de autofacturación",
        description="El ticket ya no se puede autofacturar; sigue entrando en la factura global.",
        tags=[TAG_TICKETS], request=None,
        responses={200: s.TicketOut, 409: error("El ticket ya no está abierto.", error_example(
            "ticket_not_expirable", "El ticket ya fue facturado: su plazo ya no aplica.", {"status": "invoiced"}))},
        examples=[OpenApiExample("Plazo terminado", response_only=True, value={
            **ex.TICKET_OUT, "expires_at": "2026-05-31T18:02:11-06:00", "can_self_invoice": False})],
    )
    def post(self, request, pk: str):
        ticket = services.ticket_expire(merchant=self.merchant, ticket_id=pk, actor=self.actor)
        ticket.merchant = self.merchant
        return Response(s.ticket_detail(ticket))


class TicketVoid(TicketsView):
    @extend_schema(
        operation_id="tickets_void", parameters=[TICKET_ID], summary="Cancelar el ticket (devolución o venta cancelada)",
        description="Queda fuera de toda factura. Repetirlo no cambia nada (200). Se rechaza (409) si ya se "
                    "facturó o está en una global.",
        tags=[TAG_TICKETS], request=s.VoidIn,
        responses={200: s.TicketOut, 409: error("Facturado o en una factura global.", error_example(
            "ticket_not_voidable", "El ticket ya fue facturado: cancela la factura en lugar del ticket.",
            {"status": "invoiced"}))},
        examples=[OpenApiExample("Devolución", request_only=True, value={"reason": "Devolución en caja"}),
                  OpenApiExample("Cancelado", response_only=True, value={
                      **ex.TICKET_OUT, "status": "void", "can_self_invoice": False})],
    )
    def post(self, request, pk: str):
        reason = request.data.get("reason", "") if isinstance(request.data, dict) else ""
        if not isinstance(reason, str) or len(reason) > 500:
            raise InvalidInput(details={"reason": ["Texto de hasta 500 caracteres."]})
        ticket = services.ticket_void(merchant=self.merchant, ticket_id=pk, actor=self.actor, reason=reason)
        ticket.merchant = self.merchant
        return Response(s.ticket_detail(ticket))


BATCH_ID = OpenApiParameter("batch_id", OpenApiTypes.STR, OpenApiParameter.PATH,
                            description="El batch_id que envió el punto de venta.")


def _merchant_batch(merchant, batch_id: str) -> Batch:
    batch = Batch.objects.filter(merchant=merchant, batch_id=batch_id).first()
    if batch is None:
        raise NotFound("No existe ese lote en tu comercio.", code="batch_not_found")
    batch.merchant = merchant
    return batch


class BatchDetail(TicketsView):
    @extend_schema(operation_id="batches_retrieve", summary="Avance y resultado por ticket de un lote",
                   tags=[TAG_BATCHES], parameters=[BATCH_ID], responses={200: s.BatchOut},
                   examples=[OpenApiExample("Terminado", response_only=True, value=ex.BATCH_OUT),
                             OpenApiExample("En proceso", response_only=True, value=ex.BATCH_PROCESSING)])
    def get(self, request, batch_id: str):
        return Response(s.batch_out(_merchant_batch(self.merchant, batch_id)))


CSV_COLUMNS = ["index", "file", "ref_id", "branch", "number", "status", "ticket_id", "code", "errors",
               "warnings", "self_invoice_url", "expires_at"]


class BatchReportCsv(TicketsView):
    @extend_schema(operation_id="batches_report_csv", summary="Resultado por ticket en CSV (hojas de cálculo)",
                   description="UTF-8 con BOM (Excel lo abre con acentos), una fila por ticket del lote.",
                   tags=[TAG_BATCHES], parameters=[BATCH_ID, content_disposition(200)],
                   responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, examples=[
                       OpenApiExample("Reporte", value=ex.BATCH_CSV, media_type="text/csv")])})
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



