"""The back office's home for a merchant's staff: the day and the month in figures, what needs attention, the next
factura global deadline, the CSD's expiry, the PAC's health over the last hour, and a daily chart.

Every figure is one indexed query (or a few), whatever the merchant's size: tickets are counted on
(merchant, status, sold_at) with every status named so PostgreSQL walks the index per status; invoices on
(merchant, status, created_at); the PAC's events on the partial (merchant, created_at) index of invoice events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from infra.models import Event
from invoicing.models import Certificate, Invoice
from invoicing.pdf import safe_color
from invoicing.periods import effective_periodicity, local_midnight, period_at
from invoicing.selectors import attention_categories, statuses
from invoicing.services.global_invoice import eligible_tickets
from tickets.models import Merchant, Ticket

ZERO = Decimal("0")
EXPIRING_HOURS = 72
ATTENTION_DAYS = 90  # an invoice older than this that still fails is history, not today's work
CHART_DAYS = 30
PAC_WINDOW = dt.timedelta(hours=1)
PAC_SAMPLE = 5000  # latest PAC answers read for the percentiles


@dataclass
class Figures:
    received: int = 0
    received_amount: Decimal = ZERO
    invoiced: int = 0
    invoiced_amount: Decimal = ZERO
    globalized: int = 0
    globalized_amount: Decimal = ZERO
    pending: int = 0
    pending_amount: Decimal = ZERO

    @property
    def share(self) -> Decimal | None:
        """Invoiced tickets as a percentage of the tickets received (None without tickets)."""
        return (Decimal(self.invoiced) * 100 / self.received).quantize(Decimal("0.1")) if self.received else None


def ticket_figures(merchant: Merchant, now: dt.datetime) -> dict[str, Figures]:
    """Today and this month (merchant's time zone, by sale date), in one query."""
    tz = merchant.tzinfo
    today = timezone.localtime(now, tz).date()
    day_start = local_midnight(today, tz)
    month_start = local_midnight(today.replace(day=1), tz)
    rows = (Ticket.objects.filter(merchant=merchant, status__in=Ticket.Status.values, sold_at__gte=month_start,
                                  sold_at__lt=now + dt.timedelta(days=1))
            .values("status")
            .annotate(month_n=Count("pk"), month_total=Sum("total"),
                      day_n=Count("pk", filter=Q(sold_at__gte=day_start)),
                      day_total=Sum("total", filter=Q(sold_at__gte=day_start)))
            .order_by())
    result = {"today": Figures(), "month": Figures()}
    field = {Ticket.Status.INVOICED: "invoiced", Ticket.Status.GLOBALIZED: "globalized", Ticket.Status.OPEN: "pending"}
    for row in rows:
        for key, prefix in (("today", "day"), ("month", "month")):
            figures = result[key]
            count, amount = row[f"{prefix}_n"], row[f"{prefix}_total"] or ZERO
            figures.received += count
            figures.received_amount += amount
            if name := field.get(row["status"]):
                setattr(figures, name, getattr(figures, name) + count)
                setattr(figures, f"{name}_amount", getattr(figures, f"{name}_amount") + amount)
    return result


def expiring_soon(merchant: Merchant, now: dt.datetime) -> int:
    """Open tickets whose self-invoicing window ends within EXPIRING_HOURS."""
    return Ticket.objects.filter(merchant=merchant, status=Ticket.Status.OPEN, expires_at__gte=now,
                                 expires_at__lt=now + dt.timedelta(hours=EXPIRING_HOURS)).count()


def attention_counts(merchant: Merchant, now: dt.datetime) -> list[dict]:
    """How many invoices of each "needs attention" kind (invoicing/selectors.py), in one query."""
    categories = attention_categories()
    involved = statuses("PENDING", "SEALED", "FAILED", "ON_HOLD", "HELD", "CANCELLING", "CANCEL_REQUESTED",
                        "CANCEL_PENDING", "CANCELLATION_REQUESTED", "CANCELLATION_PENDING", "CANCEL_REJECTED",
                        "CANCELLATION_REJECTED")
    counts = Invoice.objects.filter(merchant=merchant, status__in=involved,
                                    created_at__gte=now - dt.timedelta(days=ATTENTION_DAYS)).aggregate(
        **{key: Count("pk", filter=condition) for key, (_, condition) in categories.items()})
    return [{"key": key, "label": label, "count": counts[key] or 0, "filter": f"atencion:{key}"}
            for key, (label, _) in categories.items()]


def next_global_deadline(merchant: Merchant, now: dt.datetime) -> dict:
    """The deadline that comes next: the closed period still within its 24 hours, else the current period."""
    tz = merchant.tzinfo
    periodicity = effective_periodicity(merchant.global_periodicity, merchant.tax_regime)
    current = period_at(periodicity, now, tz)
    previous = current.previous()
    period = previous if now < previous.deadline(tz) else current
    closed = period.is_closed(now, tz)
    open_tickets = eligible_tickets(merchant=merchant, period=period).count()
    globals_ = Invoice.objects.filter(global_periods__merchant=merchant, global_periods__periodicity=periodicity,
                                      global_periods__first_day=period.first).aggregate(
        stamped=Count("pk", filter=Q(status=Invoice.Status.STAMPED)),
        in_progress=Count("pk", filter=Q(status__in=statuses("PENDING", "SEALED"))),
        failed=Count("pk", filter=Q(status__in=statuses("FAILED"))))
    # Open tickets of periods whose deadline already passed (the scheduler backfills them, late).
    overdue = Ticket.objects.filter(merchant=merchant, status=Ticket.Status.OPEN, withheld_total=0, subtotal__gt=0,
                                    sold_at__lt=period.start(tz)).exists()
    if not closed:
        state, tone = f"Periodo en curso: {open_tickets} ticket(s) sin factura hasta ahora.", "info"
    elif globals_["failed"] and not globals_["stamped"]:
        state, tone = "La global fue rechazada: revísala y genérala de nuevo.", "error"
    elif open_tickets:
        state, tone = f"Pendiente: {open_tickets} ticket(s) por incluir en la global.", "warning"
    elif globals_["in_progress"]:
        state, tone = "En timbrado.", "info"
    elif globals_["stamped"]:
        state, tone = "Timbrada.", "ok"
    else:
        state, tone = "Sin tickets que incluir.", "ok"
    deadline = period.deadline(tz)
    return {"label": period.label, "key": period.key, "deadline": deadline, "closed": closed,
            "hours_left": max(0, int((deadline - now).total_seconds() // 3600)), "open_tickets": open_tickets,
            "state": state, "tone": tone, "overdue": overdue, **globals_}


def certificate_status(merchant: Merchant, now: dt.datetime) -> dict | None:
    certificate = (Certificate.objects.filter(merchant=merchant, is_active=True)
                   .only("number", "valid_to").first())
    if certificate is None:
        return None
    days = (certificate.valid_to - now).days
    tone = "error" if days < 0 else "warning" if days <= 30 else "ok"
    return {"number": certificate.number, "valid_to": certificate.valid_to, "days": days, "tone": tone}


def _percentile(values: list[int], fraction: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def pac_health(merchant: Merchant, now: dt.datetime) -> dict:
    """From the stamping events of the last hour: each carries the PAC's answer time, and an error code when the
    PAC refused or failed (invoicing/services/stamping.py)."""
    rows = list(Event.objects.filter(merchant=merchant, entity="invoice", created_at__gte=now - PAC_WINDOW,
                                     data__has_key="pac_ms")
                .order_by("-created_at").values_list("data", flat=True)[:PAC_SAMPLE])
    latencies = [int(d["pac_ms"]) for d in rows if isinstance(d.get("pac_ms"), int | float)]
    errors = sum(1 for d in rows if d.get("pac_error"))
    rate = (Decimal(errors) * 100 / len(rows)).quantize(Decimal("0.1")) if rows else None
    tone = "ok" if not rows or (rate is not None and rate < 5) else "warning" if rate < 25 else "error"
    return {"calls": len(rows), "errors": errors, "error_rate": rate, "p50_ms": _percentile(latencies, 0.5),
            "p95_ms": _percentile(latencies, 0.95), "tone": tone}


def daily_series(merchant: Merchant, now: dt.datetime, days: int = CHART_DAYS) -> list[dict]:
    """Tickets sold and tickets invoiced per day of the last ``days`` days (merchant's time zone)."""
    tz = merchant.tzinfo
    today = timezone.localtime(now, tz).date()
    first = today - dt.timedelta(days=days - 1)
    rows = (Ticket.objects.filter(merchant=merchant, status__in=Ticket.Status.values,
                                  sold_at__gte=local_midnight(first, tz), sold_at__lt=now + dt.timedelta(days=1))
            .annotate(day=TruncDate("sold_at", tzinfo=tz)).values("day")
            .annotate(tickets=Count("pk"), invoiced=Count("pk", filter=Q(status=Ticket.Status.INVOICED)))
            .order_by("day"))
    by_day = {row["day"]: row for row in rows}
    series = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        row = by_day.get(day, {})
        series.append({"day": day, "tickets": row.get("tickets", 0), "invoiced": row.get("invoiced", 0)})
    return series


def chart_svg(series: list[dict], color: str = "#0B5FFF") -> str:
    """Bars of tickets (grey) with the invoiced ones over them (brand colour); inline SVG, no script."""
    width, height, pad, bottom = 720, 180, 28, 22
    peak = max([row["tickets"] for row in series] + [1])
    slot = (width - pad) / max(len(series), 1)
    bar = max(2.0, slot * 0.7)
    plot = height - bottom - 8

    def y(value):
        return height - bottom - plot * value / peak

    bars = []
    for index, row in enumerate(series):
        x = pad + index * slot + (slot - bar) / 2
        title = f"{row['day']:%d/%m}: {row['tickets']} ticket(s), {row['invoiced']} facturado(s)"
        bars.append((f"{x:.1f}", f"{y(row['tickets']):.1f}", f"{bar:.1f}", f"{plot * row['tickets'] / peak:.1f}",
                     f"{y(row['invoiced']):.1f}", f"{plot * row['invoiced'] / peak:.1f}", color, title))
    labels = [(f"{pad + i * slot + slot / 2:.1f}", height - 6, f"{row['day']:%d/%m}")
              for i, row in enumerate(series) if i % 5 == 0 or i == len(series) - 1]
    return format_html(
        '<svg class="dashboard-chart" role="img" viewBox="0 0 {} {}" width="100%" '
        'aria-label="Tickets y facturados por día"><title>Tickets y facturados por día</title>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#9ca3af"/>'
        '<text x="2" y="14" font-size="11" fill="#6b7280">{}</text>{}{}</svg>',
        width, height, pad, height - bottom, width, height - bottom, peak,
        format_html_join("", '<g><title>{7}</title><rect x="{0}" y="{1}" width="{2}" height="{3}" fill="#d1d5db"/>'
                             '<rect x="{0}" y="{4}" width="{2}" height="{5}" fill="{6}"/></g>', bars),
        format_html_join("", '<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#6b7280">{}</text>',
                         labels),
    )


def merchant_dashboard(merchant: Merchant, *, now: dt.datetime | None = None) -> dict:
    now = now or timezone.now()
    series = daily_series(merchant, now)
    return {
        "merchant": merchant,
        "now": now,
        "figures": ticket_figures(merchant, now),
        "expiring_soon": expiring_soon(merchant, now),
        "expiring_hours": EXPIRING_HOURS,
        "attention": attention_counts(merchant, now),
        "global_deadline": next_global_deadline(merchant, now),
        "certificate": certificate_status(merchant, now),
        "pac": pac_health(merchant, now),
        "series": series,
        "chart": chart_svg(series, safe_color(merchant.brand_color)),
    }
