"""Translate our stored rows into the pure engine's inputs (invoicing/cfdi knows nothing of the ORM)."""

from __future__ import annotations

from decimal import Decimal

from invoicing.cfdi import inputs as cfdi
from invoicing.models import Certificate, Invoice
from tickets.models import Merchant, Ticket, TicketLine


def engine_tax(tax: dict) -> cfdi.LineTax:
    factor = tax.get("factor", "Tasa")
    rate = tax.get("rate")
    return cfdi.LineTax(tax.get("tax", "002"), factor, None if factor == "Exento" or rate is None else Decimal(rate))


def _engine_line(line: TicketLine) -> cfdi.TicketLine:
    # Stored as tickets.ingest.normalize documents: ``amount`` is the tax-inclusive amount before discounts,
    # ``discount`` the tax-inclusive discount (with its share of any ticket-level discount).
    return cfdi.TicketLine(
        description=line.description,
        quantity=line.quantity,
        unit_price=line.unit_price,
        clave_prod_serv=line.product_code,
        clave_unidad=line.unit_code,
        sku=line.sku or None,
        discount=line.discount,
        objeto_imp=line.tax_object,
        taxes=tuple(engine_tax(t) for t in line.taxes if not t.get("withheld")),
        amount=line.amount,
    )


def engine_ticket(ticket: Ticket, lines=None) -> cfdi.Ticket:
    lines = ticket.lines.all() if lines is None else lines
    return cfdi.Ticket(number=ticket.number, lines=tuple(_engine_line(line) for line in lines),
                       payment_form=ticket.payment_form, total=ticket.total)


def engine_tickets(tickets) -> list[cfdi.Ticket]:
    """Engine tickets for a queryset of tickets: two queries whatever their number (globals hold thousands)."""
    rows = list(tickets.only("pk", "number", "payment_form", "total").order_by("pk"))
    by_ticket: dict[int, list[TicketLine]] = {row.pk: [] for row in rows}
    for line in TicketLine.objects.filter(ticket__in=tickets.values("pk")).order_by("ticket_id", "position"):
        by_ticket[line.ticket_id].append(line)
    return [engine_ticket(row, by_ticket[row.pk]) for row in rows]


def engine_emisor(merchant: Merchant) -> cfdi.Emisor:
    return cfdi.Emisor(rfc=merchant.rfc, nombre=merchant.legal_name, regimen_fiscal=merchant.tax_regime)


def engine_receptor(invoice: Invoice) -> cfdi.Receptor:
    return cfdi.Receptor(
        rfc=invoice.receptor_rfc,
        nombre=invoice.receptor_name,
        domicilio_fiscal=invoice.receptor_postal_code,
        regimen_fiscal=invoice.receptor_tax_regime,
        uso_cfdi=invoice.receptor_cfdi_use,
    )


def engine_csd(certificate: Certificate, *, expected_rfc: str):
    from invoicing.cfdi.csd import load_csd

    return load_csd(bytes(certificate.cer_der), bytes(certificate.key_der), certificate.password,
                    expected_rfc=expected_rfc)
