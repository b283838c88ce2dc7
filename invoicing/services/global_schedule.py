"""The factura global scheduler: every few minutes, per merchant and in its time zone, issue the globals of
closed periods that still have open tickets (backfilling any period missed while workers were down), and
alert when a period nears its 24-hour deadline without being stamped.

Coverage is read from the tickets, not from a calendar: a closed period is covered when none of its
eligible tickets is still ``open``. Running twice, or in two workers at once, cannot make two globals for
one ticket (the tickets are locked and moved to ``globalized`` in the issuing transaction). Tickets
uploaded late by a POS for an already-run period are picked up by the next pass.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Max, Min
from django.utils import timezone

from infra.events import record_event
from invoicing.errors import InvoicingError
from invoicing.models import GlobalPeriod, Invoice
from invoicing.periods import NAMES, Period, effective_periodicity, period_at
from invoicing.services.global_invoice import _global_period, eligible_tickets, global_invoice_issue
from invoicing.webhooks.services import global_deadline_alert_hook
from tickets.models import Branch, Merchant, Ticket
from tickets.zones import branch_zones

log = logging.getLogger(__name__)
RETRY_FAILED_AFTER = dt.timedelta(minutes=30)
ACTOR = "programador de facturas globales"

# Alert channels besides the Event row and the email: callables ``hook(merchant=, period=, payload=)``.
ALERT_HOOKS: list = [global_deadline_alert_hook]


def global_invoices_run(*, now: dt.datetime | None = None) -> dict:
    """One scheduler pass over every active merchant. Returns counts for the task log."""
    now = now or timezone.now()
    created = alerts = 0
    for merchant in Merchant.objects.filter(is_active=True).order_by("pk"):
        try:
            created += len(global_invoices_run_merchant(merchant=merchant, now=now))
            alerts += global_deadline_alerts(merchant=merchant, now=now)
        except Exception:  # one merchant's trouble must not stop the others; logged with its traceback
            log.exception("global invoices: merchant %s failed", merchant.pk)
    return {"invoices": created, "alerts": alerts}


def global_invoices_run_merchant(*, merchant: Merchant, now: dt.datetime | None = None) -> list[Invoice]:
    """Issue every due global of one merchant: each closed period, oldest first, that has open tickets."""
    now = now or timezone.now()
    periodicity = effective_periodicity(merchant.global_periodicity, merchant.tax_regime)
    invoices: list[Invoice] = []
    # Periods are counted in each branch's local time (its postal code's zone): one pass per zone.
    for zone, branches in sorted(branch_zones(merchant, Branch.objects.filter(merchant=merchant)).items()):
        tz = ZoneInfo(zone)
        cutoff = period_at(periodicity, now, tz).start(tz)  # the current (open) period starts here
        open_before = Ticket.objects.filter(merchant=merchant, status=Ticket.Status.OPEN, sold_at__lt=cutoff,
                                            branch__in=branches, withheld_total=0, subtotal__gt=0)
        oldest = open_before.aggregate(m=Min("sold_at"))["m"]
        while oldest is not None:
            period = period_at(periodicity, oldest, tz)
            gp = _global_period(merchant, period)
            if _may_run(gp, now):
                try:
                    invoices.extend(global_invoice_issue(merchant=merchant, period=period, actor=ACTOR, now=now))
                except InvoicingError as exc:
                    log.warning("global %s %s: %s", merchant.pk, period.key, exc.message)
            oldest = open_before.filter(sold_at__gte=period.end(tz)).aggregate(m=Min("sold_at"))["m"]
    return invoices


def _may_run(gp: GlobalPeriod, now: dt.datetime) -> bool:
    """A period whose globals keep failing (no CSD, bad data) is retried a few times, then left to a person."""
    failed = gp.invoices.filter(status=Invoice.Status.FAILED).aggregate(n=Max("pk"), at=Max("updated_at"))
    if failed["n"] is None:
        return True
    attempts = gp.invoices.filter(status=Invoice.Status.FAILED).count()
    limit = int(getattr(settings, "GLOBAL_INVOICE_AUTO_ATTEMPTS", 3))
    return attempts < limit and now - failed["at"] >= RETRY_FAILED_AFTER


def period_unstamped(gp: GlobalPeriod) -> dict:
    """What keeps a period from being done: open tickets, and globals not stamped yet (or failed)."""
    merchant = gp.merchant
    period = Period(gp.first_day, gp.last_day, gp.periodicity)
    return {
        "open_tickets": eligible_tickets(merchant=merchant, period=period).count(),
        "in_progress": gp.invoices.filter(status__in=(Invoice.Status.PENDING, Invoice.Status.SEALED)).count(),
        "failed": gp.invoices.filter(status=Invoice.Status.FAILED).count(),
    }


def global_deadline_alerts(*, merchant: Merchant, now: dt.datetime | None = None) -> int:
    """Alert once per period that is within GLOBAL_INVOICE_ALERT_HOURS of its deadline (or past it) and not
    fully stamped: an Event row (admin), an email to the merchant's contact, and the ALERT_HOOKS. Periods whose
    deadline passed before the merchant was created get none."""
    now = now or timezone.now()
    window = dt.timedelta(hours=int(getattr(settings, "GLOBAL_INVOICE_ALERT_HOURS", 6)))
    sent = 0
    # A deadline that passed before the merchant was on this system (its history loaded afterwards, as the demo's
    # is) was not ours to meet: its globals are issued, without an alarm about a lateness nobody can undo.
    periods = GlobalPeriod.objects.filter(merchant=merchant, alerted_at__isnull=True, deadline__lte=now + window,
                                          deadline__gt=merchant.created_at)
    for gp in periods:
        state = period_unstamped(gp)
        if not state["open_tickets"] and not state["in_progress"]:
            continue
        if GlobalPeriod.objects.filter(pk=gp.pk, alerted_at__isnull=True).update(alerted_at=now) != 1:
            continue  # another worker sent it
        _alert(merchant, gp, state, now)
        sent += 1
    return sent


def _alert(merchant: Merchant, gp: GlobalPeriod, state: dict, now: dt.datetime) -> None:
    tz = merchant.tzinfo
    deadline = timezone.localtime(gp.deadline, tz)
    past = gp.deadline <= now
    what = (f"la factura global {NAMES.get(gp.periodicity, '')} del {gp.first_day:%d/%m/%Y} al "
            f"{gp.last_day:%d/%m/%Y}")
    reason = (f"{'Venció' if past else 'Está por vencer'} el plazo para timbrar {what} "
              f"({deadline:%d/%m/%Y %H:%M}): {state['open_tickets']} ticket(s) sin factura global, "
              f"{state['in_progress']} global(es) en proceso, {state['failed']} rechazada(s).")
    payload = {"period": f"{gp.first_day.isoformat()}..{gp.last_day.isoformat()}", "periodicity": gp.periodicity,
               "deadline": gp.deadline.isoformat(), **state}
    record_event(merchant_id=merchant.pk, entity="global_period", object_id=gp.pk, from_status="",
                 to_status="deadline_alert", actor=ACTOR, reason=reason, data=payload)
    if merchant.contact_email:
        send_mail(f"Factura global pendiente: {gp.first_day:%d/%m/%Y}–{gp.last_day:%d/%m/%Y}",
                  reason + "\n\nRevísala en la administración, sección «Periodos de factura global».",
                  None, [merchant.contact_email], fail_silently=True)
    for hook in ALERT_HOOKS:
        try:
            hook(merchant=merchant, period=gp, payload=payload)
        except Exception:  # an alert channel failing must not stop the others
            log.exception("global deadline alert hook %r failed", hook)
