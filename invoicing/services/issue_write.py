"""How a nominative invoice being issued reaches the database: the invoice row, its ticket links, the tickets
moved to ``invoiced``, the event rows, and the folio.

On PostgreSQL all of it is one statement (data-modifying CTEs), the transaction's last: every shopper's
"Facturar" pays for it, and five statements cost five round trips, five parses and plans, and a second
version of the invoice row (with every index entry) for the folio written after the insert. The serie's
counter is updated inside that statement, so its lock is held only from there to the commit and folios stay
gap-free. Elsewhere (SQLite, the zero-set-up demo) the ORM writes the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from invoicing.folios import folio_next
from invoicing.models import FolioCounter, Invoice, InvoiceTicket
from tickets.bulk import insert_sql
from tickets.models import Event, Ticket


def issued_invoice_write(invoice: Invoice, tickets: Sequence, *, now: datetime, actor: str) -> None:
    """Store the unsaved ``invoice`` holding ``tickets`` (locked rows with ``pk``, ``status`` and ``total``);
    sets its ``pk`` and ``folio``. Call it inside the transaction, last."""
    if connection.vendor == "postgresql":
        _write_one_statement(invoice, tickets, now=now, actor=actor)
    else:
        _write_orm(invoice, tickets, now=now, actor=actor)


def _ticket_reason(invoice_pk) -> str:
    return f"factura #{invoice_pk}"


def _invoice_reason(tickets: Sequence) -> str:
    return f"{len(tickets)} ticket(s)"


def _write_orm(invoice: Invoice, tickets: Sequence, *, now: datetime, actor: str) -> None:
    invoice.save(force_insert=True)
    InvoiceTicket.objects.bulk_create(InvoiceTicket(invoice=invoice, ticket_id=t.pk, amount=t.total) for t in tickets)
    Ticket.objects.filter(pk__in=[t.pk for t in tickets], status=Ticket.Status.OPEN).update(
        status=Ticket.Status.INVOICED, updated_at=now)
    Event.objects.bulk_create(
        [Event(merchant_id=invoice.merchant_id, entity="ticket", object_id=t.pk, from_status=t.status,
               to_status=Ticket.Status.INVOICED, actor=actor, reason=_ticket_reason(invoice.pk)) for t in tickets]
        + [Event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk, from_status="",
                 to_status=invoice.status, actor=actor, reason=_invoice_reason(tickets))]
    )
    invoice.folio = folio_next(merchant_id=invoice.merchant_id, serie=invoice.serie)
    Invoice.objects.filter(pk=invoice.pk).update(folio=invoice.folio)


def _write_one_statement(invoice: Invoice, tickets: Sequence, *, now: datetime, actor: str) -> None:
    qn = connection.ops.quote_name
    counters, links = qn(FolioCounter._meta.db_table), qn(InvoiceTicket._meta.db_table)
    ticket_table, events = qn(Ticket._meta.db_table), qn(Event._meta.db_table)
    # A serie's first invoice finds no counter row: it is stored without a folio and numbered below.
    insert, insert_params = insert_sql(invoice, sql_values={"folio": "(SELECT folio FROM f)"})
    event_columns = "merchant_id, entity, object_id, from_status, to_status, actor, reason, data, created_at"
    sql = (
        f"WITH f AS (UPDATE {counters} SET next_folio = next_folio + 1 "  # noqa: S608
        "WHERE merchant_id = %s AND serie = %s RETURNING next_folio - 1 AS folio), "
        f"i AS ({insert} RETURNING id, folio), "
        f"l AS (INSERT INTO {links} (invoice_id, ticket_id, amount) "
        "SELECT i.id, t.id, t.amount FROM i, unnest(%s::bigint[], %s::numeric[]) AS t(id, amount)), "
        f"u AS (UPDATE {ticket_table} SET status = %s, updated_at = %s WHERE id = ANY(%s::bigint[]) AND status = %s), "
        f"e AS (INSERT INTO {events} ({event_columns}) "
        "SELECT %s, 'ticket', t.id, t.status, %s, %s, %s::text || i.id, '{}'::jsonb, %s "
        "FROM i, unnest(%s::bigint[], %s::text[]) AS t(id, status) "
        "UNION ALL SELECT %s, 'invoice', i.id, '', %s, %s, %s, '{}'::jsonb, %s FROM i) "
        "SELECT id, folio FROM i"
    )
    ids = [t.pk for t in tickets]
    params = [
        invoice.merchant_id, invoice.serie,
        *insert_params,
        ids, [t.total for t in tickets],
        Ticket.Status.INVOICED, now, ids, Ticket.Status.OPEN,
        invoice.merchant_id, Ticket.Status.INVOICED, actor, _ticket_reason(""), now, ids, [t.status for t in tickets],
        invoice.merchant_id, invoice.status, actor, _invoice_reason(tickets), now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        invoice.pk, invoice.folio = cursor.fetchone()
    invoice._state.adding = False
    if invoice.folio is None:
        invoice.folio = folio_next(merchant_id=invoice.merchant_id, serie=invoice.serie)  # creates the counter
        Invoice.objects.filter(pk=invoice.pk).update(folio=invoice.folio)
