"""Money arithmetic for CFDI: Decimal only, one rounding helper, SAT's tolerance windows (RULES.md §1.6)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal

ZERO = Decimal("0")
CENT = Decimal("0.01")
_EXP = {n: Decimal(1).scaleb(-n) for n in range(0, 7)}
_TINY = Decimal("1e-12")


class MoneyError(ValueError):
    """An amount that cannot be represented in a CFDI (message in Spanish for the user)."""


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Accept Decimal, int or str; never float (a float has already lost the cents)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("Use Decimal or str for money, never float or bool")
    return Decimal(value)


def round_money(value: Decimal, places: int = 2) -> Decimal:
    """The one rounding rule of the engine: half-up to ``places`` decimals (SAT's "redondeo")."""
    return value.quantize(_EXP[places], rounding=ROUND_HALF_UP)


def decimals_of(value: Decimal) -> int:
    """Number of decimals as written (``Decimal('1.50')`` has 2): SAT's limits depend on it."""
    exp = value.as_tuple().exponent
    return -exp if isinstance(exp, int) and exp < 0 else 0


def trunc_to(value: Decimal, places: int) -> Decimal:
    return value.quantize(_EXP[places], rounding=ROUND_DOWN)


def ceil_to(value: Decimal, places: int) -> Decimal:
    return value.quantize(_EXP[places], rounding=ROUND_CEILING)


def importe_limits(cantidad: Decimal, valor_unitario: Decimal, places: int) -> tuple[Decimal, Decimal]:
    """Anexo 20 window for Concepto/@Importe = Cantidad × ValorUnitario (CFDI40167)."""
    hq = _EXP[min(decimals_of(cantidad), 6)] / 2
    hv = _EXP[min(decimals_of(valor_unitario), 6)] / 2
    inf = (cantidad - hq) * (valor_unitario - hv)
    sup = (cantidad + hq - _TINY) * (valor_unitario + hv - _TINY)
    return trunc_to(inf, places), ceil_to(sup, places)


def tax_limits(base: Decimal, rate: Decimal, places: int) -> tuple[Decimal, Decimal]:
    """Anexo 20 window for a concept's Traslado/Retencion Importe = Base × TasaOCuota (CFDI40180)."""
    hb = _EXP[min(decimals_of(base), 6)] / 2
    inf = (base - hb) * rate
    sup = (base + hb - _TINY) * rate
    return trunc_to(max(inf, ZERO), places), ceil_to(sup, places)


def fmt(value: Decimal) -> str:
    """Plain notation as SAT's patterns expect (no exponent)."""
    return format(value, "f")


def fmt_rate(value: Decimal) -> str:
    return format(value.quantize(_EXP[6]), "f")


@dataclass(frozen=True, slots=True)
class Amounts:
    """A document's money summary; refuses to exist when the parts do not add up to the total."""

    subtotal: Decimal
    discount: Decimal
    transferred: Decimal
    withheld: Decimal
    total: Decimal

    def __post_init__(self) -> None:
        expected = self.subtotal - self.discount + self.transferred - self.withheld
        if expected != self.total:
            raise MoneyError(
                f"El total {fmt(self.total)} no es igual al subtotal {fmt(self.subtotal)} menos descuento "
                f"{fmt(self.discount)} más impuestos trasladados {fmt(self.transferred)} menos retenidos "
                f"{fmt(self.withheld)} (= {fmt(expected)})."
            )
