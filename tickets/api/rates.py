"""The merchant's exchange-rate table over the API (tickets scope): list and record daily rates."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from infra.errors import InvalidInput
from tickets.api.views import TicketsView, _errors
from tickets.exchange_rates import ExchangeRate
from tickets.services import exchange_rate_set

MAX_LIMIT = 500


class ExchangeRateIn(serializers.Serializer):
    currency = serializers.CharField(help_text="Clave de c_Moneda, p. ej. USD.")
    valid_from = serializers.DateField(help_text="Primer día (hora local de la sucursal) de las ventas a las que "
                                                 "aplica; para el FIX del DOF, el día siguiente a su publicación.")
    rate = serializers.CharField(help_text="Pesos por unidad, hasta 6 decimales, p. ej. \"17.250300\".")
    source = serializers.ChoiceField(choices=ExchangeRate.Source.choices, required=False)


class ExchangeRateOut(serializers.Serializer):
    currency = serializers.CharField()
    valid_from = serializers.DateField()
    rate = serializers.CharField()
    source = serializers.CharField()


class ExchangeRateListOut(serializers.Serializer):
    results = ExchangeRateOut(many=True)


def _out(row: ExchangeRate) -> dict:
    return {"currency": row.currency, "valid_from": row.valid_from.isoformat(), "rate": f"{row.rate:f}",
            "source": row.source}


class ExchangeRates(TicketsView):
    @extend_schema(operation_id="exchange_rates_list", summary="Tipos de cambio del comercio", tags=["exchange-rates"],
                   parameters=[OpenApiParameter("currency", OpenApiTypes.STR, description="p. ej. USD"),
                               OpenApiParameter("limit", OpenApiTypes.INT)],
                   responses={200: ExchangeRateListOut, **_errors(400, 401, 403, 429)})
    def get(self, request):
        qs = ExchangeRate.objects.filter(merchant=self.merchant)
        currency = request.query_params.get("currency")
        if currency:
            qs = qs.filter(currency=currency.strip().upper()[:3])
        raw = request.query_params.get("limit", "100")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
            raise InvalidInput(details={"limit": [f"Entero de 1 a {MAX_LIMIT}."]})
        rows = qs.order_by("-valid_from", "currency")[:int(raw)]
        return Response({"results": [_out(r) for r in rows]})

    @extend_schema(operation_id="exchange_rates_set", summary="Registrar (o corregir) un tipo de cambio",
                   tags=["exchange-rates"], request=ExchangeRateIn,
                   responses={201: ExchangeRateOut, 200: ExchangeRateOut, **_errors(400, 401, 403, 415, 429)},
                   examples=[OpenApiExample("FIX", request_only=True,
                                            value={"currency": "USD", "valid_from": "2026-05-30", "rate": "17.250300"})])
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise InvalidInput("El cuerpo debe ser un objeto {currency, valid_from, rate}.")
        row, created = exchange_rate_set(merchant=self.merchant, currency=data.get("currency"),
                                         valid_from=data.get("valid_from"), rate=data.get("rate"),
                                         source=data.get("source") or ExchangeRate.Source.DOF_FIX, actor=self.actor)
        return Response(_out(row), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
