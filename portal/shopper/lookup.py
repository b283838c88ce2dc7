"""Find a shopper's ticket and say precisely what can be done with it.

Misses answer one message whatever was wrong (anti-enumeration); "the total does not match" is said only
when the number and the date matched a ticket of this merchant, as the issue asks.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext
from django.utils.translation import gettext_noop as _

from invoicing.lifecycle import FINAL
from invoicing.models import Invoice
from tickets import eligibility
from tickets.models import Merchant, Ticket
from tickets.zones import branch_zone

NOT_FOUND = "not_found"
TOTAL_MISMATCH = "total_mismatch"
# A ticket that was found gets the eligibility verdict's code (tickets/eligibility.py) as its kind.
OK = eligibility.OK
EXPIRED = eligibility.EXPIRED
INVOICED = eligibility.INVOICED
VOID = eligibility.VOID
IN_GLOBAL = eligibility.GLOBALIZED
LATE_REQUEST = eligibility.LATE_REQUEST  # in a global, and the merchant's late-request policy applies

NOT_FOUND_MESSAGE = _(
    "No encontramos un ticket con esos datos. Revisa el número de ticket, el total y la fecha de compra "
    "tal como aparecen impresos en tu ticket."
)
TOTAL_MISMATCH_MESSAGE = _(
    "El total no coincide con el ticket. Escríbelo exactamente como aparece en el ticket, con centavos "
    "(por ejemplo 1234.50)."
)


@dataclass
class Outcome:
    kind: str
    message: str
    ticket: Ticket | None = None
    invoice: Invoice | None = None

    @property
    def can_invoice(self) -> bool:
        return self.kind in (OK, LATE_REQUEST)


def _local_day(merchant: Merchant, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = merchant.tzinfo
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


# Mexico's zones are within a few hours of each other: a day's window widened by this much in the merchant's
# zone holds every branch's local day, which is then checked exactly.
_ZONE_SLACK = dt.timedelta(hours=6)


def ticket_lookup(*, merchant: Merchant, number: str, total: Decimal, sold_on: dt.date,
                  branch_code: str | None = None) -> Outcome:
    start, end = _local_day(merchant, sold_on)
    candidates = Ticket.objects.filter(merchant=merchant, number=number, sold_at__gte=start - _ZONE_SLACK,
                                       sold_at__lt=end + _ZONE_SLACK)
    if branch_code is not None:
        candidates = candidates.filter(branch__code=branch_code)
    # The date printed on the receipt is the branch's local date (its postal code's zone).
    candidates = [t for t in candidates.select_related("branch__merchant")[:20]
                  if t.sold_at.astimezone(branch_zone(t.branch)).date() == sold_on][:10]
    if not candidates:
        return Outcome(NOT_FOUND, gettext(NOT_FOUND_MESSAGE))
    matching = [t for t in candidates if t.total == total]
    if not matching:
        return Outcome(TOTAL_MISMATCH, gettext(TOTAL_MISMATCH_MESSAGE))
    return ticket_outcome(merchant=merchant, ticket=matching[0])


def live_invoice(ticket: Ticket) -> Invoice | None:
    """The nominative invoice that holds ``ticket`` (not failed, not cancelled), if any."""
    return (
        Invoice.objects.filter(merchant_id=ticket.merchant_id, kind=Invoice.Kind.INGRESO, ticket_links__ticket=ticket)
        .exclude(status__in=FINAL)
        .order_by("-pk")
        .first()
    )


def ticket_outcome(*, merchant: Merchant, ticket: Ticket, now: dt.datetime | None = None) -> Outcome:
    """What the shopper may do with a ticket that is theirs (matched by its data or its receipt code)."""
    verdict = eligibility.ticket_eligibility(ticket, merchant=merchant, now=now)
    invoice = live_invoice(ticket) if verdict.code == INVOICED else None
    return Outcome(verdict.code, "" if verdict.code == OK else verdict.message, ticket, invoice)


def mask_email(email: str, shown: int = 2, tail: int = 0) -> str:
    """ka***@gmail.com: enough to recognise one's own address, not enough to harvest it. ``shown`` first
    characters of the local part (never all of it) and ``tail`` last ones are kept."""
    local, _, domain = email.partition("@")
    if not domain:
        return "***"
    shown = max(1, min(shown, len(local) - 1))
    end = local[len(local) - tail:] if 0 < tail <= len(local) - shown else ""
    return f"{local[:shown]}***{end}@{domain}"


def mask_emails(emails) -> list[str]:
    """Each address masked (``mask_email``) so that different addresses never read the same: where two masks
    collide, those show more of their local part (more first characters, then the last one) until they differ."""
    emails = list(dict.fromkeys(emails))
    longest = max((len(e.partition("@")[0]) for e in emails), default=0)
    levels = [(n, 0) for n in range(3, longest)] + [(n, 1) for n in range(1, longest)]
    masks = [mask_email(e) for e in emails]
    for shown, tail in levels:
        counts = Counter(masks)
        if max(counts.values()) == 1:
            break
        masks = [mask_email(e, shown, tail) if counts[m] > 1 else m for e, m in zip(emails, masks, strict=True)]
    return masks
