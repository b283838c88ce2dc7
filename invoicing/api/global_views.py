"""Factura global API (scope "invoices"): list, detail, issue for a period or for explicit tickets, eligible.

Views only translate HTTP ↔ services (invoicing/services/global_invoice.py); errors use the project's
envelope through InvoicingError.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from invoicing.api.params import int_param
from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services.global_invoice import global_invoice_issue, global_invoice_preview
from tickets.models import Branch, Ticket
from tickets.zones import zone_name

MAX_LIMIT = 500
MAX_EXPLICIT_TICKETS = 5000


class GlobalIssueIn(serializers.Serializer):
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

    def get_uuid(self, obj) -> str | None:
        return str(obj.uuid).upper() if obj.uuid else None

    def get_period(self, obj) -> str | None:
        gp = next(iter(obj.global_periods.all()), None)
        return f"{gp.first_day.isoformat()}..{gp.last_day.isoformat()}" if gp else None

    def get_ticket_count(self, obj) -> int:
        return getattr(obj, "n_tickets", None) or obj.ticket_links.count()

    def get_error(self, obj) -> dict | None:
        if not obj.last_error_code:
            return None
        return {"code": obj.last_error_code, "message": obj.last_error_message, "permanent": obj.last_error_permanent}


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

    @extend_schema(summary="Listar facturas globales",
                   parameters=[OpenApiParameter("status", str), OpenApiParameter("year", int),
                               OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
                   responses={200: GlobalInvoiceOut(many=True)})
    def get(self, request):
        qs = _globals(request.auth.merchant)
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
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
                   request=GlobalIssueIn, responses={201: GlobalInvoiceOut(many=True)})
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

    @extend_schema(summary="Tickets elegibles de un periodo: cuántos y por cuánto", responses={200: EligibleOut},
                   parameters=[OpenApiParameter("period", str, required=True), OpenApiParameter("branch", str)])
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

    @extend_schema(summary="Detalle de una factura global", responses={200: GlobalInvoiceOut})
    def get(self, request, pk: int):
        invoice = _globals(request.auth.merchant).filter(pk=pk).first()
        if invoice is None:
            raise InvoicingError("not_found", "No existe esa factura global.", status=404)
        data = GlobalInvoiceOut(invoice).data
        data["ticket_ids"] = list(invoice.ticket_links.order_by("ticket_id").values_list("ticket_id", flat=True))
        return Response(data)
