"""Scheduled emission: an API invoice request with ``issue_at`` (docs/scheduled-emission.md).

The invoice is created ``scheduled``: it takes its tickets at once (they become ``invoiced``, so neither a shopper
nor a factura global can take them meanwhile) but no folio and no document. From ``issue_at`` on, the
every-minute schedule (``scheduled_invoices_release``) gives it its folio and moves it to ``pending``: the
stamping queue then builds, validates and seals it with the rules of that day, so the CFDI's Fecha is the
stamping time, never the request's. Before ``issue_at`` it can be withdrawn (``scheduled_invoice_withdraw``):
no CFDI, no folio consumed, its tickets free again for another invoice or the global.

When ``issue_at`` may be:
- in the past by at most ``PAST_TOLERANCE`` (clock skew of a point of sale): the invoice is issued now, as
  without ``issue_at``; further in the past: 400 ``issue_at_in_past``;
- before every ticket's self-invoicing deadline (``expires_at``, tickets/eligibility.py) and at least
  ``GLOBAL_MARGIN`` before the deadline of the factura global of the period the ticket was sold in (24 h after
  the period closes, RULES.md §2), so a sale is in a CFDI within SAT's time even if the scheduled invoice is
  withdrawn or fails at the last moment and its ticket goes into a global; otherwise 400 ``issue_at_too_late``.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from infra.events import transition
from invoicing.errors import InvoicingError
from invoicing.folios import folio_next
from invoicing.lifecycle import LIVE, invoice_transition
from invoicing.models import Invoice
from invoicing.periods import effective_periodicity, period_at
from invoicing.stamp_queue import stamp_queue_wake_on_commit
from tickets.eligibility import window_open
from tickets.models import Branch, Merchant, Ticket
from tickets.zones import branch_zone_name

log = logging.getLogger(__name__)

PAST_TOLERANCE = dt.timedelta(minutes=5)
GLOBAL_MARGIN = dt.timedelta(hours=1)
RELEASE_BATCH = 500
ACTOR = "emisión programada"


def _local(moment: dt.datetime, tz) -> str:
    return timezone.localtime(moment, tz).strftime("%d/%m/%Y %H:%M")


def schedule_instant(issue_at: dt.datetime | None, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """``issue_at`` if the invoice is to wait for it, None to issue now; refuses a naive or long-past instant."""
    if issue_at is None:
        return None
    if timezone.is_naive(issue_at):
        raise InvoicingError("validation_error", "«issue_at» debe incluir la zona horaria (p. ej. "
                             "2026-06-01T09:00:00-06:00).", {"issue_at": ["Falta la zona horaria."]}, status=400)
    now = now or timezone.now()
    if issue_at < now - PAST_TOLERANCE:
        raise InvoicingError(
            "issue_at_in_past",
            "La fecha programada (issue_at) ya pasó. Para facturar ahora, omite issue_at: la fecha del CFDI "
            "siempre es la del timbrado.",
            {"issue_at": [issue_at.isoformat()], "now": now.isoformat()}, status=400)
    return issue_at if issue_at > now else None


def schedule_limits(*, merchant: Merchant, ticket_ids: list[int]) -> dict[int, tuple[dt.datetime, str]]:
    """For each ticket: the last instant it may be issued at, and the Spanish reason (with that instant)."""
    periodicity = effective_periodicity(merchant.global_periodicity, merchant.tax_regime)
    tz = merchant.tzinfo
    rows = list(Ticket.objects.filter(merchant=merchant, pk__in=ticket_ids).values_list(
        "pk", "number", "sold_at", "expires_at", "branch_id", "withheld_total", "subtotal"))
    zones = {b.pk: branch_zone_name(b) for b in Branch.objects.filter(pk__in={r[4] for r in rows})
             .select_related("merchant")}
    limits = {}
    for pk, number, sold_at, expires_at, branch_id, withheld, subtotal in rows:
        limits[pk] = (expires_at, f"el plazo para facturar el ticket {number} termina el {_local(expires_at, tz)}")
        if withheld or subtotal <= 0:
            continue  # never goes into a factura global (global_schedule.py): only its own deadline counts
        zone = zones[branch_id]
        period = period_at(periodicity, sold_at, zone)
        deadline = period.deadline(zone)
        if deadline - GLOBAL_MARGIN < expires_at:
            limits[pk] = (deadline - GLOBAL_MARGIN,
                          f"el ticket {number} es del periodo de factura global «{period.label}», que debe quedar "
                          f"timbrado a más tardar el {_local(deadline, tz)}; la factura programada debe emitirse "
                          f"antes del {_local(deadline - GLOBAL_MARGIN, tz)} para dejar margen")
    return limits


def schedule_check(*, merchant: Merchant, ticket_ids: list[int], issue_at: dt.datetime) -> None:
    """400 ``issue_at_too_late`` when one of the tickets could not wait until ``issue_at``."""
    for pk, (limit, why) in sorted(schedule_limits(merchant=merchant, ticket_ids=ticket_ids).items()):
        if not window_open(limit, issue_at):
            raise InvoicingError(
                "issue_at_too_late",
                f"No se puede programar la factura para el {_local(issue_at, merchant.tzinfo)}: {why}. "
                "Prográmala antes o factúrala ahora (sin issue_at).",
                {"issue_at": [issue_at.isoformat()], "ticket_id": pk, "latest": limit.isoformat()}, status=400)


# --- due time --------------------------------------------------------------------------------------------------

def scheduled_invoices_release(*, now: dt.datetime | None = None, limit: int = RELEASE_BATCH) -> int:
    """The schedule's pass: every scheduled invoice whose time has come gets its folio and joins the stamping
    queue. Returns how many. Safe to run twice at once: each invoice is moved under its row lock, once."""
    now = now or timezone.now()
    ids = list(Invoice.objects.filter(status=Invoice.Status.SCHEDULED, issue_at__lte=now)
               .order_by("issue_at", "pk").values_list("pk", flat=True)[:limit])
    released = 0
    for pk in ids:
        try:
            released += _release(pk, now)
        except Exception:  # one invoice's trouble must not hold the others past their time
            log.exception("scheduled invoice %s could not be released", pk)
    return released


@transaction.atomic
def _release(pk: int, now: dt.datetime) -> bool:
    invoice = (Invoice.objects.select_for_update().filter(pk=pk, status=Invoice.Status.SCHEDULED, issue_at__lte=now)
               .first())
    if invoice is None:
        return False  # withdrawn, or released by another pass, meanwhile
    folio = folio_next(merchant_id=invoice.merchant_id, serie=invoice.serie)
    invoice_transition(invoice, expected=Invoice.Status.SCHEDULED, to=Invoice.Status.PENDING, actor=ACTOR,
                       reason=f"emisión programada para {_local(invoice.issue_at, invoice.merchant.tzinfo)}: "
                              f"a timbrado con folio {invoice.serie}-{folio}",
                       folio=folio, updated_at=timezone.now())
    stamp_queue_wake_on_commit()
    return True


# --- before it -------------------------------------------------------------------------------------------------

@transaction.atomic
def scheduled_invoice_withdraw(*, merchant: Merchant, invoice_id: int, actor: str = "") -> Invoice:
    """Cancel a scheduled invoice before its time: it becomes ``withdrawn`` (never a CFDI, no folio) and its
    tickets are open again. 404 for another merchant's invoice, 409 ``not_scheduled`` once it left ``scheduled``
    (from then on a stamped invoice is cancelled before SAT: invoicing/services/cancel.py)."""
    invoice = Invoice.objects.select_for_update().filter(merchant=merchant, pk=invoice_id).first()
    if invoice is None:
        raise InvoicingError("not_found", "No existe esa factura.", status=404)
    if invoice.status != Invoice.Status.SCHEDULED:
        raise InvoicingError(
            "not_scheduled",
            f"Solo se retira una factura programada que aún no se emite; esta está «{invoice.get_status_display()}»"
            + (". Si ya está timbrada, cancélala ante el SAT." if invoice.status == Invoice.Status.STAMPED else "."),
            {"status": invoice.status}, status=409)
    invoice_transition(invoice, expected=Invoice.Status.SCHEDULED, to=Invoice.Status.WITHDRAWN, actor=actor,
                       reason=f"emisión programada para {_local(invoice.issue_at, merchant.tzinfo)} retirada antes "
                              "de su hora; no se emitió CFDI", updated_at=timezone.now())
    # Its tickets go back to open, unless another live nominative invoice holds them (none should).
    others = Invoice.objects.filter(kind=invoice.kind, status__in=LIVE).exclude(pk=invoice.pk)
    for ticket in (Ticket.objects.select_for_update().filter(invoice_links__invoice=invoice,
                                                             status=Ticket.Status.INVOICED)
                   .exclude(invoice_links__invoice__in=others).order_by("pk")):
        transition(ticket, entity="ticket", expected=Ticket.Status.INVOICED, to=Ticket.Status.OPEN, actor=actor,
                   reason=f"factura programada #{invoice.pk} retirada", updated_at=timezone.now())
    return invoice
