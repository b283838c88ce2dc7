"""What callers hand to the builder: parties, POS tickets (tax-inclusive prices) and global information."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .catalogs import NOMBRE_PUBLICO_GENERAL, RFC_PUBLICO_GENERAL

IVA = "002"
IEPS = "003"


@dataclass(frozen=True, slots=True)
class Emisor:
    rfc: str
    nombre: str
    regimen_fiscal: str
    fac_atr_adquirente: str | None = None


@dataclass(frozen=True, slots=True)
class Receptor:
    rfc: str
    nombre: str
    domicilio_fiscal: str
    regimen_fiscal: str
    uso_cfdi: str
    residencia_fiscal: str | None = None
    num_reg_id_trib: str | None = None

    @classmethod
    def publico_en_general(cls, lugar_expedicion: str, uso_cfdi: str = "S01") -> Receptor:
        """The generic receptor of a global (and of an egreso related to a global, with G02)."""
        return cls(RFC_PUBLICO_GENERAL, NOMBRE_PUBLICO_GENERAL, lugar_expedicion, "616", uso_cfdi)


@dataclass(frozen=True, slots=True)
class LineTax:
    """A tax the POS charged on a line. ``rate`` is the tasa (0.160000) or the cuota per unit of quantity."""

    impuesto: str
    factor: str = "Tasa"
    rate: Decimal | None = None

    @property
    def key(self) -> tuple[str, str, Decimal | None]:
        return (self.impuesto, self.factor, self.rate)


IVA_16 = LineTax(IVA, "Tasa", Decimal("0.160000"))
IVA_8 = LineTax(IVA, "Tasa", Decimal("0.080000"))
IVA_0 = LineTax(IVA, "Tasa", Decimal("0.000000"))
IVA_EXENTO = LineTax(IVA, "Exento", None)


def ieps_tasa(rate: Decimal | str) -> LineTax:
    return LineTax(IEPS, "Tasa", Decimal(rate).quantize(Decimal("0.000001")))


def ieps_cuota(per_unit: Decimal | str) -> LineTax:
    return LineTax(IEPS, "Cuota", Decimal(per_unit).quantize(Decimal("0.000001")))


@dataclass(frozen=True, slots=True)
class TicketLine:
    """One printed line. Prices and discounts include taxes, exactly as the POS printed them.

    ``amount`` is the printed line amount before discount; when omitted it is round(quantity × unit_price).
    IEPS by cuota is charged per unit of ``quantity`` (e.g. litres) and its Base is the quantity.
    """

    description: str
    quantity: Decimal
    unit_price: Decimal
    clave_prod_serv: str = "01010101"
    clave_unidad: str = "H87"
    unidad: str | None = None
    sku: str | None = None
    discount: Decimal = Decimal("0")
    objeto_imp: str = "02"
    taxes: tuple[LineTax, ...] = (IVA_16,)
    amount: Decimal | None = None
    # A POS that prints net prices (tax on top): the line's net amount after discounts as printed. The solver
    # keeps it as the concept's Base when SAT's windows allow, so the invoice shows the receipt's amounts.
    net: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    """A POS sale. ``discount`` is a ticket-level, tax-inclusive discount spread over the lines.

    ``total`` is the printed total; the builder refuses a ticket whose lines do not add up to it.
    """

    number: str
    lines: tuple[TicketLine, ...]
    payment_form: str = "01"
    discount: Decimal = Decimal("0")
    total: Decimal | None = None


@dataclass(frozen=True, slots=True)
class GlobalInfo:
    periodicidad: str
    meses: str
    anio: int


@dataclass(frozen=True, slots=True)
class Related:
    tipo_relacion: str
    uuids: tuple[str, ...]
