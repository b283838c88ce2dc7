"""The CFDI (engine Comprobante) for a stored invoice of any kind: ingreso, global or egreso."""

from __future__ import annotations

from django.utils import timezone

from invoicing.cfdi import inputs as cfdi
from invoicing.cfdi.builder import build_egreso, build_global, build_ingreso
from invoicing.engine_inputs import engine_emisor, engine_receptor, engine_tickets
from invoicing.models import Invoice
from tickets.models import Ticket


def _related(invoice: Invoice) -> tuple[cfdi.Related, ...]:
    by_type: dict[str, list[str]] = {}
    for relation in invoice.relations.order_by("pk"):
        by_type.setdefault(relation.relation_type, []).append(str(relation.related_uuid).upper())
    return tuple(cfdi.Related(kind, tuple(uuids)) for kind, uuids in by_type.items())


def invoice_comprobante(invoice: Invoice):
    """Build the engine document from the invoice's snapshot and its tickets (issued now)."""
    tickets = engine_tickets(Ticket.objects.filter(invoice_links__invoice=invoice))
    common = {
        "emisor": engine_emisor(invoice.merchant),
        "issued_at": timezone.now(),
        "lugar_expedicion": invoice.branch.postal_code,
        "tz": invoice.merchant.time_zone,
        "serie": invoice.serie or None,
        "folio": str(invoice.folio) if invoice.folio else None,
        "related": _related(invoice),
        "moneda": invoice.currency,
    }
    if invoice.kind == Invoice.Kind.GLOBAL:
        info = cfdi.GlobalInfo(invoice.global_periodicity, invoice.global_months, invoice.global_year)
        return build_global(tickets, info=info, **common)
    if invoice.kind == Invoice.Kind.EGRESO:
        return build_egreso(tickets, receptor=engine_receptor(invoice), forma_pago=invoice.payment_form, **common)
    return build_ingreso(tickets, receptor=engine_receptor(invoice), **common)
