"""A merchant's daily exchange rates (e.g. Banco de México's FIX as published in the DOF), for tickets in a
foreign currency whose POS does not send the rate.

Which rate a sale uses (CFF art. 20, 3rd paragraph): the one published in the DOF the day *before* the sale;
on days without publication, the last one published before. The merchant records each rate with the first
local date it applies to (``valid_from``: for the FIX, the day after its publication) and the rate of a sale
is the latest row with ``valid_from`` on or before the sale's local date, at most ``MAX_AGE_DAYS`` old (a
long weekend or a holiday bridge, never a forgotten table). No such row: the ticket is refused at ingestion,
never accepted and failed at stamping.

Imported at the bottom of tickets/models.py so Django registers the model in the tickets app.
"""

from __future__ import annotations

import bisect
import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

MAX_AGE_DAYS = 7


def validate_currency(value: str) -> None:
    from invoicing.cfdi.catalogs import moneda

    row = moneda(value)
    if row is None or value in ("MXN", "XXX", "XTS"):
        raise ValidationError(f"«{value}» no es una moneda extranjera del catálogo c_Moneda del SAT.")


class ExchangeRate(models.Model):
    class Source(models.TextChoices):
        DOF_FIX = "dof_fix", "FIX publicado en el DOF (Banco de México)"
        OTHER = "other", "Otro"

    merchant = models.ForeignKey("tickets.Merchant", on_delete=models.CASCADE, related_name="exchange_rates")
    currency = models.CharField("moneda", max_length=3, validators=[validate_currency])
    valid_from = models.DateField(
        "aplica desde", help_text="Primer día (hora local de la sucursal) de las ventas a las que aplica. Para el FIX "
                                  "del DOF, el día siguiente a su publicación (CFF art. 20).")
    rate = models.DecimalField("pesos por unidad", max_digits=18, decimal_places=6,
                               validators=[MinValueValidator(Decimal("0.000001"))])
    source = models.CharField("fuente", max_length=10, choices=Source, default=Source.DOF_FIX)
    created_at = models.DateTimeField("registrado", auto_now_add=True)
    updated_at = models.DateTimeField("actualizado", auto_now=True)

    class Meta:
        verbose_name = "tipo de cambio"
        verbose_name_plural = "tipos de cambio"
        constraints = [models.UniqueConstraint(fields=["merchant", "currency", "valid_from"],
                                               name="exchange_rate_unique_per_day")]
        ordering = ["-valid_from", "currency"]

    def __str__(self):
        return f"{self.currency} {self.rate} desde {self.valid_from:%d/%m/%Y}"


class RateBook:
    """The merchant's rates, loaded once per currency (a batch asks thousands of times)."""

    def __init__(self, merchant_id: int):
        self.merchant_id = merchant_id
        self._by_currency: dict[str, tuple[list[dt.date], list[Decimal]]] = {}

    def _load(self, currency: str) -> tuple[list[dt.date], list[Decimal]]:
        hit = self._by_currency.get(currency)
        if hit is None:
            rows = list(ExchangeRate.objects.filter(merchant_id=self.merchant_id, currency=currency)
                        .order_by("valid_from").values_list("valid_from", "rate"))
            hit = self._by_currency[currency] = ([d for d, _ in rows], [r for _, r in rows])
        return hit

    def rate_for(self, currency: str, day: dt.date) -> tuple[Decimal, dt.date] | None:
        """(rate, valid_from) for a sale on local ``day``, or None."""
        days, rates = self._load(currency)
        i = bisect.bisect_right(days, day) - 1
        if i < 0 or (day - days[i]).days > MAX_AGE_DAYS:
            return None
        return rates[i], days[i]


def exchange_rate_for(*, merchant_id: int, currency: str, day: dt.date) -> Decimal | None:
    found = RateBook(merchant_id).rate_for(currency, day)
    return found[0] if found else None
