"""Translate our stored rows into the pure engine's inputs (invoicing/cfdi knows nothing of the ORM)."""

from __future__ import annotations

from decimal import Decimal

from invoicing.cfdi import inputs as cfdi
from invoicing.cfdi.csd import load_csd
from invoicing.cfdi.rfc import RFC_EXTRANJERO
from invoicing.models import Certificate, Invoice, InvoiceTicket
from tickets.ingest.normalize import net_hint
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
        net=net_hint(line.quantity, line.unit_price, line.prices_include_tax, line.discount),
    )


def engine_ticket(ticket: Ticket, lines=None) -> cfdi.Ticket:
    lines = ticket.lines.all() if lines is None else lines
    return cfdi.Ticket(number=ticket.number, lines=tuple(_engine_line(line) for line in lines),
                       payment_form=ticket.payment_form, total=ticket.total)


_LINE_FIELDS = ("ticket_id", "description", "quantity", "unit_price", "product_code", "unit_code", "sku", "discount",
                "tax_object", "taxes", "amount", "prices_include_tax")


def _lines_by_ticket(lines) -> dict[int, list[cfdi.TicketLine]]:
    by_ticket: dict[int, list[cfdi.TicketLine]] = {}
    taxes_cache: dict[str, tuple[cfdi.LineTax, ...]] = {}
    for ticket_id, description, quantity, unit_price, product, unit, sku, discount, objeto, taxes, amount, include in (
        lines.order_by("ticket_id", "position").values_list(*_LINE_FIELDS)
    ):
        key = repr(taxes)  # a few distinct tax sets repeat over thousands of lines
        engine_taxes = taxes_cache.get(key)
        if engine_taxes is None:
            engine_taxes = taxes_cache[key] = tuple(engine_tax(t) for t in taxes if not t.get("withheld"))
        by_ticket.setdefault(ticket_id, []).append(cfdi.TicketLine(
            description=description, quantity=quantity, unit_price=unit_price, clave_prod_serv=product,
            clave_unidad=unit, sku=sku or None, discount=discount, objeto_imp=objeto, taxes=engine_taxes,
            amount=amount, net=net_hint(quantity, unit_price, include, discount),
        ))
    return by_ticket


def engine_tickets(tickets) -> list[cfdi.Ticket]:
    """Engine tickets for a queryset of tickets: two queries whatever their number (globals hold thousands),
    read as plain values: no model instances on this path."""
    rows = list(tickets.order_by("pk").values_list("pk", "number", "payment_form", "total"))
    lines = _lines_by_ticket(TicketLine.objects.filter(ticket__in=tickets.values("pk")))
    return [cfdi.Ticket(number=number, lines=tuple(lines.get(pk, ())), payment_form=payment_form, total=total)
            for pk, number, payment_form, total in rows]


def engine_tickets_by_invoice(invoice_ids) -> dict[int, list[cfdi.Ticket]]:
    """The engine tickets of many invoices at once (a stamping batch): two queries in all."""
    links = list(
        InvoiceTicket.objects.filter(invoice_id__in=invoice_ids).order_by("invoice_id", "ticket_id")
        .values_list("invoice_id", "ticket_id", "ticket__number", "ticket__payment_form", "ticket__total")
    )
    ticket_ids = InvoiceTicket.objects.filter(invoice_id__in=invoice_ids).values("ticket_id")
    lines = _lines_by_ticket(TicketLine.objects.filter(ticket_id__in=ticket_ids))
    by_invoice: dict[int, list[cfdi.Ticket]] = {pk: [] for pk in invoice_ids}
    for invoice_id, ticket_id, number, payment_form, total in links:
        by_invoice[invoice_id].append(cfdi.Ticket(number=number, lines=tuple(lines.get(ticket_id, ())),
                                                  payment_form=payment_form, total=total))
    return by_invoice


def engine_emisor(merchant: Merchant) -> cfdi.Emisor:
    return cfdi.Emisor(rfc=merchant.rfc, nombre=merchant.legal_name, regimen_fiscal=merchant.tax_regime)


def engine_receptor(invoice: Invoice) -> cfdi.Receptor:
    foreign = invoice.receptor_rfc == RFC_EXTRANJERO
    return cfdi.Receptor(
        rfc=invoice.receptor_rfc,
        nombre=invoice.receptor_name,
        # A foreigner's DomicilioFiscalReceptor is the LugarExpedicion (CFDI40149), i.e. the issuing branch's.
        domicilio_fiscal=invoice.branch.postal_code if foreign else invoice.receptor_postal_code,
        regimen_fiscal=invoice.receptor_tax_regime,
        uso_cfdi=invoice.receptor_cfdi_use,
        residencia_fiscal=invoice.receptor_country or None,
        num_reg_id_trib=invoice.receptor_tax_id or None,
    )


def engine_csd(certificate: Certificate, *, expected_rfc: str):
    return load_csd(bytes(certificate.cer_der), bytes(certificate.key_der), certificate.password,
                    expected_rfc=expected_rfc)
