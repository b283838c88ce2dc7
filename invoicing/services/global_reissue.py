"""A factura global cancelled for late requests (motivo 04), issued again without their tickets.

The cancellation service calls it in the transaction that records the global as cancelled; it is apart from
invoicing/services/late_request.py, which calls the cancellation service, so neither module imports the other.
"""

from __future__ import annotations

from invoicing.folios import folio_next
from invoicing.lifecycle import invoice_created
from invoicing.models import Invoice, InvoiceRelation, LateRequest
from invoicing.services.global_invoice import _attach_tickets
from invoicing.stamp_queue import stamp_queue_wake_on_commit
from tickets.models import Ticket

ACTOR = "solicitud tardía"


def global_cancelled(g: Invoice) -> Invoice | None:
    """Called by the cancellation service inside the transaction that records the global as cancelled (motivo
    04): the re-issued global is created there too, so there is never one without the other."""
    return _cancelled_and_reissued(g)


def _cancelled_and_reissued(g: Invoice) -> Invoice | None:
    """The global ``g`` (cancelled, locked by the caller) again, without the tickets of every late request
    waiting on it, relating the cancelled UUID with TipoRelacion 04."""
    waiting = list(LateRequest.objects.filter(status=LateRequest.Status.IN_PROGRESS, merchant_id=g.merchant_id,
                                              tickets__invoice_links__invoice=g).distinct())
    requested = set(LateRequest.tickets.through.objects.filter(laterequest__in=waiting)
                    .values_list("ticket_id", flat=True))
    keep = list(Ticket.objects.filter(invoice_links__invoice=g, status=Ticket.Status.GLOBALIZED)
                .exclude(pk__in=requested).order_by("sold_at", "pk"))
    if not keep:
        return None
    branch = g.branch
    new = Invoice.objects.create(
        merchant_id=g.merchant_id, branch=branch, kind=Invoice.Kind.GLOBAL, serie=branch.global_serie,
        folio=folio_next(merchant_id=g.merchant_id, serie=branch.global_serie),
        receptor_rfc=g.receptor_rfc, receptor_name=g.receptor_name, receptor_tax_regime=g.receptor_tax_regime,
        receptor_postal_code=g.receptor_postal_code, receptor_cfdi_use=g.receptor_cfdi_use, currency=g.currency,
        exchange_rate=g.exchange_rate, payment_form=max(keep, key=lambda t: (t.total, -t.pk)).payment_form, payment_method="PUE",
        global_periodicity=g.global_periodicity, global_months=g.global_months, global_year=g.global_year,
        subtotal=sum(t.subtotal for t in keep), discount=sum(t.discount for t in keep),
        tax_total=sum(t.tax_total for t in keep), total=sum(t.total for t in keep),
    )
    InvoiceRelation.objects.create(invoice=new, relation_type="04", related_uuid=g.uuid, related_invoice=g)
    _attach_tickets(new, keep, actor=ACTOR, reason=f"reexpedida en la global #{new.pk} (sustituye a #{g.pk})",
                    from_status=Ticket.Status.GLOBALIZED)
    for gp in g.global_periods.all():
        gp.invoices.add(new)
    for lr in waiting:
        lr.documents.add(new)
    invoice_created(new, actor=ACTOR,
                    reason=f"reexpedición de la global #{g.pk} sin {len(requested)} ticket(s) (TipoRelacion 04)")
    stamp_queue_wake_on_commit()
    return new
