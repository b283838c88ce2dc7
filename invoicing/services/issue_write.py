"""How a nominative invoice being issued meets the database: its tickets locked and read, then the invoice row,
its ticket links, the tickets moved to ``invoiced``, the event rows, and the folio.

On PostgreSQL all of it is one statement (data-modifying CTEs), the transaction's last: every shopper's
"Facturar" pays for it, and five statements cost five round trips, five parses and plans, and a second
version of the invoice row (with every index entry) for the folio written after the insert. The serie's
counter is updated inside that statement, so its lock is held only from there to the commit and folios stay
gap-free. Both statements are prepared (tickets/prepared.py). Elsewhere (SQLite, the zero-set-up demo) the ORM
does the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from django.db import connection

from invoicing.folios import folio_next
from invoicing.models import FolioCounter, Invoice, InvoiceTicket
from tickets.bulk import insert_sql
from tickets.models import Branch, Event, Ticket
from tickets.prepared import prepared_fetchall

MONEY_FIELDS = ("subtotal", "discount", "tax_total", "withheld_total", "total")


class LockedTicket(NamedTuple):
    pk: int
    status: str
    number: str
    expires_at: dt.datetime
    currency: str
    payment_form: str
    branch_id: int
    serie: str
    subtotal: Decimal
    discount: Decimal
    tax_total: Decimal
    withheld_total: Decimal
    total: Decimal


def tickets_lock(*, merchant_id: int, ids: list[int]) -> list[LockedTicket]:
    """Lock the merchant's tickets among ``ids`` (sorted) and read what an invoice needs of them.

    In id order, so two carts sharing tickets cannot deadlock. Plain values: every shopper's request takes this
    path, and model instances cost more here than the query."""
    if connection.vendor != "postgresql":
        rows = (Ticket.objects.select_for_update(of=("self",)).filter(merchant_id=merchant_id, pk__in=ids)
                .order_by("pk").values_list("pk", "status", "number", "expires_at", "currency", "payment_form",
                                            "branch_id", "branch__invoice_serie", *MONEY_FIELDS))
        return [LockedTicket(*row) for row in rows]
    qn = connection.ops.quote_name
    money = ", ".join(f"t.{name}" for name in MONEY_FIELDS)
    rows = prepared_fetchall(
        "SELECT t.id, t.status, t.number, t.expires_at, t.currency, t.payment_form, t.branch_id, b.invoice_serie, "
        f"{money} FROM {qn(Ticket._meta.db_table)} t JOIN {qn(Branch._meta.db_table)} b ON b.id = t.branch_id "  # noqa: S608
        "WHERE t.merchant_id = %s AND t.id = ANY(%s::bigint[]) ORDER BY t.id FOR UPDATE OF t",
        [merchant_id, ids],
    )
    return [LockedTicket(*row) for row in rows]


def issued_invoice_write(invoice: Invoice, tickets: Sequence, *, now: dt.datetime, actor: str) -> None:
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


def _write_orm(invoice: Invoice, tickets: Sequence, *, now: dt.datetime, actor: str) -> None:
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


def _write_one_statement(invoice: Invoice, tickets: Sequence, *, now: dt.datetime, actor: str) -> None:
    qn = connection.ops.quote_name
    counters, links = qn(FolioCounter._meta.db_table), qn(InvoiceTicket._meta.db_table)
    ticket_table, events = qn(Ticket._meta.db_table), qn(Event._meta.db_table)
    # A serie's first invoice finds no counter row: it is stored without a folio and numbered below.
    insert, insert_params = insert_sql(invoice, sql_values={"folio": "(SELECT folio FROM f)"})
    invoiced, open_ = Ticket.Status.INVOICED.value, Ticket.Status.OPEN.value  # code constants, not input
    sql = (
        f"WITH f AS (UPDATE {counters} SET next_folio = next_folio + 1 "  # noqa: S608
        "WHERE merchant_id = %s AND serie = %s RETURNING next_folio - 1 AS folio), "
        f"i AS ({insert} RETURNING id, folio, merchant_id, status, created_at), "
        "t AS (SELECT * FROM unnest(%s::bigint[], %s::numeric[], %s::text[]) AS t(id, amount, status)), "
        "p AS (SELECT %s::text AS actor, %s::text AS ticket_reason, %s::text AS invoice_reason), "
        f"l AS (INSERT INTO {links} (invoice_id, ticket_id, amount) SELECT i.id, t.id, t.amount FROM i, t), "
        f"u AS (UPDATE {ticket_table} SET status = '{invoiced}', updated_at = (SELECT created_at FROM i) "
        f"WHERE id IN (SELECT id FROM t) AND status = '{open_}'), "
        f"e AS (INSERT INTO {events} (merchant_id, entity, object_id, from_status, to_status, actor, reason, data, "
        f"created_at) SELECT i.merchant_id, 'ticket', t.id, t.status, '{invoiced}', p.actor, p.ticket_reason || i.id, "
        "'{}'::jsonb, i.created_at FROM i, t, p "
        "UNION ALL SELECT i.merchant_id, 'invoice', i.id, '', i.status, p.actor, p.invoice_reason, '{}'::jsonb, "
        "i.created_at FROM i, p) "
        "SELECT id, folio FROM i"
    )
    # At most 50 parameters, or psycopg converts the query text again on every call (MAX_CACHED_STATEMENT_PARAMS).
    params = [
        invoice.merchant_id, invoice.serie,
        *insert_params,
        [t.pk for t in tickets], [t.total for t in tickets], [t.status for t in tickets],
        actor, _ticket_reason(""), _invoice_reason(tickets),
    ]
    [(invoice.pk, invoice.folio)] = prepared_fetchall(sql, params)
    invoice._state.adding = False
    if invoice.folio is None:
        invoice.folio = folio_next(merchant_id=invoice.merchant_id, serie=invoice.serie)  # creates the counter
        Invoice.objects.filter(pk=invoice.pk).update(folio=invoice.folio)
