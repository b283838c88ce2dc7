"""Period arithmetic: every periodicity across month ends, year ends and DST changes."""

import datetime as dt
import zoneinfo

import pytest

from invoicing.periods import (
    Period,
    PeriodError,
    check_periodicity,
    closed_periods,
    effective_periodicity,
    period_at,
    period_containing,
    period_parse,
)

D = dt.date
MX = "America/Mexico_City"
TIJUANA = "America/Tijuana"


def test_daily_period_is_the_local_day_and_closes_at_local_midnight():
    p = period_containing("01", D(2026, 12, 31))
    assert (p.first, p.last, p.meses, p.year) == (D(2026, 12, 31), D(2026, 12, 31), "12", 2026)
    assert p.next() == Period(D(2027, 1, 1), D(2027, 1, 1), "01")
    assert p.end(MX) == dt.datetime(2027, 1, 1, tzinfo=zoneinfo.ZoneInfo(MX))
    assert p.deadline(MX) - p.end(MX) == dt.timedelta(hours=24)


@pytest.mark.parametrize("day,first,last", [
    (D(2026, 3, 4), D(2026, 3, 2), D(2026, 3, 8)),      # a whole Monday–Sunday week
    (D(2026, 3, 31), D(2026, 3, 30), D(2026, 3, 31)),   # the week is cut at the month end…
    (D(2026, 4, 2), D(2026, 4, 1), D(2026, 4, 5)),      # …and resumes on the 1st
    (D(2026, 12, 31), D(2026, 12, 28), D(2026, 12, 31)),  # year end
    (D(2027, 1, 1), D(2027, 1, 1), D(2027, 1, 3)),
])
def test_weekly_period_never_straddles_two_months(day, first, last):
    p = period_containing("02", day)
    assert (p.first, p.last) == (first, last)
    assert p.first.month == p.last.month and p.meses == f"{p.first.month:02d}"


def test_weeks_chain_without_gaps_or_overlaps_through_a_year_end():
    p = period_containing("02", D(2026, 11, 20))
    seen = []
    while p.first < D(2027, 2, 1):
        seen.append(p)
        nxt = p.next()
        assert nxt.first == p.last + dt.timedelta(days=1)
        p = nxt
    assert all(x.first.month == x.last.month for x in seen)
    assert seen[-1].previous() == seen[-2]


@pytest.mark.parametrize("day,first,last", [
    (D(2026, 2, 15), D(2026, 2, 1), D(2026, 2, 15)),
    (D(2026, 2, 16), D(2026, 2, 16), D(2026, 2, 28)),
    (D(2028, 2, 29), D(2028, 2, 16), D(2028, 2, 29)),   # leap year
    (D(2026, 12, 31), D(2026, 12, 16), D(2026, 12, 31)),
])
def test_fortnight_is_first_to_fifteenth_or_sixteenth_to_month_end(day, first, last):
    p = period_containing("03", day)
    assert (p.first, p.last) == (first, last)


def test_monthly_and_bimonthly_meses():
    assert period_containing("04", D(2026, 2, 10)).meses == "02"
    assert [period_containing("05", D(2026, m, 1)).meses for m in range(1, 13)] == [
        "13", "13", "14", "14", "15", "15", "16", "16", "17", "17", "18", "18"]
    bim = period_containing("05", D(2026, 12, 31))
    assert (bim.first, bim.last, bim.next().first) == (D(2026, 11, 1), D(2026, 12, 31), D(2027, 1, 1))


def test_bimonthly_only_for_regimen_621():
    assert effective_periodicity("05", "621") == "05"
    assert effective_periodicity("05", "601") == "04"
    with pytest.raises(PeriodError, match="621"):
        check_periodicity("05", "612")


def _hours(period, tz):
    return (period.end(tz).astimezone(dt.UTC) - period.start(tz).astimezone(dt.UTC)) / dt.timedelta(hours=1)


def test_tijuana_dst_day_lasts_23_hours_but_is_one_daily_period():
    tz = zoneinfo.ZoneInfo(TIJUANA)
    p = period_containing("01", D(2026, 3, 8))  # US/Tijuana DST starts 2026-03-08 02:00
    assert _hours(p, TIJUANA) == 23
    # 23:30 local on the 7th is 07:30 UTC on the 8th: still the 7th in Tijuana.
    late_sale = dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC)
    assert period_at("01", late_sale, TIJUANA).first == D(2026, 3, 7)
    autumn = period_containing("01", D(2026, 11, 1))  # DST ends 2026-11-01 02:00
    assert _hours(autumn, tz) == 25
    assert _hours(autumn, MX) == 24  # Mexico City has no DST since 2022


def test_same_instant_falls_in_different_months_by_time_zone():
    # 2026-05-01 05:30 UTC is still April 30 in Tijuana (UTC-7) and Mexico City (UTC-6, no DST since 2022).
    moment = dt.datetime(2026, 5, 1, 6, 30, tzinfo=dt.UTC)
    assert period_at("04", moment, MX).meses == "05"
    assert period_at("04", moment, TIJUANA).meses == "04"


def test_closed_periods_lists_every_closed_period_since_a_moment():
    tz = zoneinfo.ZoneInfo(MX)
    since = dt.datetime(2026, 12, 30, 10, tzinfo=tz)
    now = dt.datetime(2027, 1, 2, 0, 5, tzinfo=tz)
    assert [p.first.day for p in closed_periods("01", since, now, MX)] == [30, 31, 1]
    assert closed_periods("04", since, now, MX) == [period_containing("04", D(2026, 12, 1))]


def test_period_parse_accepts_a_day_a_month_or_the_exact_range():
    assert period_parse("2026-03-04", "02").key == "2026-03-02..2026-03-08"
    assert period_parse("2026-03", "04").label == "marzo de 2026"
    assert period_parse("2026-03-30..2026-03-31", "02").last == D(2026, 3, 31)
    with pytest.raises(PeriodError, match="no es un periodo semanal"):
        period_parse("2026-03-30..2026-04-05", "02")
    with pytest.raises(PeriodError, match="AAAA-MM-DD"):
        period_parse("2026-03", "01")
    with pytest.raises(PeriodError):
        period_parse("ayer", "01")
    with pytest.raises(PeriodError, match="inválida"):
        period_parse("2026-02-30", "01")
