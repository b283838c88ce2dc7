"""What the suite counts, as pure functions over plain data (tests/bench/test_faults_counting.py).

A ticket is (merchant slug, branch code, number). A request is what a client was told: "acknowledged" means the
product answered that it has it (a batch's 200/207/202, a portal redirect to the invoice page, an API 202).
"""

from __future__ import annotations

import email
import email.policy
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TicketKey = tuple[str, str, str]
# An invoice that still claims its tickets: a failed one released them, a cancelled one is history.
LIVE_STATUSES = {"pending", "sealed", "stamped", "cancelling"}


@dataclass(frozen=True)
class InvoiceRequest:
    source: str  # "portal" | "api"
    tickets: tuple[TicketKey, ...]
    acknowledged: bool
    ref: str = ""  # portal: the invoice's public code; api: its id
    key: str = ""  # the Idempotency-Key sent (api)


@dataclass(frozen=True)
class StoredInvoice:
    id: int
    public_code: str
    status: str
    merchant: str
    serie: str
    folio: int | None
    tickets: tuple[TicketKey, ...] = ()
    idempotency_key: str = ""
    uuid: str = ""
    emails: tuple[str, ...] = ()
    kind: str = "ingreso"


@dataclass(frozen=True)
class Sample:
    """One HTTP request: wall-clock start and end (time.time()), the phase it started in, and its status
    (None: no HTTP answer at all: connection refused or reset, or the client's timeout)."""

    start: float
    end: float
    phase: str
    kind: str
    status: int | None

    @property
    def latency_ms(self) -> float:
        return (self.end - self.start) * 1000


def ticket_counts(acknowledged: Iterable[TicketKey], stored: Iterable[TicketKey]) -> dict:
    stored_counts = Counter(stored)
    acked = set(acknowledged)
    return {
        "tickets_acknowledged": len(acked),
        "tickets_stored": len(stored_counts),
        "tickets_lost": len(acked - stored_counts.keys()),
        "tickets_duplicated": sum(n - 1 for n in stored_counts.values() if n > 1),
    }


def invoice_counts(requests: Iterable[InvoiceRequest], invoices: Iterable[StoredInvoice]) -> dict:
    invoices = [i for i in invoices if i.kind == "ingreso"]
    by_code = {i.public_code: i for i in invoices}
    by_id = {str(i.id): i for i in invoices}
    requests = list(requests)
    lost: Counter = Counter()
    for request in requests:
        if not request.acknowledged:
            continue
        found = (by_code if request.source == "portal" else by_id).get(request.ref)
        if found is None:
            lost["missing"] += 1
        elif found.status != "stamped":
            lost[found.status] += 1
    per_ticket: Counter = Counter(t for i in invoices if i.status in LIVE_STATUSES for t in i.tickets)
    per_key = Counter(i.idempotency_key for i in invoices if i.idempotency_key)
    duplicated_tickets = sum(n - 1 for n in per_ticket.values() if n > 1)
    duplicated_keys = sum(n - 1 for n in per_key.values() if n > 1)
    return {
        "invoices_requested": sum(1 for r in requests if r.acknowledged),
        "invoices_unacknowledged": sum(1 for r in requests if not r.acknowledged),
        "invoices_lost": sum(lost.values()),
        "invoices_lost_by_status": dict(lost),
        "invoices_duplicated": duplicated_tickets + duplicated_keys,
        "invoices_by_status": dict(Counter(i.status for i in invoices)),
    }


def pac_stamps_without_invoice(pac_uuids: Iterable[str], invoices: Iterable[StoredInvoice], merchant: str) -> int:
    """Documents the PAC stamped that no invoice of ``merchant`` holds: a second UUID for one sale (a resend
    that was not the same sealed XML), or a stamp the product never learned of. Each is a CFDI at SAT that the
    merchant does not know about."""
    held = {i.uuid.upper() for i in invoices if i.merchant == merchant and i.uuid}
    return len({u.upper() for u in pac_uuids} - held)


def folio_gaps(invoices: Iterable[StoredInvoice]) -> tuple[int, dict]:
    """Per (merchant, serie): folios run 1..max with none missing and none repeated."""
    series: dict[str, list[int]] = {}
    for invoice in invoices:
        if invoice.folio is not None:
            series.setdefault(f"{invoice.merchant}/{invoice.serie}", []).append(invoice.folio)
    total, details = 0, {}
    for name, folios in sorted(series.items()):
        distinct = set(folios)
        top = max(distinct)
        missing = sorted(set(range(1, top + 1)) - distinct)
        total += len(missing) + (len(folios) - len(distinct))
        details[name] = {"max": top, "count": len(folios), "missing": missing[:20],
                         "repeated": len(folios) - len(distinct)}
    return total, details


def sent_email_uuids(mail_dir: Path) -> Counter:
    """UUIDs of the invoices in the messages Django's file backend wrote (one count per message).

    Attachments are named ``{RFC}_{serie}{folio}_{UUID}.xml``; a message's text may be encoded, its
    attachment names are not.
    """
    found: Counter = Counter()
    for path in sorted(Path(mail_dir).glob("*")):
        raw = path.read_bytes()
        for chunk in raw.split(b"\n" + b"-" * 79 + b"\n"):
            if not chunk.strip():
                continue
            message = email.message_from_bytes(chunk, policy=email.policy.default)
            uuids = {part.get_filename().rsplit(".", 1)[0].rsplit("_", 1)[-1].upper()
                     for part in message.walk() if part.get_filename()}
            found.update(uuids)
    return found


def email_counts(invoices: Iterable[StoredInvoice], sent: Counter) -> dict:
    invoices = list(invoices)
    due = [i for i in invoices if i.status == "stamped" and i.emails and i.kind == "ingreso"]
    return {
        "emails_due": len(due),
        "emails_unsent": len(unsent_emails(invoices, sent)),
        "emails_duplicated": sum(sent[i.uuid.upper()] - 1 for i in due if sent.get(i.uuid.upper(), 0) > 1),
    }


def unsent_emails(invoices: Iterable[StoredInvoice], sent: Counter) -> list[StoredInvoice]:
    return [i for i in invoices if i.status == "stamped" and i.emails and i.kind == "ingreso"
            and sent.get(i.uuid.upper(), 0) == 0]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return round(ordered[rank], 1)


@dataclass
class Window:
    start: float
    end: float

    def overlaps(self, sample: Sample) -> bool:
        return sample.start <= self.end and sample.end >= self.start


@dataclass
class ErrorTally:
    http_5xx_outside_db_down: int = 0
    no_answer_outside_db_down: int = 0
    during_db_down: Counter = field(default_factory=Counter)
    by_phase: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)


def http_errors(samples: Iterable[Sample], db_down: list[Window]) -> ErrorTally:
    """5xx and unanswered requests, split by whether they overlapped a window in which PostgreSQL was down."""
    tally = ErrorTally()
    for s in samples:
        failed = s.status is None or s.status >= 500
        if not failed:
            continue
        label = "no_answer" if s.status is None else str(s.status)
        if any(w.overlaps(s) for w in db_down):
            tally.during_db_down[label] += 1
            continue
        if s.status is None:
            tally.no_answer_outside_db_down += 1
        else:
            tally.http_5xx_outside_db_down += 1
        phase = tally.by_phase.setdefault(s.phase, Counter())
        phase[f"{s.kind} {label}"] += 1
    tally.by_phase = {k: dict(v) for k, v in tally.by_phase.items()}
    tally.during_db_down = dict(tally.during_db_down)
    return tally


def latency_by_phase(samples: Iterable[Sample]) -> dict:
    per: dict[str, list[float]] = {}
    for s in samples:
        per.setdefault(s.phase, []).append(s.latency_ms)
    return {phase: {"requests": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)}
            for phase, v in per.items()}


def phase_of(at: float, bounds: Iterable[tuple[str, float, float]]) -> str | None:
    return next((name for name, start, end in bounds if start <= at < end), None)


def stamp_latency_by_phase(created: dict[int, float], stamped: dict[int, float],
                           bounds: list[tuple[str, float, float]]) -> dict:
    """p50/p99 seconds from an invoice's creation to its stamp, by the phase it was created in (invoices never
    stamped are left out here: they are counted as lost)."""
    per: dict[str, list[float]] = {}
    for invoice_id, at in created.items():
        phase = phase_of(at, bounds)
        if phase is not None and invoice_id in stamped:
            per.setdefault(phase, []).append((stamped[invoice_id] - at) * 1000)
    return {phase: {"invoices": len(v), "p50_s": _seconds(percentile(v, 50)), "p99_s": _seconds(percentile(v, 99))}
            for phase, v in per.items()}


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 2)


def queue_recovered_after(samples: list[tuple[float, float | None]], fault_end: float) -> float | None:
    """Seconds after ``fault_end`` until every invoice created before it had left the queue (stamped or failed):
    the first sample whose oldest in-flight invoice is younger than the fault's end, or with none in flight.

    ``samples`` are (sampled at, creation time of the oldest invoice in flight or None), in time order;
    None when that never happened while the suite watched.
    """
    for at, oldest in samples:
        if at >= fault_end and (oldest is None or oldest > fault_end):
            return round(at - fault_end, 1)
    return None
