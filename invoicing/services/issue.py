"""Issue a nominative invoice (ingreso) from one or more tickets of one merchant."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import fields
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from invoicing.cfdi.rfc import RFC_EXTRANJERO
from invoicing.errors import InvoicingError
from invoicing.lifecycle import FINAL
from invoicing.models import Invoice, InvoiceTicket
from invoicing.services.issue_write import MONEY_FIELDS, TicketValues, issued_invoice_write, tickets_read
from invoicing.services.receptor import ReceptorData, receptor_check, receptor_normalized
from invoicing.services.schedule import schedule_check, schedule_instant
from invoicing.stamp_queue import stamp_queue_wake_on_commit
from tickets import eligibility
from tickets.eligibility import ticket_eligibility
from tickets.models import Branch, Merchant, Ticket

MAX_TICKETS_PER_INVOICE = 50


def invoice_issue(*, merchant: Merchant, ticket_ids: list[int], receptor: ReceptorData, actor: str = "",
                  idempotency_key: str | None = None, enforce_deadline: bool = True, language: str = "",
                  issue_at: dt.datetime | None = None) -> Invoice:
    """Tie the tickets to a new pending invoice (one guarded write) and queue its stamping after commit.

    With ``issue_at`` in the future the invoice is ``scheduled`` instead: it holds the tickets, and is numbered
    and stamped from that time on (services/schedule.py, which says which instants are accepted).

    A ticket belongs to at most one live ingreso: its status moves open → invoiced here, guarded, so two
    concurrent requests for one ticket produce exactly one invoice. ``enforce_deadline`` is on for shoppers
    (the self-invoicing window) and off for the merchant's own API calls.

    With an ``idempotency_key`` (the API's Idempotency-Key header, the portal's confirmation) every request with
    that key and the same tickets and receptor data answers with the one invoice, also the ones racing it;
    the same key with other tickets or data is ``idempotency_key_reused`` (422). Without a key a request for a
    ticket that is already invoiced, concurrent or not, is ``ticket_already_invoiced`` (409) naming the invoice
    that holds it: a request without a key asks for a new invoice, and a POS that wants retries to be safe sends
    the key.
    """
    receptor = receptor_normalized(receptor)

    def issue() -> Invoice:
        receptor_check(receptor)
        return _issue(merchant=merchant, ticket_ids=ticket_ids, receptor=receptor, actor=actor,
                      idempotency_key=idempotency_key, enforce_deadline=enforce_deadline, language=language,
                      issue_at=issue_at)

    return idempotent_issue(merchant=merchant, ticket_ids=ticket_ids, receptor=receptor,
                            idempotency_key=idempotency_key, issue=issue, issue_at=issue_at)


def idempotent_issue(*, merchant: Merchant, ticket_ids: list[int], receptor: ReceptorData,
                     idempotency_key: str | None, issue: Callable[[], Invoice],
                     issue_at: dt.datetime | None = None) -> Invoice:
    """``issue()``, unless the key already made the invoice: then that invoice (or ``idempotency_key_reused``).

    ``issue`` stores the key on the invoice in the write that takes the tickets, so a request that lost the race
    to its twin (refused: the tickets are no longer open; or the key's unique index) finds the twin's invoice
    when it looks again. Every path that issues a nominative invoice for a key (invoice_issue, the late
    request) goes through here. ``receptor`` is normalised (``receptor_normalized``).
    """
    if not idempotency_key:
        return issue()
    existing = invoice_by_idempotency_key(merchant=merchant, key=idempotency_key, ticket_ids=ticket_ids,
                                          receptor=receptor, issue_at=issue_at)
    if existing is not None:
        return existing
    try:
        return issue()
    except (InvoicingError, IntegrityError):
        existing = invoice_by_idempotency_key(merchant=merchant, key=idempotency_key, ticket_ids=ticket_ids,
                                              receptor=receptor, issue_at=issue_at)
        if existing is not None:
            return existing
        raise


def invoice_by_idempotency_key(*, merchant: Merchant, key: str, ticket_ids: list[int],
                               receptor: ReceptorData, issue_at: dt.datetime | None = None) -> Invoice | None:
    """The merchant's invoice made with ``key`` if it was made from these tickets and this (normalised)
    receptor; None when the key is unused; ``idempotency_key_reused`` (422) naming what differs otherwise."""
    invoice = Invoice.objects.filter(merchant=merchant, idempotency_key=key).first()
    if invoice is None:
        return None
    differs = []
    if sorted(invoice.ticket_links.values_list("ticket_id", flat=True)) != sorted(set(ticket_ids)):
        differs.append("ticket_ids")
    stored = invoice_receptor(invoice)
    differs += [f"receptor.{name}" for name in RECEPTOR_FIELDS
                if _comparable(getattr(stored, name)) != _comparable(getattr(receptor, name))]
    if invoice.issue_at != issue_at:
        differs.append("issue_at")
    if differs:
        raise InvoicingError(
            "idempotency_key_reused",
            "La llave de idempotencia ya se usó para una factura con otros tickets o con otros datos del receptor.",
            {"invoice_id": invoice.pk, "fields": differs},
            status=422,
        )
    return invoice


RECEPTOR_FIELDS = tuple(f.name for f in fields(ReceptorData))


def invoice_receptor(invoice: Invoice) -> ReceptorData:
    """The receptor as it was asked for (normalised): a foreigner's postal code is the invoice's, not theirs."""
    foreign = invoice.receptor_rfc == RFC_EXTRANJERO
    return ReceptorData(rfc=invoice.receptor_rfc, name=invoice.receptor_name,
                        tax_regime=invoice.receptor_tax_regime,
                        postal_code="" if foreign else invoice.receptor_postal_code,
                        cfdi_use=invoice.receptor_cfdi_use, emails=tuple(invoice.receptor_emails),
                        foreign_country=invoice.receptor_country, foreign_tax_id=invoice.receptor_tax_id)


def receptor_postal_code(receptor: ReceptorData, branch_id: int) -> str:
    """DomicilioFiscalReceptor: the receptor's own, or for a foreigner the issuing branch's (CFDI40149)."""
    if receptor.rfc == RFC_EXTRANJERO:
        return Branch.objects.values_list("postal_code", flat=True).get(pk=branch_id)
    return receptor.postal_code


def _comparable(value):
    # The order emails were listed in is not a different request.
    return sorted(value) if isinstance(value, tuple | list) else value


def live_invoice_id(ticket_id: int) -> int | None:
    """The nominative invoice holding the ticket (not failed, not cancelled); a refusal names it."""
    return (InvoiceTicket.objects.filter(ticket_id=ticket_id, invoice__kind=Invoice.Kind.INGRESO)
            .exclude(invoice__status__in=FINAL)
            .order_by("-invoice_id").values_list("invoice_id", flat=True).first())


ISSUE_ATTEMPTS = 3


def _issue(*, merchant, ticket_ids, receptor, actor, idempotency_key, enforce_deadline, language="",
           issue_at=None) -> Invoice:
    ids = sorted(set(ticket_ids))
    if not ids:
        raise InvoicingError("no_tickets", "Indica al menos un ticket para facturar.", status=422)
    if len(ids) > MAX_TICKETS_PER_INVOICE:
        raise InvoicingError("too_many_tickets",
                             f"Una factura puede incluir hasta {MAX_TICKETS_PER_INVOICE} tickets.", status=422)
    scheduled = schedule_instant(issue_at)  # None: now (also for an instant a few minutes past)
    # Read and check, then write guarded (services/issue_write.py): if a ticket changed in between, nothing is
    # written and the next read says what changed. Inside a caller's transaction, a savepoint keeps a failed
    # write (a raced Idempotency-Key) from breaking it; on its own the write needs no transaction of ours.
    for _ in range(ISSUE_ATTEMPTS):
        tickets = tickets_read(merchant_id=merchant.pk, ids=ids)
        _check(merchant, ids, tickets, enforce_deadline=enforce_deadline)
        if scheduled:
            schedule_check(merchant=merchant, ticket_ids=ids, issue_at=scheduled)
        invoice = _new_invoice(merchant, tickets, receptor, idempotency_key, issue_at=issue_at,
                               scheduled=bool(scheduled))
        invoice.language = language
        with transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext():
            # A scheduled invoice takes its folio at its time (services/schedule.py): withdrawn, it used none.
            written = issued_invoice_write(invoice, tickets, actor=actor, allocate_folio=not scheduled)
        if written:
            break
    else:
        raise InvoicingError("tickets_busy", "Los tickets están cambiando en este momento; intenta de nuevo.",
                             status=409)
    if not scheduled:
        stamp_queue_wake_on_commit()  # the invoice waits in the stamping queue (invoicing/stamp_queue.py)
    return invoice


def _check(merchant: Merchant, ids: list[int], tickets: list[TicketValues], *, enforce_deadline: bool) -> None:
    if len(tickets) != len(ids):
        raise InvoicingError("ticket_not_found", "No encontramos uno de los tickets.", status=404)
    now = timezone.now()
    for ticket in tickets:
        verdict = ticket_eligibility(ticket, merchant=merchant, now=now, enforce_deadline=enforce_deadline)
        if verdict.code in (eligibility.GLOBALIZED, eligibility.LATE_REQUEST):
            # Taking a ticket out of a global is late_request_issue's job; this service only takes open ones.
            raise InvoicingError("ticket_in_global_invoice",
                                 f"El ticket {ticket.number} ya está incluido en la factura global.",
                                 {"ticket_id": ticket.pk})
        if not verdict.ok:
            details = {"ticket_id": ticket.pk, **verdict.details}
            if verdict.code == eligibility.INVOICED:
                details["invoice_id"] = live_invoice_id(ticket.pk)
            raise InvoicingError(verdict.error_code, verdict.message, details)
    currencies = sorted({t.currency for t in tickets})
    if len(currencies) > 1:
        raise InvoicingError(
            "mixed_currencies",
            f"Los tickets están en monedas distintas ({', '.join(currencies)}): un CFDI lleva una sola moneda y un "
            "solo tipo de cambio. Factúralos por separado, una factura por moneda.",
            {"currencies": currencies}, status=422)
    invoice_concepts_check(sum(t.lines for t in tickets))


def invoice_concepts_check(concepts: int) -> None:
    """Every path that issues a nominative invoice calls this: one CFDI holds at most INVOICE_MAX_CONCEPTS
    concepts (one per ticket line), so that its PDF renders and its delivery ends well inside a task's time."""
    cap = settings.INVOICE_MAX_CONCEPTS
    if concepts > cap:
        raise InvoicingError(
            "too_many_concepts",
            f"Una factura admite hasta {cap:,} conceptos y estos tickets suman {concepts:,}: "
            "factúralos en varias facturas.",
            {"concepts": concepts, "max_concepts": cap},
            status=400,
        )


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
                 idempotency_key: str | None, *, issue_at: dt.datetime | None = None,
                 scheduled: bool = False) -> Invoice:
    # The invoice is issued where the largest sale happened (its postal code becomes LugarExpedicion).
    main = max(tickets, key=lambda t: (t.total, -t.pk))
    totals = {name: sum((getattr(t, name) for t in tickets), Decimal(0)) for name in MONEY_FIELDS}
    return Invoice(
        merchant=merchant,
        branch_id=main.branch_id,
        kind=Invoice.Kind.INGRESO,
        status=Invoice.Status.SCHEDULED if scheduled else Invoice.Status.PENDING,
        issue_at=issue_at,
        serie=main.serie,
        idempotency_key=idempotency_key,
        receptor_rfc=receptor.rfc,
        receptor_name=receptor.name,
        receptor_tax_regime=receptor.tax_regime,
        receptor_postal_code=receptor_postal_code(receptor, main.branch_id),
        receptor_cfdi_use=receptor.cfdi_use,
        receptor_emails=list(receptor.emails),
        receptor_country=receptor.foreign_country,
        receptor_tax_id=receptor.foreign_tax_id,
        currency=main.currency,
        exchange_rate=exchange_rate_of(tickets),
        payment_form=main.payment_form,
        payment_method="PUE",
        **totals,
    )
