"""Factura global (RULES.md §2): select a closed period's open tickets, reserve them, queue the stamping.

Reservation: the tickets are locked FOR UPDATE in pk order (the order ``invoice_issue`` uses, so the two
never deadlock) with ``status = 'open'`` in the WHERE clause, and moved open → globalized in the same
transaction that creates the global(s) and takes their folios. PostgreSQL re-checks the WHERE clause of a row
it had to wait for, so a ticket a shopper invoiced meanwhile is simply not selected; a ticket the global took
first makes ``invoice_issue`` answer ``ticket_in_global_invoice``. Either way it ends in exactly one CFDI.
If a global fails for good, the stamping service gives its tickets back (globalized → open) and the scheduler
takes them again. See docs/global-invoice.md.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from infra.db.bulk import bulk_insert
from infra.events import record_event
from infra.models import Event
from invoicing.cfdi.inputs import NOMBRE_PUBLICO_GENERAL, RFC_PUBLICO_GENERAL
from invoicing.errors import InvoicingError
from invoicing.folios import folio_next
from invoicing.lifecycle import FINAL, invoice_created
from invoicing.models import GlobalPeriod, Invoice, InvoiceTicket
from invoicing.periods import (
    DEADLINE,
    Period,
    PeriodError,
    check_periodicity,
    effective_periodicity,
    period_parse,
)
from invoicing.stamp_queue import stamp_queue_wake_on_commit
from invoicing.webhooks.services import invoice_event_data, webhook_emit
from tickets.models import Branch, Merchant, Ticket
from tickets.zones import branch_zones, zone_name

ZERO = Decimal("0")
TICKET_FIELDS = ("id", "branch_id", "number", "sold_at", "currency", "exchange_rate", "payment_form", "subtotal",
                 "discount", "tax_total", "withheld_total", "total", "status")

_NOT_OPEN = {
    Ticket.Status.INVOICED: ("ticket_already_invoiced", "El ticket {number} ya fue facturado."),
    Ticket.Status.GLOBALIZED: ("ticket_in_global_invoice", "El ticket {number} ya está en una factura global."),
    Ticket.Status.VOID: ("ticket_void", "El ticket {number} fue cancelado en la tienda."),
}


def max_tickets() -> int:
    return int(getattr(settings, "GLOBAL_INVOICE_MAX_TICKETS", 5000))


@dataclass
class GlobalIssueResult:
    """What a run produced. Iterating it yields the invoices."""

    period: Period
    invoices: list[Invoice] = field(default_factory=list)
    included: list[int] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)  # {"ticket_id", "code", "message"}
    late: list[dict] = field(default_factory=list)  # {"invoice_id", "deadline", "message"}: issued past RMF 2.7.1.21

    def __iter__(self):
        return iter(self.invoices)

    def __len__(self):
        return len(self.invoices)


def merchant_period(merchant: Merchant, period: Period | str) -> Period:
    """A Period from text (in the merchant's periodicity) or checked as given; bad input → 422."""
    try:
        if isinstance(period, str):
            period = period_parse(period, effective_periodicity(merchant.global_periodicity, merchant.tax_regime))
        check_periodicity(period.periodicity, merchant.tax_regime)
    except PeriodError as exc:
        raise InvoicingError("invalid_period", str(exc), {"period": [str(exc)]}, status=422) from None
    return period


@dataclass(frozen=True)
class ZoneWindow:
    """A period in one time zone: the branches whose postal code is in that zone, and the period's instants there.

    A factura global is counted in the local time of its LugarExpedicion (the issuing branch's postal code,
    RULES.md §1.1/§8): a Tijuana branch's January ends at 00:00 of 1 February in Tijuana, two hours after
    Mexico City's.
    """

    zone: str
    branch_ids: tuple[int, ...]
    start: dt.datetime
    end: dt.datetime

    @property
    def deadline(self) -> dt.datetime:
        return self.end + DEADLINE

    def q(self) -> Q:
        return Q(branch_id__in=self.branch_ids, sold_at__gte=self.start, sold_at__lt=self.end)


def zone_windows(*, merchant: Merchant, period: Period, branch: Branch | None = None) -> list[ZoneWindow]:
    branches = [branch] if branch is not None else list(Branch.objects.filter(merchant=merchant).order_by("pk"))
    return [ZoneWindow(zone, tuple(b.pk for b in group), period.start(zone), period.end(zone))
            for zone, group in sorted(branch_zones(merchant, branches).items())]


def _in_windows(windows: list[ZoneWindow]) -> Q:
    q = Q(pk__in=[])
    for w in windows:
        q |= w.q()
    return q


def eligible_tickets(*, merchant: Merchant, period: Period, branch: Branch | None = None,
                     windows: list[ZoneWindow] | None = None):
    """Open tickets sold in the period (each branch's local time) that a global can carry."""
    if windows is None:
        windows = zone_windows(merchant=merchant, period=period, branch=branch)
    qs = Ticket.objects.filter(_in_windows(windows), merchant=merchant, status=Ticket.Status.OPEN)
    # Sales with withholdings cannot go in a global (RULES.md §2); a zero sale has no ValorUnitario > 0.
    return qs.filter(withheld_total=0, subtotal__gt=0)


def global_invoice_preview(*, merchant: Merchant, period: Period | str, branch: Branch | None = None) -> dict:
    """Count and totals of the eligible tickets, by branch and by payment form (admin preview, API)."""
    period = merchant_period(merchant, period)
    qs = eligible_tickets(merchant=merchant, period=period, branch=branch)
    totals = qs.aggregate(total=Sum("total"), subtotal=Sum("subtotal"), discount=Sum("discount"),
                          tax_total=Sum("tax_total"), withheld_total=Sum("withheld_total"))
    by_branch = list(qs.values("branch_id", "branch__code", "branch__name", "branch__postal_code")
                     .annotate(total=Sum("total")).order_by("branch__code"))
    for row in by_branch:
        row["count"] = qs.filter(branch_id=row["branch_id"]).count()
    by_form = list(qs.values("payment_form").annotate(total=Sum("total")).order_by("payment_form"))
    tz = merchant.tzinfo
    return {
        "period": period.key,
        "label": period.label,
        "periodicity": period.periodicity,
        "starts_at": period.start(tz),
        "ends_at": period.end(tz),
        "deadline": period.deadline(tz),
        "closed": period.is_closed(timezone.now(), tz),
        "count": qs.count(),
        "total": totals["total"] or ZERO,
        "subtotal": totals["subtotal"] or ZERO,
        "discount": totals["discount"] or ZERO,
        "tax_total": totals["tax_total"] or ZERO,
        "withheld_total": totals["withheld_total"] or ZERO,
        "by_branch": by_branch,
        "by_payment_form": by_form,
    }


def _group_branches(merchant: Merchant) -> dict[int, Branch]:
    """Which branch issues the global of each branch's tickets: itself, or with grouping "merchant" the first
    branch with the same postal code (one global per LugarExpedicion)."""
    branches = list(Branch.objects.filter(merchant=merchant).order_by("pk"))
    if merchant.global_grouping != Merchant.GlobalGrouping.MERCHANT:
        return {b.pk: b for b in branches}
    first_by_cp: dict[str, Branch] = {}
    for b in branches:
        first_by_cp.setdefault(b.postal_code, b)
    return {b.pk: first_by_cp[b.postal_code] for b in branches}


def global_invoice_issue(*, merchant: Merchant, period: Period | str, branch: Branch | None = None,
                         ticket_ids: list[int] | None = None, actor: str = "",
                         now: dt.datetime | None = None) -> GlobalIssueResult:
    """Issue the global(s) of a closed period: one per issuing branch and currency, split above
    settings.GLOBAL_INVOICE_MAX_TICKETS. With ``ticket_ids`` only those, and the result says which tickets
    did not go in and why. Stamping is queued after commit; tickets are ``globalized`` from now on."""
    period = merchant_period(merchant, period)
    now = now or timezone.now()
    if branch is not None and branch.merchant_id != merchant.pk:
        raise InvoicingError("branch_not_found", "No existe esa sucursal.", status=404)
    windows = zone_windows(merchant=merchant, period=period, branch=branch)
    closed = [w for w in windows if now >= w.end]
    if not closed:
        first = min(windows, key=lambda w: w.end) if windows else None
        closes = timezone.localtime(first.end if first else period.end(merchant.tzinfo),
                                    ZoneInfo(first.zone) if first else merchant.tzinfo)
        raise InvoicingError("period_not_closed",
                             f"El periodo {period.label} aún no termina: cierra el {closes:%d/%m/%Y a las %H:%M} "
                             "(hora local de la sucursal).", {"period": period.key}, status=422)
    ids = None
    if ticket_ids is not None:
        ids = sorted({int(i) for i in ticket_ids})
        if not ids:
            raise InvoicingError("no_tickets", "Indica al menos un ticket.", status=422)
    with transaction.atomic():
        result = _issue(merchant=merchant, period=period, branch=branch, ids=ids, actor=actor, windows=windows,
                        now=now)
    return result


def _issue(*, merchant, period, branch, ids, actor, windows, now) -> GlobalIssueResult:
    result = GlobalIssueResult(period=period)
    closed = [w for w in windows if now >= w.end]
    qs = eligible_tickets(merchant=merchant, period=period, windows=closed)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    tickets = list(qs.select_for_update().order_by("pk").only(*TICKET_FIELDS))
    if ids is not None:
        result.excluded = _explain_excluded(merchant, period, branch, ids, {t.pk for t in tickets}, windows, now)
    if not tickets:
        return result
    issuer = _group_branches(merchant)
    # One global per issuing branch, currency and exchange rate: a CFDI has one Moneda and one TipoCambio, and
    # each foreign-currency sale keeps the rate of its own day (docs/global-invoice.md, "Currencies").
    groups: dict[tuple[int, str, Decimal | None], list[Ticket]] = defaultdict(list)
    for t in tickets:
        groups[(issuer[t.branch_id].pk, t.currency, t.exchange_rate)].append(t)
    gp = _global_period(merchant, period)
    size = max_tickets()
    for (_issuer_id, currency, rate), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                       str(kv[0][2]))):
        group.sort(key=lambda t: (t.sold_at, t.pk))
        issuing = issuer[group[0].branch_id]
        for start in range(0, len(group), size):
            chunk = group[start:start + size]
            invoice = _create_global(merchant=merchant, branch=issuing, currency=currency, exchange_rate=rate,
                                     period=period, tickets=chunk, actor=actor)
            result.invoices.append(invoice)
            result.included.extend(t.pk for t in chunk)
            late = _late_notice(merchant, invoice, period, issuing, now, actor)
            if late is not None:
                result.late.append(late)
    gp.invoices.add(*result.invoices)
    GlobalPeriod.objects.filter(pk=gp.pk).update(last_run_at=timezone.now())
    return result


def _global_period(merchant: Merchant, period: Period) -> GlobalPeriod:
    tz = merchant.tzinfo
    gp, _ = GlobalPeriod.objects.get_or_create(
        merchant=merchant, periodicity=period.periodicity, first_day=period.first,
        defaults={"last_day": period.last, "starts_at": period.start(tz), "ends_at": period.end(tz),
                  "deadline": period.deadline(tz)},
    )
    return gp


def _late_notice(merchant: Merchant, invoice: Invoice, period: Period, branch: Branch, now: dt.datetime,
                 actor: str) -> dict | None:
    """RMF 2.7.1.21: the global is due within 24 hours after its period closes (in the issuing branch's local
    time). Issuing it later is still better than never: it goes ahead, with an event the admin shows and a
    ``global_invoice.late`` webhook."""
    zone = zone_name(branch.postal_code, merchant.time_zone)
    deadline = period.deadline(zone)
    if now <= deadline:
        return None
    local = timezone.localtime(deadline, ZoneInfo(zone))
    hours = int((now - deadline).total_seconds() // 3600)
    message = (f"La factura global {invoice.serie}-{invoice.folio} ({period.label}, sucursal {branch.code}) se "
               f"emite fuera de plazo: debía timbrarse a más tardar el {local:%d/%m/%Y a las %H:%M} "
               f"(24 horas tras el cierre del periodo, regla 2.7.1.21 de la RMF); van {hours} hora(s) de retraso.")
    data = {"period": period.key, "deadline": deadline.isoformat(), "hours_late": hours, "branch": branch.code}
    record_event(merchant_id=merchant.pk, entity="invoice", object_id=invoice.pk, from_status=invoice.status,
                 to_status=invoice.status, actor=actor, reason=message, data={"late_global": True, **data})
    webhook_emit(merchant_id=merchant.pk, event="global_invoice.late",
                 data={**invoice_event_data(invoice), "late": data, "message": message})
    return {"invoice_id": invoice.pk, "deadline": deadline.isoformat(), "message": message}


def _create_global(*, merchant, branch, currency, exchange_rate, period, tickets, actor) -> Invoice:
    largest = max(tickets, key=lambda t: (t.total, -t.pk))  # FormaPago of the largest ticket (ties: first)
    sums = {name: sum((getattr(t, name) for t in tickets), ZERO)
            for name in ("subtotal", "discount", "tax_total", "total")}
    invoice = Invoice.objects.create(
        merchant=merchant,
        branch=branch,
        kind=Invoice.Kind.GLOBAL,
        serie=branch.global_serie,
        folio=folio_next(merchant_id=merchant.pk, serie=branch.global_serie),
        receptor_rfc=RFC_PUBLICO_GENERAL,
        receptor_name=NOMBRE_PUBLICO_GENERAL,
        receptor_tax_regime="616",
        receptor_postal_code=branch.postal_code,
        receptor_cfdi_use="S01",
        currency=currency,
        exchange_rate=exchange_rate,
        payment_form=largest.payment_form,
        payment_method="PUE",
        global_periodicity=period.periodicity,
        global_months=period.meses,
        global_year=period.year,
        **sums,
    )
    _attach_tickets(invoice, tickets, actor=actor, reason=f"factura global #{invoice.pk} ({period.label})")
    invoice_created(invoice, actor=actor, reason=f"factura global {period.label}: {len(tickets)} ticket(s)",
                    data={"period": period.key, "periodicity": period.periodicity})
    stamp_queue_wake_on_commit()
    return invoice


def _attach_tickets(invoice: Invoice, tickets: list[Ticket], *, actor: str, reason: str,
                    from_status: str = Ticket.Status.OPEN) -> None:
    """Link the tickets and move them to globalized in bulk (guarded: every one must still be ``from_status``)."""
    now = timezone.now()
    bulk_insert(InvoiceTicket, ("invoice_id", "ticket_id", "amount"), ((invoice.pk, t.pk, t.total) for t in tickets))
    if from_status != Ticket.Status.GLOBALIZED:
        moved = Ticket.objects.filter(invoice_links__invoice=invoice, status=from_status).update(
            status=Ticket.Status.GLOBALIZED, updated_at=now)
        if moved != len(tickets):  # cannot happen under the row locks; refuse rather than half-write
            raise InvoicingError("ticket_changed", "Un ticket cambió de estado mientras se generaba la global.")
    bulk_insert(
        Event,
        ("merchant_id", "entity", "object_id", "from_status", "to_status", "actor", "reason", "data", "created_at"),
        ((invoice.merchant_id, "ticket", t.pk, from_status, Ticket.Status.GLOBALIZED, actor, reason, "{}", now)
         for t in tickets),
    )


def _explain_excluded(merchant, period, branch, ids, taken: set[int], windows, now) -> list[dict]:
    found = {t.pk: t for t in Ticket.objects.filter(merchant=merchant, pk__in=ids).only(*TICKET_FIELDS)}
    by_branch = {pk: w for w in windows for pk in w.branch_ids}
    if branch is not None:  # tickets of other branches still get their own local day in the message
        others = [w for w in zone_windows(merchant=merchant, period=period)]
        by_branch = {pk: w for w in others for pk in w.branch_ids} | by_branch
    out = []
    for pk in ids:
        if pk in taken:
            continue
        t = found.get(pk)
        w = by_branch.get(t.branch_id) if t is not None else None
        if t is None:
            code, message = "ticket_not_found", "No existe ese ticket."
        elif t.status in _NOT_OPEN:
            code, message = _NOT_OPEN[t.status]
            message = message.format(number=t.number)
        elif w is None or not (w.start <= t.sold_at < w.end):
            local = timezone.localtime(t.sold_at, ZoneInfo(w.zone) if w else merchant.tzinfo)
            code = "ticket_outside_period"
            message = f"El ticket {t.number} es del {local:%d/%m/%Y}, fuera del periodo {period.label}."
        elif branch is not None and t.branch_id != branch.pk:
            code, message = "ticket_other_branch", f"El ticket {t.number} es de otra sucursal."
        elif now < w.end:
            code = "period_not_closed"
            message = (f"El periodo {period.label} aún no termina en la hora local de la sucursal del ticket "
                       f"{t.number}.")
        elif t.withheld_total:
            code = "ticket_with_withholdings"
            message = f"El ticket {t.number} tiene retenciones: no puede ir en una factura global."
        elif t.subtotal <= 0:
            code, message = "ticket_zero_amount", f"El ticket {t.number} no tiene importe."
        else:
            code, message = "ticket_busy", f"El ticket {t.number} se estaba facturando; inténtalo de nuevo."
        out.append({"ticket_id": pk, "code": code, "message": message})
    return out


def live_global_filter() -> Q:
    return Q(kind=Invoice.Kind.GLOBAL) & ~Q(status__in=FINAL)
