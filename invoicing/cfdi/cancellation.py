"""SAT's cancellation rules (RULES.md §6), the one definition: motives, when the receptor must accept, the legal
deadline, SAT's business days.

Every path asks here: the cancellation service and its confirmation pages (what will happen, before anything is
sent), the late-request route (motivo 04 or, past the deadline, a credit note) and the sandbox PAC (which answers
as SAT would). Pure: no Django, no I/O.

- Motives (catálogo de motivos de cancelación): 01 needs the replacement's UUID (FolioSustitucion); the replacement
  is issued first with TipoRelacion 04 (GUIA Q42).
- Acceptance (CFF 29-A, RMF 2026 2.7.1.34/2.7.1.35): the receptor answers within 3 business days, silence is
  acceptance; rule 2.7.1.35 exempts the cases in :func:`acceptance`. SAT decides in the end: this is what we tell
  the merchant before sending, and what the sandbox does.
- Deadline (CFF 29-A 4th paragraph, 2026): a CFDI can be cancelled until the month its year's annual return is
  due: March (personas morales) or April (personas físicas) of the next year. Later is fined (CFF 81-XLVI).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from .rfc import RFC_EXTRANJERO, RFC_PUBLICO_GENERAL, is_persona_moral

SAT_TZ = ZoneInfo("America/Mexico_City")  # SAT counts its days in Zona Centro

MOTIVES: dict[str, str] = {
    "01": "Comprobante emitido con errores con relación",
    "02": "Comprobante emitido con errores sin relación",
    "03": "No se llevó a cabo la operación",
    "04": "Operación nominativa relacionada en una factura global",
}
MOTIVE_WITH_REPLACEMENT = "01"
MOTIVE_GLOBAL = "04"

ACCEPTANCE_LIMIT = Decimal("1000.00")  # 2.7.1.35 I: "monto total hasta $1,000.00"

# TipoDeComprobante, plus "R" for the CFDI de retenciones (a document of its own, exempt by 2.7.1.35 VI).
INGRESO, EGRESO, TRASLADO, NOMINA, PAGO, RETENCIONES = "I", "E", "T", "N", "P", "R"

# Why no acceptance is needed (or why it is), as codes the API returns and the messages people read.
WITHIN_NEXT_BUSINESS_DAY = "next_business_day"
EGRESO_EXEMPT = "egreso"
NOMINA_EXEMPT = "nomina"
TRASLADO_EXEMPT = "traslado"
RETENCIONES_EXEMPT = "retenciones"
PUBLICO_EN_GENERAL = "publico_en_general"
FOREIGN_RESIDENT = "residente_extranjero"
SMALL_TOTAL = "total_hasta_1000"
REQUIRED = "requiere_aceptacion"

REASONS: dict[str, str] = {
    WITHIN_NEXT_BUSINESS_DAY: "se cancela a más tardar el día hábil siguiente a su emisión",
    EGRESO_EXEMPT: "es un comprobante de egreso (nota de crédito)",
    NOMINA_EXEMPT: "es un recibo de nómina",
    TRASLADO_EXEMPT: "es un comprobante de traslado",
    RETENCIONES_EXEMPT: "es un CFDI de retenciones",
    PUBLICO_EN_GENERAL: "se emitió al público en general (factura global)",
    FOREIGN_RESIDENT: "se emitió a un residente en el extranjero",
    SMALL_TOTAL: "su total es de hasta $1,000.00",
    REQUIRED: "su total pasa de $1,000.00 y ya pasó el día hábil siguiente a su emisión",
}


@dataclass(frozen=True)
class CfdiFacts:
    """What the rules look at in a stamped CFDI."""

    tipo: str  # INGRESO, EGRESO, TRASLADO, NOMINA, PAGO or RETENCIONES
    total: Decimal
    receptor_rfc: str
    issued_at: dt.datetime  # aware
    emisor_rfc: str = ""
    currency: str = "MXN"
    is_global: bool = False  # InformacionGlobal: a factura global (receptor público en general)


@dataclass(frozen=True)
class Acceptance:
    required: bool
    reason: str  # one of REASONS
    exempt_until: dt.datetime | None = None  # end of the "next business day" exemption, when it is the only one

    @property
    def message(self) -> str:
        if self.required:
            return ("El receptor debe aceptar la cancelación (tiene 3 días hábiles; si no responde, se da por "
                    f"aceptada): {REASONS[self.reason]}.")
        return f"No requiere aceptación del receptor: {REASONS[self.reason]}."


def acceptance(facts: CfdiFacts, *, at: dt.datetime) -> Acceptance:
    """Does cancelling this CFDI at ``at`` need the receptor's acceptance (RMF 2026 2.7.1.35)?

    The exemptions for the kind of document come first (they hold whenever the request is sent), then the
    total, then the business-day window (the one that expires).
    """
    by_kind = {EGRESO: EGRESO_EXEMPT, NOMINA: NOMINA_EXEMPT, TRASLADO: TRASLADO_EXEMPT,
               RETENCIONES: RETENCIONES_EXEMPT}
    if facts.tipo in by_kind:
        return Acceptance(False, by_kind[facts.tipo])
    if facts.is_global or facts.receptor_rfc == RFC_PUBLICO_GENERAL:
        return Acceptance(False, PUBLICO_EN_GENERAL)
    if facts.receptor_rfc == RFC_EXTRANJERO:
        return Acceptance(False, FOREIGN_RESIDENT)
    # The amount is in pesos: another currency's total is not compared (we do not guess the exchange rate),
    # and the current text of 2.7.1.35 I leaves payment receipts (Complemento de Pagos) out.
    if facts.tipo != PAGO and facts.currency == "MXN" and facts.total <= ACCEPTANCE_LIMIT:
        return Acceptance(False, SMALL_TOTAL)
    window_end = next_business_day_end(facts.issued_at)
    if at < window_end:
        return Acceptance(False, WITHIN_NEXT_BUSINESS_DAY, exempt_until=window_end)
    return Acceptance(True, REQUIRED)


# --- SAT's business days ---------------------------------------------------------------------------------


def _nth_monday(year: int, month: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(7 - first.weekday()) % 7 + 7 * (n - 1))


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


@lru_cache(maxsize=64)
def sat_holidays(year: int) -> frozenset[dt.date]:
    """Días inhábiles: CFF art. 12 (1 Jan, first Monday of February, third Monday of March, 1 and 5 May, 16 Sep,
    third Monday of November, 25 Dec, and 1 Oct every six years since 2024, when the presidency changes hands)
    and Holy Thursday and Friday, which the RMF (rule 2.1.6) declares every year.

    SAT's general holidays (announced yearly) are not here: a day we count as hábil that SAT does not only makes
    us say "needs acceptance" a day early, never the other way round.
    """
    easter = _easter(year)
    days = {
        dt.date(year, 1, 1), _nth_monday(year, 2, 1), _nth_monday(year, 3, 3), dt.date(year, 5, 1),
        dt.date(year, 5, 5), dt.date(year, 9, 16), _nth_monday(year, 11, 3), dt.date(year, 12, 25),
        easter - dt.timedelta(days=3), easter - dt.timedelta(days=2),
    }
    if year >= 2024 and (year - 2024) % 6 == 0:
        days.add(dt.date(year, 10, 1))
    return frozenset(days)


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in sat_holidays(day.year)


def next_business_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while not is_business_day(day):
        day += dt.timedelta(days=1)
    return day


def next_business_day_end(issued_at: dt.datetime) -> dt.datetime:
    """The first moment after the business day that follows the day of issue (Zona Centro)."""
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be time-zone aware")
    day = next_business_day(issued_at.astimezone(SAT_TZ).date())
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=SAT_TZ)


# --- the legal deadline ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    last_day: dt.date  # the last day a cancellation may be requested
    ends_at: dt.datetime  # the first moment it may not (midnight after last_day, in the emisor's zone)

    def passed(self, at: dt.datetime) -> bool:
        return at >= self.ends_at

    def days_left(self, at: dt.datetime) -> int:
        return (self.ends_at - at).days


def cancellation_deadline(*, issued_at: dt.datetime, emisor_rfc: str, tz: str | dt.tzinfo = SAT_TZ) -> Deadline:
    """CFF 29-A (2026): until the month the annual return of the year of issuance is due, 31 March for personas
    morales (12-character RFC), 30 April for personas físicas, of the next year; in the emisor's time zone."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be time-zone aware")
    year = issued_at.astimezone(zone).year + 1
    last_day = dt.date(year, 3, 31) if is_persona_moral(emisor_rfc) else dt.date(year, 4, 30)
    return Deadline(last_day, dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time.min, tzinfo=zone))


MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
          "noviembre", "diciembre")


def long_date(day: dt.date) -> str:
    """«31 de marzo de 2027»."""
    return f"{day.day} de {MONTHS[day.month - 1]} de {day.year}"
