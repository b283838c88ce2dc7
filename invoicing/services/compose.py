"""The CFDI (engine Comprobante) for a stored invoice of any kind: ingreso, global or egreso."""

from __future__ import annotations

from django.utils import timezone

from invoicing.cfdi import inputs as cfdi
from invoicing.cfdi.builder import build_egreso, build_global, build_ingreso
from invoicing.engine_inputs import engine_emisor, engine_receptor, engine_tickets, engine_tickets_by_invoice
from invoicing.models import Invoice, InvoiceRelation
from invoicing.services.refund import refund_engine_tickets
from tickets.models import Ticket
from tickets.zones import postal_info, zone_name


def _related(relations) -> tuple[cfdi.Related, ...]:
    by_type: dict[str, list[str]] = {}
    for relation_type, related_uuid in relations:
        by_type.setdefault(relation_type, []).append(str(related_uuid).upper())
    return tuple(cfdi.Related(kind, tuple(uuids)) for kind, uuids in by_type.items())


def issuing_zone(invoice: Invoice) -> str:
    """IANA zone of the invoice's LugarExpedicion (its branch's postal code; the merchant's zone if SAT's
    catalog does not know it)."""
    return zone_name(invoice.branch.postal_code, invoice.merchant.time_zone)


def border_vat_allowed(invoice: Invoice) -> bool:
    """May this invoice carry IVA at 8 %? The merchant applies the border-region stimulus and its branch's
    postal code is in the region per SAT's c_CodigoPostal (checked at ingestion too; this is the backstop)."""
    return invoice.merchant.border_region_stimulus and postal_info(invoice.branch.postal_code).border


def invoice_comprobante(invoice: Invoice, *, tickets=None, relations=None):
    """Build the engine document from the invoice's snapshot and its tickets (issued now).

    ``tickets`` (engine tickets) and ``relations`` ((TipoRelacion, UUID) pairs) are read here unless a caller
    that builds many documents at once (``comprobante_inputs``) passes them.
    """
    if tickets is None and invoice.kind == Invoice.Kind.EGRESO:
        tickets = _refunded(invoice.pk).get(invoice.pk)  # a refund's credit note carries what was refunded
    if tickets is None:
        tickets = engine_tickets(Ticket.objects.filter(invoice_links__invoice=invoice))
    if relations is None:
        relations = invoice.relations.order_by("pk").values_list("relation_type", "related_uuid")
    common = {
        "emisor": engine_emisor(invoice.merchant),
        "issued_at": timezone.now(),
        "lugar_expedicion": invoice.branch.postal_code,
        # Fecha is the local time of LugarExpedicion (RULES.md §1.1): the branch's zone, not the merchant's.
        "tz": issuing_zone(invoice),
        "serie": invoice.serie or None,
        "folio": str(invoice.folio) if invoice.folio else None,
        "related": _related(relations),
        "moneda": invoice.currency,
        "tipo_cambio": invoice.exchange_rate,
    }
    if invoice.kind == Invoice.Kind.GLOBAL:
        info = cfdi.GlobalInfo(invoice.global_periodicity, invoice.global_months, invoice.global_year)
        return build_global(tickets, info=info, **common)
    if invoice.kind == Invoice.Kind.EGRESO:
        return build_egreso(tickets, receptor=engine_receptor(invoice), forma_pago=invoice.payment_form, **common)
    return build_ingreso(tickets, receptor=engine_receptor(invoice), **common)


def comprobante_inputs(invoice_ids: list[int]) -> tuple[dict[int, list], dict[int, list]]:
    """Tickets and relations of many invoices (a stamping batch) in three queries, for invoice_comprobante."""
    relations: dict[int, list] = {pk: [] for pk in invoice_ids}
    for invoice_id, relation_type, related_uuid in (
        InvoiceRelation.objects.filter(invoice_id__in=invoice_ids).order_by("pk")
        .values_list("invoice_id", "relation_type", "related_uuid")
    ):
        relations[invoice_id].append((relation_type, related_uuid))
    tickets = engine_tickets_by_invoice(invoice_ids)
    tickets.update(_refunded(invoice_ids))  # a refund's credit note carries only what was refunded
    return tickets, relations


def _refunded(invoice_ids) -> dict[int, list]:
    return refund_engine_tickets(invoice_ids if isinstance(invoice_ids, list) else [invoice_ids])
