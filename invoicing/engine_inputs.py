"""Translate our stored rows into the pure engine's inputs (invoicing/cfdi knows nothing of the ORM)."""

from __future__ import annotations

from decimal import Decimal

from invoicing.cfdi import inputs as cfdi
from invoicing.models import Certificate, Invoice
from tickets.models import Merchant, Ticket


def engine_tax(tax: dict) -> cfdi.LineTax:
    factor = tax.get("factor", "Tasa")
    rate = tax.get("rate")
    return cfdi.LineTax(tax.get("tax", "002"), factor, None if factor == "Exento" or rate is None else Decimal(rate))


def engine_ticket(ticket: Ticket) -> cfdi.Ticket:
    """Lines keep their printed, tax-inclusive prices and discounts; the engine solves base and taxes."""
    lines = tuple(
        cfdi.TicketLine(
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            clave_prod_serv=line.product_code,
            clave_unidad=line.unit_code,
            sku=line.sku or None,
            discount=line.discount,
            objeto_imp=line.tax_object,
            taxes=tuple(engine_tax(t) for t in line.taxes if not t.get("withheld")),
        )
        for line in ticket.lines.all()
    )
    return cfdi.Ticket(number=ticket.number, lines=lines, payment_form=ticket.payment_form, total=ticket.total)


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
