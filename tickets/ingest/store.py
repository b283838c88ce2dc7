"""Store checked ticket drafts in bulk: one query to dedupe, COPY (PostgreSQL) or bulk_create for the rest.

Natural key (branch, number): a draft whose key exists with the same fingerprint (or the same data) is a
``duplicate`` answering the stored ticket; with different data it is a ``conflict`` listing the fields that
differ. Tickets, lines and their creation events are written in a few statements whatever the batch size.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from infra.db.vendor import is_postgresql
from infra.models import Event
from tickets.ingest.normalize import TicketDraft
from tickets.models import Merchant, Ticket, TicketLine
from tickets.zones import postal_infos

CREATED = "created"
DUPLICATE = "duplicate"
CONFLICT = "conflict"


@dataclass(slots=True)
class Stored:
    status: str  # created | duplicate | conflict
    ticket_id: int | None = None
    public_code: str = ""
    expires_at: dt.datetime | None = None
    differences: list[str] = field(default_factory=list)


class ExpiryCalculator:
    """``ticket_expires_at`` memoised per (zone, local day): thousands of tickets share a handful of days.

    The window is counted in the branch's local time (its postal code's zone, tickets.zones): a sale at 23:30
    on the 31st in Tijuana is a sale of the 31st, whatever the merchant's own zone.
    """

    def __init__(self, merchant: Merchant, branches: dict | None = None):
        self.merchant = merchant
        self.tz = merchant.tzinfo
        self.cache: dict[tuple, dt.datetime] = {}
        self.zones: dict[str, dt.tzinfo] = {}
        if branches:
            import zoneinfo

            infos = postal_infos(b.postal_code for b in branches.values())
            for code, b in branches.items():
                name = infos[b.postal_code].time_zone
                self.zones[code] = zoneinfo.ZoneInfo(name) if name else self.tz

    def __call__(self, sold_at: dt.datetime, branch_code: str | None = None) -> dt.datetime:
        tz = self.zones.get(branch_code, self.tz)
        day = sold_at.astimezone(tz).date()
        value = self.cache.get((tz, day))
        if value is None:
            value = self.cache[(tz, day)] = expires_at_for_day(self.merchant, day, tz)
        return value


def expires_at_for_day(merchant: Merchant, day: dt.date, tz: dt.tzinfo | None = None) -> dt.datetime:
    """End of the self-invoicing window for a sale on ``day`` (local), in ``tz`` (the branch's zone; by default
    the merchant's)."""
    if merchant.self_invoice_window == Merchant.SelfInvoiceWindow.MONTH_END:
        end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    else:
        end = day + dt.timedelta(days=merchant.self_invoice_days)
    return dt.datetime.combine(end, dt.time(23, 59, 59), tzinfo=tz or merchant.tzinfo)


def store_drafts(*, merchant: Merchant, drafts: list[TicketDraft], branches: dict, source: str,
                 batch_id: int | None = None, actor: str = "") -> list[Stored]:
    """Insert the new drafts, answer every draft in order. Retries once if a concurrent writer won a key."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _store(merchant, drafts, branches, source, batch_id, actor)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _store(merchant, drafts, branches, source, batch_id, actor) -> list[Stored]:
    results: list[Stored | None] = [None] * len(drafts)
    numbers = {d.number for d in drafts}
    existing: dict[tuple[int, str], tuple] = {}
    if numbers:
        rows = Ticket.objects.filter(merchant=merchant, number__in=numbers).values_list(
            "branch_id", "number", "id", "fingerprint", "public_code", "expires_at"
        )
        existing = {(r[0], r[1]): r for r in rows}
    fresh: list[tuple[int, TicketDraft]] = []
    first_in_batch: dict[tuple[int, str], int] = {}
    suspects: list[tuple[int, int]] = []  # (draft index, stored ticket id) whose fingerprints differ
    for i, draft in enumerate(drafts):
        key = (branches[draft.branch_code].pk, draft.number)
        row = existing.get(key)
        if row is not None:
            if row[3] == draft.fingerprint:
                results[i] = Stored(DUPLICATE, row[2], row[4], row[5])
            else:
                suspects.append((i, row[2]))
            continue
        j = first_in_batch.get(key)
        if j is not None:  # same key twice in one batch: the first one wins
            same = drafts[j].fingerprint == draft.fingerprint
            results[i] = Stored(DUPLICATE if same else CONFLICT, None,
                                differences=[] if same else diff_drafts(drafts[j], draft))
            continue
        first_in_batch[key] = i
        fresh.append((i, draft))
    if suspects:
        stored = {t.pk: t for t in Ticket.objects.filter(pk__in=[s for _, s in suspects]).prefetch_related("lines")}
        for i, ticket_id in suspects:
            ticket = stored[ticket_id]
            differences = diff_ticket(ticket, drafts[i])
            status = CONFLICT if differences else DUPLICATE
            results[i] = Stored(status, ticket.pk, ticket.public_code, ticket.expires_at, differences)
    if fresh:
        created = _insert(merchant, fresh, branches, source, batch_id, actor)
        for (i, _), stored_result in zip(fresh, created, strict=True):
            results[i] = stored_result
    # Drafts that repeated a fresh key inside the batch point at the ticket the first one created.
    for i, result in enumerate(results):
        if result.ticket_id is None:
            key = (branches[drafts[i].branch_code].pk, drafts[i].number)
            first = results[first_in_batch[key]]
            result.ticket_id, result.public_code, result.expires_at = first.ticket_id, first.public_code, \
                first.expires_at
    return results


def _insert(merchant, fresh, branches, source, batch_id, actor) -> list[Stored]:
    now = timezone.now()
    expiry = ExpiryCalculator(merchant, branches)
    token = secrets.token_urlsafe
    rows = [(d, branches[d.branch_code].pk, token(12), expiry(d.sold_at, d.branch_code)) for _, d in fresh]
    if is_postgresql():
        ids = _copy_insert(merchant, rows, source, batch_id, actor, now)
    else:
        tickets = [
            Ticket(merchant_id=merchant.pk, branch_id=branch_id, number=d.number, sold_at=d.sold_at,
                   currency=d.currency, exchange_rate=d.exchange_rate, payment_form=d.payment_form,
                   subtotal=d.subtotal, discount=d.discount, tax_total=d.tax_total, withheld_total=Decimal(0),
                   total=d.total, public_code=code, expires_at=expires_at, status=Ticket.Status.OPEN, source=source,
                   batch_id=batch_id, fingerprint=d.fingerprint, document=d.document, created_at=now, updated_at=now)
            for d, branch_id, code, expires_at in rows
        ]
        Ticket.objects.bulk_create(tickets, batch_size=500)
        ids = [t.pk for t in tickets]
        TicketLine.objects.bulk_create(
            [TicketLine(ticket_id=pk, position=p, **_line_fields(line))
             for pk, (_, d) in zip(ids, fresh, strict=True) for p, line in enumerate(d.lines, start=1)],
            batch_size=500,
        )
        Event.objects.bulk_create(
            [Event(merchant_id=merchant.pk, entity="ticket", object_id=pk, from_status="", to_status="open",
                   actor=actor, reason=f"registrado ({source})") for pk in ids],
            batch_size=500,
        )
    return [Stored(CREATED, pk, code, expires_at) for pk, (_, _, code, expires_at) in zip(ids, rows, strict=True)]


def _line_fields(line) -> dict:
    return {
        "product_code": line.product_code, "unit_code": line.unit_code, "sku": line.sku,
        "description": line.description, "quantity": line.quantity, "unit_price": line.unit_price,
        "prices_include_tax": line.prices_include_tax, "discount": line.discount, "tax_object": line.tax_object,
        "taxes": line.taxes, "amount": line.amount,
    }


TICKET_COLUMNS = ["id", "merchant_id", "branch_id", "number", "sold_at", "currency", "exchange_rate",
                  "payment_form", "subtotal", "discount", "tax_total", "withheld_total", "total", "public_code",
                  "expires_at", "status", "source", "batch_id", "fingerprint", "document", "created_at",
                  "updated_at"]
LINE_COLUMNS = ["ticket_id", "position", "product_code", "unit_code", "sku", "description", "quantity",
                "unit_price", "prices_include_tax", "discount", "tax_object", "taxes", "amount"]
EVENT_COLUMNS = ["merchant_id", "entity", "object_id", "from_status", "to_status", "actor", "reason", "data",
                 "created_at"]


def _columns(model, names):
    columns = {f.attname: f.column for f in model._meta.concrete_fields}
    return ", ".join(connection.ops.quote_name(columns[n]) for n in names)


def _esc(value: str) -> str:
    """COPY text format: backslash, tab, newline and carriage return must be escaped."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _opt(value) -> str:
    return "\\N" if value is None else str(value)


def _copy_insert(merchant, rows, source, batch_id, actor, now) -> list[int]:
    """COPY the rows in (psycopg 3), built as COPY text in one string: no per-row Python adapters, no models."""
    q = connection.ops.quote_name
    stamp = now.isoformat()
    batch = _opt(batch_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Ticket._meta.db_table, len(rows)],
        )
        ids = [r[0] for r in cursor.fetchall()]
        tickets, lines, events = [], [], []
        head = f"\t{merchant.pk}\t"
        event_head = f"{merchant.pk}\tticket\t"
        event_tail = f"\t\topen\t{_esc(actor)}\t{_esc(f'registrado ({source})')}\t{{}}\t{stamp}\n"
        taxes_text: dict[int, str] = {}
        for pk, (d, branch_id, code, expires_at) in zip(ids, rows, strict=True):
            document = "\\N" if d.document is None else "\\\\x" + d.document.hex()
            tickets.append(
                f"{pk}{head}{branch_id}\t{_esc(d.number)}\t{d.sold_at.isoformat()}\t{d.currency}\t"
                f"{_opt(d.exchange_rate)}\t{d.payment_form}\t{d.subtotal}\t{d.discount}\t{d.tax_total}\t0\t"
                f"{d.total}\t{code}\t{expires_at.isoformat()}\topen\t{source}\t{batch}\t{d.fingerprint}\t"
                f"{document}\t{stamp}\t{stamp}\n"
            )
            for p, ln in enumerate(d.lines, start=1):
                taxes = taxes_text.get(id(ln.taxes))
                if taxes is None:
                    taxes = taxes_text[id(ln.taxes)] = _esc(json.dumps(ln.taxes))
                lines.append(
                    f"{pk}\t{p}\t{ln.product_code}\t{ln.unit_code}\t{_esc(ln.sku)}\t{_esc(ln.description)}\t"
                    f"{ln.quantity}\t{ln.unit_price}\t{'t' if ln.prices_include_tax else 'f'}\t{ln.discount}\t"
                    f"{ln.tax_object}\t{taxes}\t{ln.amount}\n"
                )
            events.append(f"{event_head}{pk}{event_tail}")
        raw = cursor.cursor
        for model, columns, data in ((Ticket, TICKET_COLUMNS, tickets), (TicketLine, LINE_COLUMNS, lines),
                                     (Event, EVENT_COLUMNS, events)):
            with raw.copy(f"COPY {q(model._meta.db_table)} ({_columns(model, columns)}) FROM STDIN") as cp:
                cp.write("".join(data))
    return ids


# --- which fields differ ---------------------------------------------------------------------------------


def _taxes_key(taxes) -> list[tuple]:
    return [(t.get("tax"), t.get("factor"), None if t.get("rate") is None else Decimal(str(t["rate"])))
            for t in taxes or []]


LINE_FIELDS = ["product_code", "unit_code", "sku", "description", "quantity", "unit_price", "prices_include_tax",
               "tax_object", "amount", "discount"]


def diff_ticket(ticket: Ticket, draft: TicketDraft) -> list[str]:
    """Names of the fields where a stored ticket and a new payload for the same key disagree."""
    out = []
    if ticket.sold_at != draft.sold_at:
        out.append("sold_at")
    for name in ("currency", "exchange_rate", "payment_form", "total"):
        if getattr(ticket, name) != getattr(draft, name):
            out.append(name)
    lines = list(ticket.lines.all())
    if len(lines) != len(draft.lines):
        out.append("lines")
    else:
        for i, (a, b) in enumerate(zip(lines, draft.lines, strict=True)):
            for name in LINE_FIELDS:
                if getattr(a, name) != getattr(b, name):
                    out.append(f"lines[{i}].{name}")
            if _taxes_key(a.taxes) != _taxes_key(b.taxes):
                out.append(f"lines[{i}].taxes")
    stored_doc = bytes(ticket.document) if ticket.document is not None else None
    if stored_doc != draft.document:
        out.append("document")
    return out


def diff_drafts(a: TicketDraft, b: TicketDraft) -> list[str]:
    out = [n for n in ("sold_at", "currency", "exchange_rate", "payment_form", "total")
           if getattr(a, n) != getattr(b, n)]
    if len(a.lines) != len(b.lines):
        out.append("lines")
    else:
        for i, (x, y) in enumerate(zip(a.lines, b.lines, strict=True)):
            out += [f"lines[{i}].{n}" for n in LINE_FIELDS if getattr(x, n) != getattr(y, n)]
            if _taxes_key(x.taxes) != _taxes_key(y.taxes):
                out.append(f"lines[{i}].taxes")
    if a.document != b.document:
        out.append("document")
    return out

