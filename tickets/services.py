"""Ticket business logic: registration and the self-invoicing window."""

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from tickets.events import record_event
from tickets.models import Branch, Merchant, Ticket, TicketLine

CENT = Decimal("0.01")


def ticket_expires_at(*, merchant: Merchant, sold_at: dt.datetime) -> dt.datetime:
    """End of the self-invoicing window, computed in the merchant's time zone."""
    local = sold_at.astimezone(merchant.tzinfo)
    if merchant.self_invoice_window == Merchant.SelfInvoiceWindow.MONTH_END:
        last_day = calendar.monthrange(local.year, local.month)[1]
        end = local.replace(day=last_day, hour=23, minute=59, second=59, microsecond=0)
    else:
        end = (local + dt.timedelta(days=merchant.self_invoice_days)).replace(
            hour=23, minute=59, second=59, microsecond=0
        )
    # Re-attach the zone so a DST change between sale and deadline gets the right offset.
    return end.replace(tzinfo=None).replace(tzinfo=merchant.tzinfo)


@dataclass
class LineInput:
    product_code: str
    unit_code: str
    description: str
    quantity: Decimal
    unit_price: Decimal  # as printed (tax-inclusive when prices_include_tax)
    taxes: list[dict] = field(default_factory=lambda: [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}])
    discount: Decimal = Decimal("0")
    tax_object: str = "02"
    prices_include_tax: bool = True
    sku: str = ""


def _split_inclusive(amount: Decimal, taxes: list[dict]) -> tuple[Decimal, Decimal]:
    """Base and transferred tax of a tax-inclusive amount (rates only; enough for ticket headers)."""
    rate = sum(
        (Decimal(t["rate"]) for t in taxes if t.get("factor") == "Tasa" and not t.get("withheld")), Decimal("0")
    )
    base = amount / (1 + rate)
    return base, amount - base


@transaction.atomic
def ticket_create(*, merchant: Merchant, branch: Branch, number: str, sold_at: dt.datetime,
                  lines: list[LineInput], payment_form: str = "01", currency: str = "MXN",
                  source: str = Ticket.Source.ADMIN, actor: str = "") -> Ticket:
    """Create a ticket from tax-inclusive lines, as a POS prints it."""
    total = Decimal("0")
    base_sum = Decimal("0")
    discount_sum = Decimal("0")
    for line in lines:
        gross = line.quantity * line.unit_price
        charged = gross - line.discount
        base, _ = _split_inclusive(charged, line.taxes if line.tax_object == "02" else [])
        total += charged
        base_sum += base + line.discount
        discount_sum += line.discount
    total = total.quantize(CENT, ROUND_HALF_UP)
    subtotal = base_sum.quantize(CENT, ROUND_HALF_UP)
    discount = discount_sum.quantize(CENT, ROUND_HALF_UP)
    ticket = Ticket.objects.create(
        merchant=merchant,
        branch=branch,
        number=number,
        sold_at=sold_at,
        currency=currency,
        payment_form=payment_form,
        subtotal=subtotal,
        discount=discount,
        tax_total=total - subtotal + discount,
        total=total,
        expires_at=ticket_expires_at(merchant=merchant, sold_at=sold_at),
        source=source,
    )
    TicketLine.objects.bulk_create(
        TicketLine(
            ticket=ticket,
            position=i,
            product_code=line.product_code,
            unit_code=line.unit_code,
            sku=line.sku,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            prices_include_tax=line.prices_include_tax,
            discount=line.discount,
            tax_object=line.tax_object,
            taxes=line.taxes,
            amount=(line.quantity * line.unit_price - line.discount).quantize(Decimal("0.000001")),
        )
        for i, line in enumerate(lines, start=1)
    )
    record_event(merchant_id=merchant.pk, entity="ticket", object_id=ticket.pk, from_status="",
                 to_status=ticket.status, actor=actor, reason=f"registrado ({source})")
    return ticket
