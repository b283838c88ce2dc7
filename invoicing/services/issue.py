"""Issue a nominative invoice (ingreso) from one or more tickets of one merchant."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from invoicing.cfdi.rfc import normalize_rfc
from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services.issue_write import MONEY_FIELDS, TicketValues, issued_invoice_write, tickets_read
from invoicing.services.receptor import receptor_check
from invoicing.stamp_queue import stamp_queue_wake_on_commit
from tickets.models import Merchant, Ticket

MAX_TICKETS_PER_INVOICE = 50


@dataclass(frozen=True)
class ReceptorData:
    rfc: str
    name: str
    tax_regime: str
    postal_code: str
    cfdi_use: str
    emails: tuple[str, ...] = field(default_factory=tuple)


_REFUSED = {
    Ticket.Status.INVOICED: ("ticket_already_invoiced", "El ticket {number} ya fue facturado."),
    Ticket.Status.GLOBALIZED: ("ticket_in_global_invoice", "El ticket {number} ya está incluido en la factura global."),
    Ticket.Status.VOID: ("ticket_void", "El ticket {number} fue cancelado en la tienda y no se puede facturar."),
}


def invoice_issue(*, merchant: Merchant, ticket_ids: list[int], receptor: ReceptorData, actor: str = "",
                  idempotency_key: str | None = None, enforce_deadline: bool = True) -> Invoice:
    """Tie the tickets to a new pending invoice (one guarded write) and queue its stamping after commit.

    A ticket belongs to at most one live ingreso: its status moves open → invoiced here, guarded, so two
    concurrent requests for one ticket produce exactly one invoice. ``enforce_deadline`` is on for shoppers
    (the self-invoicing window) and off for the merchant's own API calls.
    """
    if idempotency_key:
        existing = _by_idempotency_key(merchant, idempotency_key, ticket_ids)
        if existing:
            return existing
    receptor = receptor_normalized(receptor)
    receptor_check(receptor)
    try:
        return _issue(merchant=merchant, ticket_ids=ticket_ids, receptor=receptor, actor=actor,
                      idempotency_key=idempotency_key, enforce_deadline=enforce_deadline)
    except IntegrityError:
        # Two requests with the same Idempotency-Key raced; the loser answers with the winner's invoice.
        if idempotency_key:
            existing = _by_idempotency_key(merchant, idempotency_key, ticket_ids)
            if existing:
                return existing
        raise


def receptor_normalized(receptor: ReceptorData) -> ReceptorData:
    return ReceptorData(
        rfc=normalize_rfc(receptor.rfc or ""),
        name=" ".join((receptor.name or "").upper().split()),
        tax_regime=(receptor.tax_regime or "").strip(),
        postal_code=(receptor.postal_code or "").strip(),
        cfdi_use=(receptor.cfdi_use or "").strip().upper(),
        emails=tuple(e.strip().lower() for e in receptor.emails if e and e.strip()),
    )


def _by_idempotency_key(merchant: Merchant, key: str, ticket_ids: list[int]) -> Invoice | None:
    invoice = Invoice.objects.filter(merchant=merchant, idempotency_key=key).first()
    if invoice is None:
        return None
    if sorted(invoice.ticket_links.values_list("ticket_id", flat=True)) != sorted(set(ticket_ids)):
        raise InvoicingError(
            "idempotency_key_reused",
            "La llave de idempotencia ya se usó para otra factura con otros tickets.",
            {"invoice_id": invoice.pk},
            status=422,
        )
    return invoice


ISSUE_ATTEMPTS = 3


def _issue(*, merchant, ticket_ids, receptor, actor, idempotency_key, enforce_deadline) -> Invoice:
    ids = sorted(set(ticket_ids))
    if not ids:
        raise InvoicingError("no_tickets", "Indica al menos un ticket para facturar.", status=422)
    if len(ids) > MAX_TICKETS_PER_INVOICE:
        raise InvoicingError("too_many_tickets",
                             f"Una factura puede incluir hasta {MAX_TICKETS_PER_INVOICE} tickets.", status=422)
    # Read and check, then write guarded (services/issue_write.py): if a ticket changed in between, nothing is
    # written and the next read says what changed. Inside a caller's transaction, a savepoint keeps a failed
    # write (a raced Idempotency-Key) from breaking it; on its own the write needs no transaction of ours.
    for _ in range(ISSUE_ATTEMPTS):
        tickets = tickets_read(merchant_id=merchant.pk, ids=ids)
        _check(merchant, ids, tickets, enforce_deadline=enforce_deadline)
        invoice = _new_invoice(merchant, tickets, receptor, idempotency_key)
        with transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext():
            written = issued_invoice_write(invoice, tickets, actor=actor)
        if written:
            break
    else:
        raise InvoicingError("tickets_busy", "Los tickets están cambiando en este momento; intenta de nuevo.",
                             status=409)
    stamp_queue_wake_on_commit()  # the invoice waits in the stamping queue (invoicing/stamp_queue.py)
    return invoice


def _check(merchant: Merchant, ids: list[int], tickets: list[TicketValues], *, enforce_deadline: bool) -> None:
    if len(tickets) != len(ids):
        raise InvoicingError("ticket_not_found", "No encontramos uno de los tickets.", status=404)
    now = timezone.now()
    for ticket in tickets:
        if ticket.status in _REFUSED:
            code, message = _REFUSED[ticket.status]
            raise InvoicingError(code, message.format(number=ticket.number), {"ticket_id": ticket.pk})
        if enforce_deadline and ticket.expires_at < now:
            local = timezone.localtime(ticket.expires_at, merchant.tzinfo)
            raise InvoicingError(
                "ticket_expired",
                f"El plazo para facturar el ticket {ticket.number} venció el {local:%d/%m/%Y}.",
                {"ticket_id": ticket.pk, "expired_at": ticket.expires_at.isoformat()},
            )
    currencies = sorted({t.currency for t in tickets})
    if len(currencies) > 1:
        raise InvoicingError(
            "mixed_currencies",
            f"Los tickets están en monedas distintas ({', '.join(currencies)}): un CFDI lleva una sola moneda y un "
            "solo tipo de cambio. Factúralos por separado, una factura por moneda.",
            {"currencies": currencies}, status=422)


def exchange_rate_of(tickets: list[TicketValues]) -> Decimal | None:
    """The TipoCambio the invoice of these tickets carries (None for MXN). A CFDI has a single TipoCambio, so
    foreign-currency tickets sold at different rates cannot share one invoice."""
    if tickets[0].currency == "MXN":
        return None
    rates = sorted(set(Ticket.objects.filter(pk__in=[t.pk for t in tickets])
                       .values_list("exchange_rate", flat=True)), key=str)
    if len(rates) > 1:
        shown = ", ".join(f"{r:f}" if r is not None else "sin tipo de cambio" for r in rates)
        raise InvoicingError(
            "mixed_exchange_rates",
            f"Los tickets en {tickets[0].currency} se vendieron con tipos de cambio distintos ({shown}): un CFDI "
            "lleva un solo tipo de cambio. Factúralos por separado.", {"exchange_rates": [str(r) for r in rates]},
            status=422)
    return rates[0] if rates else None


def _new_invoice(merchant: Merchant, tickets: list[TicketValues], receptor: ReceptorData,
                 idempotency_key: str | None) -> Invoice:
    # The invoice is issued where the largest sale happened (its postal code becomes LugarExpedicion).
    main = max(tickets, key=lambda t: (t.total, -t.pk))
    totals = {name: sum((getattr(t, name) for t in tickets), Decimal(0)) for name in MONEY_FIELDS}
    return Invoice(
        merchant=merchant,
        branch_id=main.branch_id,
        kind=Invoice.Kind.INGRESO,
        serie=main.serie,
        idempotency_key=idempotency_key,
        receptor_rfc=receptor.rfc,
        receptor_name=receptor.name,
        receptor_tax_regime=receptor.tax_regime,
        receptor_postal_code=receptor.postal_code,
        receptor_cfdi_use=receptor.cfdi_use,
        receptor_emails=list(receptor.emails),
        currency=main.currency,
        exchange_rate=exchange_rate_of(tickets),
        payment_form=main.payment_form,
        payment_method="PUE",
        **totals,
    )
