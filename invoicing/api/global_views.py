"""Factura global API (scope "invoices"): list, detail, issue for a period or for explicit tickets, eligible.

Views only translate HTTP ↔ services (invoicing/services/global_invoice.py); errors use the project's
envelope through InvoicingError.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.api.schema import TAG_GLOBALS, error, error_example, path_id
from infra.api.strict import StrictJsonSerializer
from invoicing.api import examples as ex
from invoicing.api.params import choice_param, int_param
from invoicing.api.serializers import NULLABLE_UUID, InvoiceErrorOut
from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services.global_invoice import global_invoice_issue, global_invoice_preview
from tickets.models import Branch, Ticket
from tickets.zones import zone_name

MAX_LIMIT = 500
MAX_EXPLICIT_TICKETS = 5000


class GlobalIssueIn(StrictJsonSerializer):
    period = serializers.CharField(
        max_length=40, required=False, allow_blank=True,
        help_text="AAAA-MM-DD (el periodo que contiene ese día), AAAA-MM o AAAA-MM-DD..AAAA-MM-DD. Con ticket_ids "
                  "es opcional: se toma el periodo de la venta más antigua.")
    branch = serializers.CharField(max_length=40, required=False, allow_blank=True,
                                   help_text="Clave de sucursal; sin ella, todas (una global por sucursal).")
    ticket_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                       min_length=1, max_length=MAX_EXPLICIT_TICKETS)

    def validate(self, attrs):
        if not attrs.get("period") and not attrs.get("ticket_ids"):
            raise serializers.ValidationError({"period": ["Indica el periodo o la lista de tickets."]})
        return attrs


class GlobalInvoiceOut(serializers.ModelSerializer):
    uuid = serializers.SerializerMethodField()
    branch = serializers.CharField(source="branch.code")
    period = serializers.SerializerMethodField()
    ticket_count = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = ["id", "status", "serie", "folio", "uuid", "branch", "period", "global_periodicity",
                  "global_months", "global_year", "currency", "exchange_rate", "payment_form", "subtotal", "discount",
                  "tax_total",
                  "total", "ticket_count", "issued_at", "stamped_at", "error", "created_at"]

    @extend_schema_field(NULLABLE_UUID)
    def get_uuid(self, obj) -> str | None:
        return str(obj.uuid).upper() if obj.uuid else None

    def get_period(self, obj) -> str | None:
        """AAAA-MM-DD..AAAA-MM-DD: los días (hora local de la sucursal) que cubre."""
        gp = next(iter(obj.global_periods.all()), None)
        return f"{gp.first_day.isoformat()}..{gp.last_day.isoformat()}" if gp else None

    def get_ticket_count(self, obj) -> int:
        return getattr(obj, "n_tickets", None) or obj.ticket_links.count()

    @extend_schema_field(InvoiceErrorOut(allow_null=True))
    def get_error(self, obj) -> dict | None:
        if not obj.last_error_code:
            return None
        return {"code": obj.last_error_code, "message": obj.last_error_message, "permanent": obj.last_error_permanent}


class GlobalInvoiceDetailOut(GlobalInvoiceOut):
    ticket_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True,
                                       help_text="Los tickets que ampara.")

    class Meta(GlobalInvoiceOut.Meta):
        fields = [*GlobalInvoiceOut.Meta.fields, "ticket_ids"]


class GlobalInvoiceListOut(serializers.Serializer):
    count = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    results = GlobalInvoiceOut(many=True)


class ExcludedTicketOut(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    code = serializers.CharField(help_text="ticket_not_found, ticket_already_invoiced, ticket_void, "
                                           "ticket_outside_period, ticket_other_branch, period_not_closed, "
                                           "ticket_with_withholdings, ticket_zero_amount, ticket_busy…")
    message = serializers.CharField()


class LateGlobalOut(serializers.Serializer):
    invoice_id = serializers.IntegerField()
    deadline = serializers.DateTimeField()
    message = serializers.CharField()


class GlobalIssueOut(serializers.Serializer):
    period = serializers.CharField(help_text="AAAA-MM-DD..AAAA-MM-DD")
    label = serializers.CharField(help_text="El periodo en palabras.")
    invoices = GlobalInvoiceOut(many=True, help_text="Las globales creadas (en timbrado); vacía si no había tickets.")
    included = serializers.ListField(child=serializers.IntegerField(),
                                     help_text="Los tickets que entraron.")
    excluded = ExcludedTicketOut(many=True, help_text="Con ticket_ids: los que no entraron y por qué.")
    late = LateGlobalOut(many=True, help_text="Globales emitidas fuera de plazo (regla 2.7.1.21 de la RMF).")


def _globals(merchant):
    from django.db.models import Count

    return (Invoice.objects.filter(merchant=merchant, kind=Invoice.Kind.GLOBAL).select_related("branch")
            .prefetch_related("global_periods").annotate(n_tickets=Count("ticket_links")))


def _branch(merchant, code: str | None) -> Branch | None:
    if not code:
        return None
    branch = Branch.objects.filter(merchant=merchant, code=code.strip()).first()
    if branch is None:
        raise InvoicingError("branch_not_found", f"No existe la sucursal «{code}».", {"branch": ["No existe."]},
                             status=404)
    return branch


class GlobalInvoiceCollection(APIView):
    permission_classes = [HasScope("invoices")]

    @extend_schema(summary="Listar facturas globales", operation_id="global_invoices_list", tags=[TAG_GLOBALS],
                   description="De la más reciente a la más antigua; `count` cuenta todas las que cumplen el filtro.",
                   parameters=[OpenApiParameter("status", str, enum=[s for s, _ in Invoice.Status.choices]),
                               OpenApiParameter("year", int, description="Año del periodo."),
                               OpenApiParameter("limit", int, description=f"Hasta {MAX_LIMIT} (50 por omisión)."),
                               OpenApiParameter("offset", int)],
                   responses={200: GlobalInvoiceListOut},
                   examples=[OpenApiExample("Página", value=ex.GLOBAL_LIST, response_only=True)])
    def get(self, request):
        qs = _globals(request.auth.merchant)
        if request.query_params.get("status"):
            qs = qs.filter(status=choice_param(request, "status", Invoice.Status.values))
        if request.query_params.get("year"):
            qs = qs.filter(global_year=int_param(request, "year", 0))
        limit = int_param(request, "limit", 50, MAX_LIMIT)
        offset = int_param(request, "offset", 0)
        page = qs.order_by("-created_at", "-pk")[offset:offset + limit]
        return Response({"count": qs.count(), "limit": limit, "offset": offset,
                         "results": GlobalInvoiceOut(page, many=True).data})

    @extend_schema(summary="Generar la factura global de un periodo (o de tickets indicados)",
                   description="Toma los tickets abiertos del periodo cerrado (en la hora local de cada sucursal, la "
                               "del huso de su código postal), crea una global por sucursal, moneda y tipo de cambio "
                               "(dividida arriba del tamaño máximo) y la timbra en segundo plano. Con ticket_ids "
                               "responde cuáles entraron y por qué no los demás; «late» lista las emitidas fuera de "
                               "plazo (regla 2.7.1.21 de la RMF).",
                   operation_id="global_invoices_create", tags=[TAG_GLOBALS], request=GlobalIssueIn,
                   responses={201: GlobalIssueOut,
                              200: OpenApiResponse(GlobalIssueOut, description="No había tickets que facturar: nada "
                                                                               "se creó."),
                              404: error("La sucursal o los tickets no existen.", error_example(
                                  "branch_not_found", "No existe la sucursal «NORTE».", {"branch": ["No existe."]})),
                              422: error("El periodo aún no termina o no es válido.", error_example(
                                  "period_not_closed", "El periodo 31 de mayo de 2026 aún no termina: cierra el "
                                                       "01/06/2026 a las 00:00 (hora local de la sucursal).",
                                  {"period": "2026-05-31..2026-05-31"}))},
                   examples=[OpenApiExample("Un día", request_only=True, value={"period": "2026-05-30"}),
                             OpenApiExample("Un mes, una sucursal", request_only=True,
                                            value={"period": "2026-05", "branch": "CENTRO"}),
                             OpenApiExample("Tickets indicados", request_only=True,
                                            value={"ticket_ids": [4990, 4991, 4992]}),
                             OpenApiExample("Creada", response_only=True, status_codes=["201"], value=ex.GLOBAL_ISSUED),
                             OpenApiExample("Tickets indicados, uno fuera y fuera de plazo", response_only=True,
                                            status_codes=["201"], value=ex.GLOBAL_ISSUED_TICKETS),
                             OpenApiExample("Nada que facturar", response_only=True, status_codes=["200"], value={
                                 **ex.GLOBAL_ISSUED, "invoices": []})])
    def post(self, request):
        data = GlobalIssueIn(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = request.auth.merchant
        ticket_ids = data.validated_data.get("ticket_ids")
        period = data.validated_data.get("period") or _period_of_tickets(merchant, ticket_ids)
        result = global_invoice_issue(merchant=merchant, period=period,
                                      branch=_branch(merchant, data.validated_data.get("branch")),
                                      ticket_ids=ticket_ids, actor=str(request.user))
        invoices = _globals(merchant).filter(pk__in=[i.pk for i in result]).order_by("pk")
        return Response({
            "period": result.period.key,
            "label": result.period.label,
            "invoices": GlobalInvoiceOut(invoices, many=True).data,
            "included": result.included,
            "excluded": result.excluded,
            "late": result.late,
        }, status=status.HTTP_201_CREATED if result.invoices else status.HTTP_200_OK)


def _period_of_tickets(merchant, ticket_ids):
    """Without a period: the period (merchant's periodicity) of the earliest of the merchant's listed tickets."""
    from django.utils import timezone

    first = (Ticket.objects.filter(merchant=merchant, pk__in=ticket_ids).order_by("sold_at")
             .values_list("sold_at", "branch__postal_code").first())
    if first is None:
        raise InvoicingError("ticket_not_found", "No encontramos ninguno de los tickets.", status=404)
    import zoneinfo

    zone = zoneinfo.ZoneInfo(zone_name(first[1], merchant.time_zone))  # the sale's local day, in its branch
    return timezone.localtime(first[0], zone).date().isoformat()


def _money(value) -> str:
    return f"{Decimal(value or 0):.2f}"  # SQLite's SUM drops trailing zeros


class EligibleOut(serializers.Serializer):
    class _Branch(serializers.Serializer):
        branch = serializers.CharField()
        postal_code = serializers.CharField()
        count = serializers.IntegerField()
        total = serializers.DecimalField(max_digits=18, decimal_places=2)

    class _PaymentForm(serializers.Serializer):
        payment_form = serializers.CharField()
        total = serializers.DecimalField(max_digits=18, decimal_places=2)

    period = serializers.CharField()
    label = serializers.CharField()
    periodicity = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()
    closed = serializers.BooleanField()
    count = serializers.IntegerField()
    total = serializers.DecimalField(max_digits=18, decimal_places=2)
    subtotal = serializers.DecimalField(max_digits=18, decimal_places=2)
    tax_total = serializers.DecimalField(max_digits=18, decimal_places=2)
    by_branch = _Branch(many=True)
    by_payment_form = _PaymentForm(many=True)


class GlobalInvoiceEligible(APIView):
    permission_classes = [HasScope("invoices")]

    @extend_schema(summary="Tickets elegibles de un periodo: cuántos y por cuánto",
                   operation_id="global_invoices_eligible", tags=[TAG_GLOBALS],
                   responses={200: EligibleOut,
                              404: error("La sucursal no existe.", error_example(
                                  "branch_not_found", "No existe la sucursal «NORTE».", {"branch": ["No existe."]})),
                              422: error("El periodo no se entiende o no va con la periodicidad del comercio.",
                                         error_example(
                                             "invalid_period", "2026-05-30..2026-05-30 no es un periodo mensual; el "
                                                               "que contiene el 30/05/2026 es 2026-05-01..2026-05-31.",
                                             {"period": ["2026-05-30..2026-05-30 no es un periodo mensual; el que "
                                                         "contiene el 30/05/2026 es 2026-05-01..2026-05-31."]}))},
                   parameters=[OpenApiParameter("period", str, required=True,
                                                description="AAAA-MM-DD, AAAA-MM o AAAA-MM-DD..AAAA-MM-DD"),
                               OpenApiParameter("branch", str, description="Clave de sucursal; sin ella, todas.")],
                   examples=[OpenApiExample("Un día", value=ex.GLOBAL_ELIGIBLE, response_only=True)])
    def get(self, request):
        merchant = request.auth.merchant
        period = request.query_params.get("period", "")
        if not period:
            raise InvoicingError("validation_error", "Falta «period».", {"period": ["Obligatorio."]}, status=400)
        preview = global_invoice_preview(merchant=merchant, period=period,
                                         branch=_branch(merchant, request.query_params.get("branch")))
        return Response({
            "period": preview["period"], "label": preview["label"], "periodicity": preview["periodicity"],
            "starts_at": preview["starts_at"], "ends_at": preview["ends_at"], "deadline": preview["deadline"],
            "closed": preview["closed"], "count": preview["count"], "total": _money(preview["total"]),
            "subtotal": _money(preview["subtotal"]), "tax_total": _money(preview["tax_total"]),
            "by_branch": [{"branch": r["branch__code"], "postal_code": r["branch__postal_code"], "count": r["count"],
                           "total": _money(r["total"])} for r in preview["by_branch"]],
            "by_payment_form": [{"payment_form": r["payment_form"], "total": _money(r["total"])}
                                for r in preview["by_payment_form"]],
        })


class GlobalInvoiceDetail(APIView):
    permission_classes = [HasScope("invoices")]

    @extend_schema(summary="Detalle de una factura global", operation_id="global_invoices_retrieve",
                   tags=[TAG_GLOBALS], parameters=[path_id("id", "Id de la factura global.")],
                   responses={200: GlobalInvoiceDetailOut},
                   examples=[OpenApiExample("Timbrada", value=ex.GLOBAL_INVOICE_DETAIL, response_only=True)])
    def get(self, request, pk: int):
        invoice = _globals(request.auth.merchant).filter(pk=pk).first()
        if invoice is None:
            raise InvoicingError("not_found", "No existe esa factura global.", status=404)
        invoice.ticket_ids = list(invoice.ticket_links.order_by("ticket_id").values_list("ticket_id", flat=True))
        return Response(GlobalInvoiceDetailOut(invoice).data)
