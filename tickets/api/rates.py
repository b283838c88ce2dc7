"""The merchant's exchange-rate table over the API (tickets scope): list and record daily rates."""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from infra.api.schema import TAG_RATES, error, error_example
from infra.errors import InvalidInput
from tickets.api import examples as ex
from tickets.api.serializers import CURRENCY_PATTERN
from tickets.api.views import TicketsView
from tickets.exchange_rates import ExchangeRate
from tickets.services import exchange_rate_set

MAX_LIMIT = 500


class ExchangeRateIn(serializers.Serializer):
    currency = serializers.RegexField(CURRENCY_PATTERN, help_text="Clave de una moneda extranjera del catálogo "
                                      "c_Moneda del SAT (no MXN, XXX ni XTS), p. ej. USD o EUR; mayúsculas o "
                                      "minúsculas.")
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
    @extend_schema(operation_id="exchange_rates_list", summary="Tipos de cambio del comercio", tags=[TAG_RATES],
                   description="Del más reciente al más antiguo.",
                   parameters=[OpenApiParameter("currency", OpenApiTypes.STR, pattern=CURRENCY_PATTERN,
                                                description="Clave de c_Moneda, p. ej. USD"),
                               OpenApiParameter("limit", OpenApiTypes.INT, description=f"1 a {MAX_LIMIT} (100 por "
                                                                                       "omisión)")],
                   responses={200: ExchangeRateListOut},
                   examples=[OpenApiExample("Tabla", value=ex.RATES_LIST, response_only=True)])
    def get(self, request):
        qs = ExchangeRate.objects.filter(merchant=self.merchant)
        currency = request.query_params.get("currency")
        if currency:
            if not re.fullmatch(CURRENCY_PATTERN, currency):
                raise InvalidInput(details={"currency": ["Clave de c_Moneda de tres letras, p. ej. USD."]})
            qs = qs.filter(currency=currency.upper())
        raw = request.query_params.get("limit") or "100"  # empty means absent, as everywhere in the API
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
            raise InvalidInput(details={"limit": [f"Entero de 1 a {MAX_LIMIT}."]})
        rows = qs.order_by("-valid_from", "currency")[:int(raw)]
        return Response({"results": [_out(r) for r in rows]})

    @extend_schema(
        operation_id="exchange_rates_set", summary="Registrar (o corregir) un tipo de cambio", tags=[TAG_RATES],
        description="201 si es nuevo; 200 si corrige el de esa moneda y fecha.", request=ExchangeRateIn,
        responses={201: ExchangeRateOut, 200: ExchangeRateOut,
                   400: error("Moneda, fecha o tipo inválidos.", error_example(
                       "validation_error", "Hay datos inválidos en la solicitud.",
                       {"currency": ["«MXN» no es una moneda extranjera del catálogo c_Moneda del SAT."]}))},
        examples=[OpenApiExample("FIX", request_only=True,
                                 value={"currency": "USD", "valid_from": "2026-06-01", "rate": "17.250300"}),
                  OpenApiExample("Registrado", response_only=True, status_codes=["201", "200"],
                                 value={"currency": "USD", "valid_from": "2026-06-01", "rate": "17.250300",
                                        "source": "dof_fix"})])
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise InvalidInput("El cuerpo debe ser un objeto {currency, valid_from, rate}.")
        # Shape first, as the schema states it (the service judges the values): texts, and a known source.
        wrong = {name: ["Tipo inválido: se espera texto."] for name in ("currency", "valid_from", "rate", "source")
                 if name in data and not isinstance(data[name], str)}
        if "source" in data and "source" not in wrong and data["source"] not in ExchangeRate.Source.values:
            wrong["source"] = [f"Valores: {', '.join(ExchangeRate.Source.values)}."]
        if wrong:
            raise InvalidInput(details=wrong)
        row, created = exchange_rate_set(merchant=self.merchant, currency=data.get("currency"),
                                         valid_from=data.get("valid_from"), rate=data.get("rate"),
                                         source=data.get("source") or ExchangeRate.Source.DOF_FIX, actor=self.actor)
        return Response(_out(row), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
