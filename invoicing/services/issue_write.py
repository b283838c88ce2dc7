"""How a nominative invoice being issued meets the database: its tickets read, then, guarded, the invoice row,
its ticket links, the tickets moved to ``invoiced``, the event rows, and the folio.

Optimistic: the tickets are read without a lock and checked in Python (services/issue.py); the write then
locks them (in id order, so carts sharing tickets cannot deadlock) and goes ahead only if every one is still
``open``. Otherwise nothing is written and the caller reads them again, which names what changed.

On PostgreSQL the write is one prepared statement (data-modifying CTEs) run on its own, outside any explicit
transaction: every shopper's "Facturar" pays for it. Five statements inside BEGIN … COMMIT had cost seven
round trips, and the serie's counter, which every issuer of the serie waits on, stayed locked until the client
got its turn on a CPU to send COMMIT; now it is held inside the server, for the statement and its commit.
Folios stay gap-free: the counter and the invoice commit together. Elsewhere (SQLite, the zero-set-up demo) the
ORM does the same in a transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from infra.db.bulk import insert_sql
from infra.db.prepared import prepared_fetchall
from infra.db.vendor import is_postgresql
from infra.models import Event
from invoicing.folios import folio_next
from invoicing.lifecycle import creation_event_values, invoice_created_event
from invoicing.models import FolioCounter, Invoice, InvoiceTicket
from tickets.models import Branch, Ticket, TicketLine

MONEY_FIELDS = ("subtotal", "discount", "tax_total", "withheld_total", "total")


class TicketValues(NamedTuple):
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
    lines: int  # the concepts this ticket brings to the invoice


def tickets_read(*, merchant_id: int, ids: list[int]) -> list[TicketValues]:
    """The merchant's tickets among ``ids``, in id order, as plain values: every shopper's request takes this
    path, and model instances cost more here than the query."""
    if not is_postgresql():
        rows = (Ticket.objects.filter(merchant_id=merchant_id, pk__in=ids).order_by("pk")
                .annotate(line_count=Count("lines"))
                .values_list("pk", "status", "number", "expires_at", "currency", "payment_form", "branch_id",
                             "branch__invoice_serie", *MONEY_FIELDS, "line_count"))
        return [TicketValues(*row) for row in rows]
    qn = connection.ops.quote_name
    money = ", ".join(f"t.{name}" for name in MONEY_FIELDS)
    rows = prepared_fetchall(
        "SELECT t.id, t.status, t.number, t.expires_at, t.currency, t.payment_form, t.branch_id, b.invoice_serie, "
        f"{money}, (SELECT count(*) FROM {qn(TicketLine._meta.db_table)} l WHERE l.ticket_id = t.id) "  # noqa: S608
        f"FROM {qn(Ticket._meta.db_table)} t JOIN {qn(Branch._meta.db_table)} b ON b.id = t.branch_id "
        "WHERE t.merchant_id = %s AND t.id = ANY(%s::bigint[]) ORDER BY t.id",
        [merchant_id, ids],
    )
    return [TicketValues(*row) for row in rows]


def issued_invoice_write(invoice: Invoice, tickets: Sequence[TicketValues], *, actor: str,
                         allocate_folio: bool = True) -> bool:
    """Store the unsaved ``invoice`` holding ``tickets`` if they are all still open; sets its ``pk`` and
    ``folio``. False (and nothing written) when one of them changed since it was read.

    ``allocate_folio`` False (a scheduled invoice, numbered at its time) takes the ORM path on every database:
    it is not the shoppers' hot path, and the statement below numbers what it inserts."""
    if not is_postgresql() or not allocate_folio:
        return _write_orm(invoice, tickets, actor=actor, allocate_folio=allocate_folio)
    while True:
        written, counter_missing = _write_one_statement(invoice, tickets, actor=actor)
        if not counter_missing:
            return written
        # The serie's first invoice: the statement found no counter to number it with.
        FolioCounter.objects.bulk_create([FolioCounter(merchant_id=invoice.merchant_id, serie=invoice.serie)],
                                         ignore_conflicts=True)


def _ticket_reason(invoice_pk) -> str:
    return f"factura #{invoice_pk}"


def _invoice_reason(tickets: Sequence) -> str:
    return f"{len(tickets)} ticket(s)"


class _Changed(Exception):
    pass


def _write_orm(invoice: Invoice, tickets: Sequence[TicketValues], *, actor: str,
               allocate_folio: bool = True) -> bool:
    ids = [t.pk for t in tickets]
    try:
        with transaction.atomic():
            moved = Ticket.objects.filter(merchant_id=invoice.merchant_id, pk__in=ids,
                                          status=Ticket.Status.OPEN).update(status=Ticket.Status.INVOICED,
                                                                            updated_at=timezone.now())
            if moved != len(ids):
                raise _Changed  # rolls the update back
            invoice.save(force_insert=True)
            InvoiceTicket.objects.bulk_create(
                InvoiceTicket(invoice=invoice, ticket_id=t.pk, amount=t.total) for t in tickets)
            Event.objects.bulk_create(
                [Event(merchant_id=invoice.merchant_id, entity="ticket", object_id=t.pk,
                       from_status=Ticket.Status.OPEN, to_status=Ticket.Status.INVOICED, actor=actor,
                       reason=_ticket_reason(invoice.pk)) for t in tickets]
                + [invoice_created_event(invoice, actor=actor, reason=_invoice_reason(tickets) + (
                    f", emisión programada para {invoice.issue_at.isoformat()}"
                    if invoice.status == Invoice.Status.SCHEDULED else ""))]
            )
            if allocate_folio:
                invoice.folio = folio_next(merchant_id=invoice.merchant_id, serie=invoice.serie)
                Invoice.objects.filter(pk=invoice.pk).update(folio=invoice.folio)
    except _Changed:
        invoice.pk = None
        invoice._state.adding = True
        return False
    return True


def _write_one_statement(invoice: Invoice, tickets: Sequence[TicketValues], *, actor: str) -> tuple[bool, bool]:
    """(written, counter_missing)."""
    qn = connection.ops.quote_name
    counters, links = qn(FolioCounter._meta.db_table), qn(InvoiceTicket._meta.db_table)
    ticket_table, events = qn(Ticket._meta.db_table), qn(Event._meta.db_table)
    insert, insert_params = insert_sql(invoice, sql_values={"folio": "f.folio"}, select_from="f")
    invoiced, open_ = Ticket.Status.INVOICED.value, Ticket.Status.OPEN.value  # code constants, not input
    created, initial = creation_event_values(invoice.status)  # the lifecycle's first step, as in _write_orm
    sql = (
        "WITH p AS (SELECT %s::bigint AS merchant_id, %s::text AS serie, %s::text AS actor, "
        "%s::text AS ticket_reason, %s::text AS invoice_reason), "
        "t AS (SELECT * FROM unnest(%s::bigint[], %s::numeric[]) AS t(id, amount)), "
        f"lk AS (SELECT id FROM {ticket_table} WHERE id = ANY(%s::bigint[]) "  # noqa: S608
        f"AND merchant_id = (SELECT merchant_id FROM p) AND status = '{open_}' ORDER BY id FOR UPDATE), "
        "ok AS (SELECT (SELECT count(*) FROM lk) = (SELECT count(*) FROM t) AS ok), "
        f"f AS (UPDATE {counters} SET next_folio = next_folio + 1 WHERE merchant_id = (SELECT merchant_id FROM p) "
        "AND serie = (SELECT serie FROM p) AND (SELECT ok FROM ok) RETURNING next_folio - 1 AS folio), "
        f"i AS ({insert} RETURNING id, folio, merchant_id, status, created_at), "
        f"l AS (INSERT INTO {links} (invoice_id, ticket_id, amount) SELECT i.id, t.id, t.amount FROM i, t), "
        f"u AS (UPDATE {ticket_table} AS tk SET status = '{invoiced}', updated_at = i.created_at FROM i "
        "WHERE tk.id IN (SELECT id FROM lk)), "
        f"e AS (INSERT INTO {events} (merchant_id, entity, object_id, from_status, to_status, actor, reason, data, "
        f"created_at) SELECT i.merchant_id, 'ticket', t.id, '{open_}', '{invoiced}', p.actor, "
        "p.ticket_reason || i.id, '{}'::jsonb, i.created_at FROM i, t, p "
        f"UNION ALL SELECT i.merchant_id, 'invoice', i.id, '{created}', '{initial}', p.actor, p.invoice_reason, "
        "'{}'::jsonb, "
        "i.created_at FROM i, p) "
        "SELECT (SELECT ok FROM ok), i.id, i.folio FROM (SELECT 1) AS one LEFT JOIN i ON true"
    )
    # At most 50 parameters, or psycopg converts the query text again on every call (MAX_CACHED_STATEMENT_PARAMS).
    params = [
        invoice.merchant_id, invoice.serie, actor, _ticket_reason(""), _invoice_reason(tickets),
        [t.pk for t in tickets], [t.total for t in tickets], [t.pk for t in tickets],
        *insert_params,
    ]
    [(ok, pk, folio)] = prepared_fetchall(sql, params)
    if pk is None:
        return False, bool(ok)
    invoice.pk, invoice.folio = pk, folio
    invoice._state.adding = False
    return True, False
