"""Factura global periods: pure calendar arithmetic in the merchant's local calendar (no ORM).

A period is a range of local dates ``[first, last]`` with a c_Periodicidad (01 daily … 05 bimonthly). Its
instants are local midnights in the merchant's time zone, so a DST change (America/Tijuana) moves the UTC
bounds but never the calendar: a day is a day even when it lasts 23 or 25 hours.

Weeks run Monday to Sunday and fortnights 1–15 / 16–end, both cut at month ends, because InformacionGlobal
carries a single month in Meses (RULES.md §2: "do not let a weekly/quincenal period straddle two months").
Bimesters are Ene–Feb … Nov–Dic (Meses 13–18), allowed only for régimen 621 (CFDI40131/40132).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

DAILY, WEEKLY, FORTNIGHTLY, MONTHLY, BIMONTHLY = "01", "02", "03", "04", "05"
PERIODICITIES = (DAILY, WEEKLY, FORTNIGHTLY, MONTHLY, BIMONTHLY)
NAMES = {DAILY: "diario", WEEKLY: "semanal", FORTNIGHTLY: "quincenal", MONTHLY: "mensual", BIMONTHLY: "bimestral"}
MONTHS = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
          "noviembre", "diciembre"]
BIMONTHLY_REGIME = "621"
DEADLINE = dt.timedelta(hours=24)  # RULES.md §2: stamp within 24 h after the period closes


class PeriodError(ValueError):
    """A period text or periodicity that makes no sense; the message is Spanish."""


def _month_last(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


@dataclass(frozen=True, order=True)
class Period:
    first: dt.date
    last: dt.date  # inclusive
    periodicity: str

    # --- SAT's InformacionGlobal -------------------------------------------------------------------------
    @property
    def meses(self) -> str:
        if self.periodicity == BIMONTHLY:
            return f"{12 + (self.first.month + 1) // 2}"  # Ene-Feb 13 … Nov-Dic 18
        return f"{self.first.month:02d}"

    @property
    def year(self) -> int:
        return self.first.year

    # --- instants -----------------------------------------------------------------------------------------
    def start(self, tz: str | dt.tzinfo) -> dt.datetime:
        return local_midnight(self.first, tz)

    def end(self, tz: str | dt.tzinfo) -> dt.datetime:
        """Exclusive end: local midnight after the last day."""
        return local_midnight(self.last + dt.timedelta(days=1), tz)

    def deadline(self, tz: str | dt.tzinfo) -> dt.datetime:
        return self.end(tz) + DEADLINE

    def is_closed(self, now: dt.datetime, tz: str | dt.tzinfo) -> bool:
        return now >= self.end(tz)

    # --- navigation and naming ----------------------------------------------------------------------------
    def next(self) -> Period:
        return period_containing(self.periodicity, self.last + dt.timedelta(days=1))

    def previous(self) -> Period:
        return period_containing(self.periodicity, self.first - dt.timedelta(days=1))

    @property
    def key(self) -> str:
        """Canonical text, accepted back by ``period_parse``: ``2026-03-02..2026-03-08``."""
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    @property
    def label(self) -> str:
        """Spanish, for merchants: "del 2 al 8 de marzo de 2026", "marzo de 2026", "enero–febrero de 2026"."""
        if self.periodicity == DAILY:
            return f"{self.first.day} de {MONTHS[self.first.month - 1]} de {self.first.year}"
        if self.periodicity == MONTHLY:
            return f"{MONTHS[self.first.month - 1]} de {self.first.year}"
        if self.periodicity == BIMONTHLY:
            return f"{MONTHS[self.first.month - 1]}–{MONTHS[self.last.month - 1]} de {self.first.year}"
        return f"del {self.first.day} al {self.last.day} de {MONTHS[self.first.month - 1]} de {self.first.year}"

    def __str__(self) -> str:
        return self.key


def _zone(tz: str | dt.tzinfo) -> dt.tzinfo:
    return zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz


def local_midnight(day: dt.date, tz: str | dt.tzinfo) -> dt.datetime:
    """00:00 local of ``day``. Mexican DST switches happen at 02:00, so midnight always exists once."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=_zone(tz))


def local_date(moment: dt.datetime, tz: str | dt.tzinfo) -> dt.date:
    return moment.astimezone(_zone(tz)).date()


def check_periodicity(periodicity: str, tax_regime: str | None = None) -> None:
    if periodicity not in PERIODICITIES:
        raise PeriodError(f"Periodicidad desconocida «{periodicity}»: usa 01 a 05.")
    if periodicity == BIMONTHLY and tax_regime is not None and tax_regime != BIMONTHLY_REGIME:
        raise PeriodError("La periodicidad bimestral solo se permite al régimen 621 (Incorporación Fiscal).")


def effective_periodicity(periodicity: str, tax_regime: str) -> str:
    """Bimonthly is only for régimen 621; anyone else who chose it is served monthly (CFDI40132)."""
    if periodicity == BIMONTHLY and tax_regime != BIMONTHLY_REGIME:
        return MONTHLY
    return periodicity


def period_containing(periodicity: str, day: dt.date) -> Period:
    check_periodicity(periodicity)
    if periodicity == DAILY:
        return Period(day, day, periodicity)
    month_first, month_last = day.replace(day=1), _month_last(day.year, day.month)
    if periodicity == WEEKLY:
        monday = day - dt.timedelta(days=day.weekday())
        return Period(max(monday, month_first), min(monday + dt.timedelta(days=6), month_last), periodicity)
    if periodicity == FORTNIGHTLY:
        if day.day <= 15:
            return Period(month_first, day.replace(day=15), periodicity)
        return Period(day.replace(day=16), month_last, periodicity)
    if periodicity == MONTHLY:
        return Period(month_first, month_last, periodicity)
    first_month = day.month - (day.month - 1) % 2
    return Period(dt.date(day.year, first_month, 1), _month_last(day.year, first_month + 1), periodicity)


def period_at(periodicity: str, moment: dt.datetime, tz: str | dt.tzinfo) -> Period:
    """The period an instant belongs to, in local time."""
    return period_containing(periodicity, local_date(moment, tz))


def closed_periods(periodicity: str, since: dt.datetime, now: dt.datetime, tz: str | dt.tzinfo) -> list[Period]:
    """Every period that contains ``since`` or starts after it and has closed by ``now``, oldest first."""
    out = []
    period = period_at(periodicity, since, tz)
    while period.is_closed(now, tz):
        out.append(period)
        period = period.next()
    return out


_DATE = r"\d{4}-\d{2}-\d{2}"


def period_parse(text: str, periodicity: str) -> Period:
    """Read a period a merchant typed: ``2026-03-05`` (the period containing that day), ``2026-03`` (a month,
    or its bimester) or the canonical ``2026-03-01..2026-03-07`` (must be exactly one period)."""
    text = (text or "").strip()
    check_periodicity(periodicity)
    try:
        if re.fullmatch(_DATE, text):
            return period_containing(periodicity, dt.date.fromisoformat(text))
        if re.fullmatch(r"\d{4}-\d{2}", text):
            if periodicity not in (MONTHLY, BIMONTHLY):
                raise PeriodError(
                    f"Para la periodicidad {NAMES[periodicity]} indica un día (AAAA-MM-DD) o el periodo completo."
                )
            return period_containing(periodicity, dt.date.fromisoformat(text + "-01"))
        match = re.fullmatch(rf"({_DATE})\.\.({_DATE})", text)
        if match:
            first, last = (dt.date.fromisoformat(g) for g in match.groups())
            period = period_containing(periodicity, first)
            if (period.first, period.last) != (first, last):
                raise PeriodError(
                    f"{first:%Y-%m-%d}..{last:%Y-%m-%d} no es un periodo {NAMES[periodicity]}; "
                    f"el que contiene el {first:%d/%m/%Y} es {period.key}."
                )
            return period
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(f"Fecha inválida en el periodo «{text}».") from exc
    raise PeriodError(f"Periodo «{text}» no reconocido: usa AAAA-MM-DD, AAAA-MM o AAAA-MM-DD..AAAA-MM-DD.")
