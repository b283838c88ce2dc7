"""SAT's cancellation rules (invoicing/cfdi/cancellation.py): acceptance (RMF 2026 2.7.1.35), business days, the
legal deadline (CFF 29-A)."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from invoicing.cfdi import cancellation as rules
from invoicing.cfdi.cancellation import CfdiFacts, acceptance, cancellation_deadline, next_business_day_end

MX = ZoneInfo("America/Mexico_City")
# Issued on Monday 2 March 2026 at noon; "late" is the Friday after, past the next business day (Tuesday).
ISSUED = dt.datetime(2026, 3, 2, 12, 0, tzinfo=MX)
LATE = dt.datetime(2026, 3, 6, 12, 0, tzinfo=MX)
NEXT_DAY = dt.datetime(2026, 3, 3, 23, 59, tzinfo=MX)
PERSON = "CACX7605101P8"


def facts(tipo="I", total="5000.00", receptor=PERSON, currency="MXN", is_global=False):
    return CfdiFacts(tipo=tipo, total=Decimal(total), receptor_rfc=receptor, issued_at=ISSUED,
                     emisor_rfc="EKU9003173C9", currency=currency, is_global=is_global)


# Every case of 2.7.1.35 the issue lists, and the ones that are not exempt.
CASES = [
    # (name, facts, at, required, reason)
    ("ingreso above $1,000, past the next business day", facts(), LATE, True, rules.REQUIRED),
    ("total of exactly $1,000", facts(total="1000.00"), LATE, False, rules.SMALL_TOTAL),
    ("total under $1,000", facts(total="999.99"), LATE, False, rules.SMALL_TOTAL),
    ("$1,000.01 needs acceptance", facts(total="1000.01"), LATE, True, rules.REQUIRED),
    ("payment receipt of $500 is not exempt by amount", facts(tipo="P", total="500.00"), LATE, True, rules.REQUIRED),
    ("$500 in dollars is not compared in pesos", facts(total="500.00", currency="USD"), LATE, True, rules.REQUIRED),
    ("factura global (público en general)", facts(is_global=True, receptor="XAXX010101000"), LATE, False,
     rules.PUBLICO_EN_GENERAL),
    ("nominative to XAXX (público en general)", facts(receptor="XAXX010101000"), LATE, False,
     rules.PUBLICO_EN_GENERAL),
    ("egreso", facts(tipo="E", total="50000.00"), LATE, False, rules.EGRESO_EXEMPT),
    ("nómina", facts(tipo="N", total="50000.00"), LATE, False, rules.NOMINA_EXEMPT),
    ("traslado", facts(tipo="T", total="50000.00"), LATE, False, rules.TRASLADO_EXEMPT),
    ("retenciones", facts(tipo="R", total="50000.00"), LATE, False, rules.RETENCIONES_EXEMPT),
    ("foreign resident (XEXX)", facts(receptor="XEXX010101000"), LATE, False, rules.FOREIGN_RESIDENT),
    ("same day as issued", facts(), ISSUED + dt.timedelta(hours=2), False, rules.WITHIN_NEXT_BUSINESS_DAY),
    ("the next business day, late at night", facts(), NEXT_DAY, False, rules.WITHIN_NEXT_BUSINESS_DAY),
    ("the day after the next business day", facts(), NEXT_DAY + dt.timedelta(minutes=1), True, rules.REQUIRED),
]


@pytest.mark.parametrize(("name", "cfdi", "at", "required", "reason"), CASES, ids=[c[0] for c in CASES])
def test_acceptance_required_or_exempt(name, cfdi, at, required, reason):
    verdict = acceptance(cfdi, at=at)
    assert (verdict.required, verdict.reason) == (required, reason)
    assert verdict.message.startswith("El receptor debe aceptar" if required else "No requiere aceptación")


@pytest.mark.parametrize(("issued", "window_ends"), [
    # Friday → the next business day is Monday: exempt until Monday ends.
    (dt.datetime(2026, 3, 6, 9, 0, tzinfo=MX), dt.datetime(2026, 3, 10, 0, 0, tzinfo=MX)),
    # Friday 13 March 2026 → Monday 16 is the third Monday of March (inhábil): Tuesday 17.
    (dt.datetime(2026, 3, 13, 9, 0, tzinfo=MX), dt.datetime(2026, 3, 18, 0, 0, tzinfo=MX)),
    # Wednesday before Easter 2026 (5 April): Holy Thursday and Friday are inhábiles → Monday 6 April.
    (dt.datetime(2026, 4, 1, 9, 0, tzinfo=MX), dt.datetime(2026, 4, 7, 0, 0, tzinfo=MX)),
    # 31 December → 1 January is inhábil → Friday 2 January 2026.
    (dt.datetime(2025, 12, 31, 9, 0, tzinfo=MX), dt.datetime(2026, 1, 3, 0, 0, tzinfo=MX)),
    # Late at night in UTC is still the same day in Zona Centro.
    (dt.datetime(2026, 3, 3, 5, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 4, 0, 0, tzinfo=MX)),
])
def test_the_next_business_day_skips_weekends_and_sats_holidays(issued, window_ends):
    assert next_business_day_end(issued) == window_ends


def test_sat_holidays_of_a_year():
    days = rules.sat_holidays(2030)
    assert {dt.date(2030, 1, 1), dt.date(2030, 2, 4), dt.date(2030, 3, 18), dt.date(2030, 5, 1),
            dt.date(2030, 5, 5), dt.date(2030, 9, 16), dt.date(2030, 10, 1), dt.date(2030, 11, 18),
            dt.date(2030, 12, 25), dt.date(2030, 4, 18), dt.date(2030, 4, 19)} == set(days)
    assert dt.date(2031, 10, 1) not in rules.sat_holidays(2031)  # only when the presidency changes hands


@pytest.mark.parametrize(("rfc", "last_day"), [
    ("EKU9003173C9", dt.date(2027, 3, 31)),  # persona moral: March of the next year
    ("CACX7605101P8", dt.date(2027, 4, 30)),  # persona física: April
])
def test_the_legal_deadline_is_the_annual_return_month_of_the_next_year(rfc, last_day):
    deadline = cancellation_deadline(issued_at=dt.datetime(2026, 12, 31, 23, 30, tzinfo=MX), emisor_rfc=rfc,
                                     tz="America/Mexico_City")
    assert deadline.last_day == last_day
    assert not deadline.passed(dt.datetime.combine(last_day, dt.time(23, 59), tzinfo=MX))
    assert deadline.passed(dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=MX))


def test_the_year_of_issuance_is_read_in_the_merchants_zone():
    # 1 January 2027 01:00 in UTC is still 31 December 2026 in Mexico City: a 2026 CFDI.
    issued = dt.datetime(2027, 1, 1, 1, 0, tzinfo=dt.UTC)
    assert cancellation_deadline(issued_at=issued, emisor_rfc="EKU9003173C9",
                                 tz="America/Mexico_City").last_day == dt.date(2027, 3, 31)
    assert cancellation_deadline(issued_at=issued, emisor_rfc="EKU9003173C9", tz="UTC").last_day == dt.date(2028, 3, 31)


def test_long_date_is_spanish():
    assert rules.long_date(dt.date(2027, 3, 31)) == "31 de marzo de 2027"
