"""Small SAT catalogs (CFDI 4.0) kept in code: forms, validation and the builder import them from here.

Source: SAT catalogs as published in phpcfdi/resources-sat-catalogs (RULES.md, CAT). The big catalogs
(postal codes, product and unit keys) live in the database, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .rfc import (  # noqa: F401 - the generic RFCs are SAT catalog values too; callers read them here
    PERSONA_FISICA,
    PERSONA_MORAL,
    PERSONAS,
    RFC_EXTRANJERO,
    RFC_PUBLICO_GENERAL,
    RFCS_GENERICOS,
    persona_of,
)


@dataclass(frozen=True, slots=True)
class RegimenFiscal:
    code: str
    description: str
    fisica: bool
    moral: bool


@dataclass(frozen=True, slots=True)
class UsoCfdi:
    code: str
    description: str
    fisica: bool
    moral: bool
    regimenes: frozenset[str]


def _regimen(code: str, description: str, fisica: bool, moral: bool) -> RegimenFiscal:
    return RegimenFiscal(code, description, fisica, moral)


REGIMENES_FISCALES: dict[str, RegimenFiscal] = {
    r.code: r
    for r in (
        _regimen("601", "General de Ley Personas Morales", False, True),
        _regimen("603", "Personas Morales con Fines no Lucrativos", False, True),
        _regimen("605", "Sueldos y Salarios e Ingresos Asimilados a Salarios", True, False),
        _regimen("606", "Arrendamiento", True, False),
        _regimen("607", "Régimen de Enajenación o Adquisición de Bienes", True, False),
        _regimen("608", "Demás ingresos", True, False),
        _regimen("610", "Residentes en el Extranjero sin Establecimiento Permanente en México", True, True),
        _regimen("611", "Ingresos por Dividendos (socios y accionistas)", True, False),
        _regimen("612", "Personas Físicas con Actividades Empresariales y Profesionales", True, False),
        _regimen("614", "Ingresos por intereses", True, False),
        _regimen("615", "Régimen de los ingresos por obtención de premios", True, False),
        _regimen("616", "Sin obligaciones fiscales", True, False),
        _regimen("620", "Sociedades Cooperativas de Producción que optan por diferir sus ingresos", False, True),
        _regimen("621", "Incorporación Fiscal", True, False),
        _regimen("622", "Actividades Agrícolas, Ganaderas, Silvícolas y Pesqueras", False, True),
        _regimen("623", "Opcional para Grupos de Sociedades", False, True),
        _regimen("624", "Coordinados", False, True),
        _regimen(
            "625",
            "Régimen de las Actividades Empresariales con ingresos a través de Plataformas Tecnológicas",
            True,
            False,
        ),
        _regimen("626", "Régimen Simplificado de Confianza", True, True),
    )
}

_BUSINESS = frozenset("601 603 606 612 620 621 622 623 624 625 626".split())
_PERSONAL = frozenset("605 606 607 608 611 612 614 615 625".split())
_ANY = frozenset("601 603 605 606 607 608 610 611 612 614 615 616 620 621 622 623 624 625 626".split())

USOS_CFDI: dict[str, UsoCfdi] = {
    u.code: u
    for u in (
        UsoCfdi("G01", "Adquisición de mercancías", True, True, _BUSINESS),
        UsoCfdi("G02", "Devoluciones, descuentos o bonificaciones", True, True, _BUSINESS | {"616"}),
        UsoCfdi("G03", "Gastos en general", True, True, _BUSINESS),
        UsoCfdi("I01", "Construcciones", True, True, _BUSINESS),
        UsoCfdi("I02", "Mobiliario y equipo de oficina por inversiones", True, True, _BUSINESS),
        UsoCfdi("I03", "Equipo de transporte", True, True, _BUSINESS),
        UsoCfdi("I04", "Equipo de cómputo y accesorios", True, True, _BUSINESS),
        UsoCfdi("I05", "Dados, troqueles, moldes, matrices y herramental", True, True, _BUSINESS),
        UsoCfdi("I06", "Comunicaciones telefónicas", True, True, _BUSINESS),
        UsoCfdi("I07", "Comunicaciones satelitales", True, True, _BUSINESS),
        UsoCfdi("I08", "Otra maquinaria y equipo", True, True, _BUSINESS),
        UsoCfdi("D01", "Honorarios médicos, dentales y gastos hospitalarios", True, False, _PERSONAL),
        UsoCfdi("D02", "Gastos médicos por incapacidad o discapacidad", True, False, _PERSONAL),
        UsoCfdi("D03", "Gastos funerales", True, False, _PERSONAL),
        UsoCfdi("D04", "Donativos", True, False, _PERSONAL),
        UsoCfdi(
            "D05",
            "Intereses reales efectivamente pagados por créditos hipotecarios (casa habitación)",
            True,
            False,
            _PERSONAL,
        ),
        UsoCfdi("D06", "Aportaciones voluntarias al SAR", True, False, _PERSONAL),
        UsoCfdi("D07", "Primas por seguros de gastos médicos", True, False, _PERSONAL),
        UsoCfdi("D08", "Gastos de transportación escolar obligatoria", True, False, _PERSONAL),
        UsoCfdi(
            "D09",
            "Depósitos en cuentas para el ahorro, primas que tengan como base planes de pensiones",
            True,
            False,
            _PERSONAL,
        ),
        UsoCfdi("D10", "Pagos por servicios educativos (colegiaturas)", True, False, _PERSONAL),
        UsoCfdi("S01", "Sin efectos fiscales", True, True, _ANY),
        UsoCfdi("CP01", "Pagos", True, True, _ANY),
        UsoCfdi("CN01", "Nómina", True, False, frozenset({"605"})),
    )
}

FORMAS_PAGO: dict[str, str] = {
    "01": "Efectivo",
    "02": "Cheque nominativo",
    "03": "Transferencia electrónica de fondos",
    "04": "Tarjeta de crédito",
    "05": "Monedero electrónico",
    "06": "Dinero electrónico",
    "08": "Vales de despensa",
    "12": "Dación en pago",
    "13": "Pago por subrogación",
    "14": "Pago por consignación",
    "15": "Condonación",
    "17": "Compensación",
    "23": "Novación",
    "24": "Confusión",
    "25": "Remisión de deuda",
    "26": "Prescripción o caducidad",
    "27": "A satisfacción del acreedor",
    "28": "Tarjeta de débito",
    "29": "Tarjeta de servicios",
    "30": "Aplicación de anticipos",
    "31": "Intermediario pagos",
    "99": "Por definir",
}

METODOS_PAGO: dict[str, str] = {
    "PUE": "Pago en una sola exhibición",
    "PPD": "Pago en parcialidades o diferido",
}

OBJETOS_IMPUESTO: dict[str, str] = {
    "01": "No objeto de impuesto",
    "02": "Sí objeto de impuesto",
    "03": "Sí objeto del impuesto y no obligado al desglose",
    "04": "Sí objeto del impuesto y no causa impuesto",
    "05": "Sí objeto del impuesto, IVA crédito PODEBI",
    "06": "Sí objeto del IVA, no traslado IVA",
    "07": "No traslado del IVA, sí desglose IEPS",
    "08": "No traslado del IVA, no desglose IEPS",
}

PERIODICIDADES: dict[str, str] = {
    "01": "Diario",
    "02": "Semanal",
    "03": "Quincenal",
    "04": "Mensual",
    "05": "Bimestral",
}

MESES: dict[str, str] = {
    "01": "Enero",
    "02": "Febrero",
    "03": "Marzo",
    "04": "Abril",
    "05": "Mayo",
    "06": "Junio",
    "07": "Julio",
    "08": "Agosto",
    "09": "Septiembre",
    "10": "Octubre",
    "11": "Noviembre",
    "12": "Diciembre",
    "13": "Enero-Febrero",
    "14": "Marzo-Abril",
    "15": "Mayo-Junio",
    "16": "Julio-Agosto",
    "17": "Septiembre-Octubre",
    "18": "Noviembre-Diciembre",
}

TIPOS_RELACION: dict[str, str] = {
    "01": "Nota de crédito de los documentos relacionados",
    "02": "Nota de débito de los documentos relacionados",
    "03": "Devolución de mercancía sobre facturas o traslados previos",
    "04": "Sustitución de los CFDI previos",
    "05": "Traslados de mercancías facturados previamente",
    "06": "Factura generada por los traslados previos",
    "07": "CFDI por aplicación de anticipo",
}

# Which TipoDeComprobante may carry each TipoRelacion (RULES.md §1.5). 03 is "devolución de mercancía sobre
# facturas o traslados previos": the guide's "not on E/P/N" is about the documents returned *over* (previous
# facturas or traslados), so the credit note for returned goods, an egreso, carries it (RULES.md §1.5's own
# retail recipe: "relate the I with 01, or 03 for returned goods").
TIPOS_RELACION_POR_COMPROBANTE: dict[str, frozenset[str]] = {
    "01": frozenset("IE"),
    "02": frozenset("IE"),
    "03": frozenset("IET"),
    "04": frozenset("IETNP"),
    "05": frozenset("T"),
    "06": frozenset("IE"),
    "07": frozenset("IE"),
}

TIPOS_COMPROBANTE: dict[str, str] = {
    "I": "Ingreso",
    "E": "Egreso",
    "T": "Traslado",
    "N": "Nómina",
    "P": "Pago",
}

EXPORTACIONES: dict[str, str] = {
    "01": "No aplica",
    "02": "Definitiva con clave A1",
    "03": "Temporal",
    "04": "Definitiva con clave distinta a A1 o cuando no existe enajenación en términos del CFF",
}

IMPUESTOS: dict[str, str] = {"001": "ISR", "002": "IVA", "003": "IEPS"}
TIPOS_FACTOR: frozenset[str] = frozenset({"Tasa", "Cuota", "Exento"})

# --- c_Moneda ------------------------------------------------------------------------------------------------
# Decimals come from SAT's catalog as satcfdi ships it (resources.sat_catalog). Its copy lacks the variation
# percentage; SAT's c_Moneda (phpcfdi resources-sat-catalogs cfdi_40_monedas, unchanged since 2022-01-01) has
# 5 % for every currency except XXX and XTS (0 %): TipoCambio must stay within it of the reference rate, or
# carry a Confirmacion key from the PAC (CFDI40118), which self-invoicing never has.
MONEDA_VARIACION_PCT = Decimal(5)
MONEDAS_SIN_TIPO_CAMBIO = frozenset({"MXN", "XXX"})


def moneda(code: str) -> tuple[str, int] | None:
    """(name, decimals) of a c_Moneda key, or None when SAT's catalog does not have it."""
    from .resources import sat_catalog

    row = sat_catalog("c_Moneda").get(code) if isinstance(code, str) else None
    return (str(row[0]), int(row[1])) if row else None


def currency_places(code: str) -> int:
    """Decimals of amounts in ``code`` (c_Moneda); 2 for a currency SAT does not list."""
    row = moneda(code)
    return row[1] if row else 2


def tipo_cambio_range(reference: Decimal) -> tuple[Decimal, Decimal]:
    """TipoCambio values SAT accepts without Confirmacion around a reference rate (c_Moneda, CFDI40118)."""
    delta = reference * MONEDA_VARIACION_PCT / 100
    return reference - delta, reference + delta


# --- c_TasaOCuota -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TasaOCuotaRule:
    """One row of c_TasaOCuota: a fixed value, or a range ``[minimo, valor]``, for a tax and factor."""

    impuesto: str  # "001" ISR, "002" IVA, "003" IEPS
    factor: str  # Tasa | Cuota
    valor: Decimal
    minimo: Decimal | None = None  # None: fixed value
    traslado: bool = True
    retencion: bool = False

    def matches(self, impuesto: str, factor: str, rate: Decimal, traslado: bool) -> bool:
        if (self.impuesto, self.factor) != (impuesto, factor) or not (self.traslado if traslado else self.retencion):
            return False
        if self.minimo is None:
            return rate == self.valor
        return self.minimo <= rate <= self.valor


class TasasOCuotas:
    """c_TasaOCuota as a set of rules. The engine carries SAT's current catalog (``SAT_TASAS_O_CUOTAS``); the
    application may hand a newer one (loaded by ``manage.py load_sat_catalogs``) to ``validate`` and to
    ticket ingestion without a release."""

    def __init__(self, rules, *, source: str = ""):
        self.rules = tuple(rules)
        self.source = source
        self._fixed = {(r.impuesto, r.factor, r.valor, r.traslado, r.retencion) for r in self.rules
                       if r.minimo is None}
        self._hash = hash(frozenset(self.rules))

    def allows(self, impuesto: str, factor: str, rate: Decimal, *, traslado: bool = True) -> bool:
        if factor == "Exento":
            return traslado
        if (impuesto, factor, rate, True, True) in self._fixed or (
                (impuesto, factor, rate, True, False) in self._fixed if traslado
                else (impuesto, factor, rate, False, True) in self._fixed):
            return True
        return any(r.minimo is not None and r.matches(impuesto, factor, rate, traslado) for r in self.rules)

    def described(self, impuesto: str, factor: str, *, traslado: bool = True) -> str:
        """The values SAT allows, for an error message: «0.000000, 0.160000» or «de 0 a 72.160500»."""
        parts = []
        for r in self.rules:
            if (r.impuesto, r.factor) != (impuesto, factor) or not (r.traslado if traslado else r.retencion):
                continue
            parts.append(f"{r.valor:f}" if r.minimo is None else f"de {r.minimo:f} a {r.valor:f}")
        return ", ".join(sorted(set(parts))) or "ninguno"

    def __eq__(self, other):
        return isinstance(other, TasasOCuotas) and set(self.rules) == set(other.rules)

    def __hash__(self):
        return self._hash


def _rules(impuesto: str, factor: str, values: str, *, retencion: bool = False) -> list[TasaOCuotaRule]:
    return [TasaOCuotaRule(impuesto, factor, Decimal(v), None, True, retencion) for v in values.split()]


# SAT's c_TasaOCuota as of its 2026-01-01 update (phpcfdi resources-sat-catalogs cfdi_40_reglas_tasa_cuota,
# auto-update 2025-12-31, unchanged up to 2026-08-06). 2026 changed only the IEPS cuota ceiling (69.5255 →
# 72.1605: the new cuotas, sugary drinks 3.0818 MXN/L and drinks with sweeteners 1.50 MXN/L, fit it). Gambling
# at 50 % and violent video games at 8 % use the existing 0.500000 and 0.080000. The catalog does NOT hold
# 2.000000, so cigarettes at 200 % cannot be stamped until SAT publishes it (docs/cfdi-engine.md).
SAT_TASAS_O_CUOTAS = TasasOCuotas(
    _rules("002", "Tasa", "0.000000 0.160000 0.080000")
    + [TasaOCuotaRule("002", "Tasa", Decimal("0.160000"), Decimal("0.000000"), False, True)]
    + _rules("003", "Tasa", "0.265000 0.300000 0.530000 0.500000 1.600000 0.304000 0.250000 0.090000 0.080000 "
                            "0.070000 0.060000", retencion=True)
    + _rules("003", "Tasa", "0.030000 0.000000")
    + [TasaOCuotaRule("003", "Cuota", Decimal("72.160500"), Decimal("0.000000"), True, True),
       TasaOCuotaRule("001", "Tasa", Decimal("0.350000"), Decimal("0.000000"), False, True)],
    source="SAT c_TasaOCuota 2026-01-01",
)
IVA_FRONTERA = Decimal("0.080000")  # only with the northern/southern border-region stimulus (see tickets)

NOMBRE_PUBLICO_GENERAL = "PUBLICO EN GENERAL"

# --- the régimen ↔ UsoCFDI matrix (RULES.md §7.2), the one definition ----------------------------------------
# The receptor rules (receptor.py), the engine, the portal's lists and its script (``receptor_matrix``) all ask
# these three functions; nothing else reads the fisica/moral/regimenes columns above.

# Payment receipts (CP01) and payroll (CN01) only: never the use of an invoice for a sale.
NOT_FOR_SALES = frozenset({"CP01", "CN01"})


def _fits(entry: RegimenFiscal | UsoCfdi, persona: str) -> bool:
    return entry.moral if persona == PERSONA_MORAL else entry.fisica if persona == PERSONA_FISICA else True


def regimenes_for_persona(persona: str) -> list[RegimenFiscal]:
    return [r for r in REGIMENES_FISCALES.values() if _fits(r, persona)]


def usos_for_persona(persona: str, regimen: str) -> list[UsoCfdi]:
    return [u for u in USOS_CFDI.values()
            if u.code not in NOT_FOR_SALES and _fits(u, persona) and (not regimen or regimen in u.regimenes)]


def regimenes_for(rfc: str = "") -> list[RegimenFiscal]:
    """Régimen choices for an RFC's persona (12 characters = moral, 13 = física); all of them without one."""
    return regimenes_for_persona(persona_of(rfc))


def usos_for(rfc: str = "", regimen: str = "") -> list[UsoCfdi]:
    """UsoCFDI choices for a sale to a receptor of this RFC's persona and this régimen (either may be unknown
    yet: that filter is then left out)."""
    return usos_for_persona(persona_of(rfc), regimen)


# What to suggest to someone who does not know which UsoCFDI to pick, in order: the first one their régimen allows.
# G03 «Gastos en general» fits most purchases; a régimen without it (605 salaried, 616 without obligations…)
# gets S01 «Sin efectos fiscales», which every régimen allows.
SUGGESTED_USOS = ("G03", "S01")


def suggested_uso(persona: str, regimen: str) -> str:
    """The UsoCFDI to suggest for a sale to this persona and régimen ("" when the régimen is not chosen yet)."""
    if not regimen:
        return ""
    allowed = {u.code for u in usos_for_persona(persona, regimen)}
    return next((code for code in SUGGESTED_USOS if code in allowed), "")


def receptor_matrix() -> dict:
    """The matrix as the portal's script needs it, computed by the functions above (no copy in JavaScript):
    per persona ("" = not known yet) the régimen codes in order and, per régimen ("" = none chosen yet), the
    UsoCFDI codes and the one to suggest; and which RFC length is which persona."""
    matrix = {}
    for persona in ("", PERSONA_FISICA, PERSONA_MORAL):
        regimenes = [r.code for r in regimenes_for_persona(persona)]
        matrix[persona] = {"regimenes": regimenes,
                           "usos": {code: [u.code for u in usos_for_persona(persona, code)] for code in ["", *regimenes]},
                           "sugerido": {code: suggested_uso(persona, code) for code in regimenes}}
    return {
        "regimenes": {r.code: r.description for r in REGIMENES_FISCALES.values()},
        "usos": {u.code: u.description for u in USOS_CFDI.values() if u.code not in NOT_FOR_SALES},
        "personas": {str(length): persona for length, persona in PERSONAS.items()},
        "matrix": matrix,
    }
