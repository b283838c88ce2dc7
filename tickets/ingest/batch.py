"""Many ticket payloads → per-ticket results (created, duplicate, rejected with reasons).

Used by the single-ticket endpoint (a batch of one), the JSON batch, the ZIP batch and the background
worker. A bad ticket never rejects the good ones: each payload is checked alone, then the good ones are
stored together in one transaction per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from tickets.ingest.drafts import normalize
from tickets.ingest.normalize import Context, TicketRejected
from tickets.ingest.store import CONFLICT, CREATED, DUPLICATE, store_drafts
from tickets.models import Merchant

REJECTED = "rejected"
NOT_PROCESSED = "not_processed"  # the batch stopped before this ticket; resending the batch_id finishes it
CHUNK = 1000


def self_invoice_url(public_code: str) -> str:
    """The link printed as a QR code on the receipt."""
    return f"{settings.PUBLIC_BASE_URL}/t/{public_code}"


@dataclass(slots=True)
class Item:
    """One payload to ingest, with where it came from (its index in the list, or its file in the ZIP)."""

    ref: dict
    payload: object = None
    error: str = ""


@dataclass(slots=True)
class Outcome:
    entries: list[dict] = field(default_factory=list)
    created: int = 0
    duplicate: int = 0
    rejected: int = 0
    drafts: list = field(default_factory=list)  # (entry, draft) of stored tickets, for single-ticket answers


def adapt(payload):
    """factúrame's ``{"cfdi": {"ref_id", "ticket_number", "document"}}`` → our payload (+ ref_id)."""
    if isinstance(payload, dict) and isinstance(payload.get("cfdi"), dict) and "lines" not in payload:
        c = payload["cfdi"]
        ours = {"number": c.get("ticket_number"), "document": c.get("document")}
        for key in ("branch", "sold_at", "payment_form"):
            if c.get(key) is not None:
                ours[key] = c[key]
        return ours, c.get("ref_id")
    return payload, None


def context_for(merchant: Merchant, default_branch=None) -> Context:
    """``default_branch``: the sending API key's branch (or its id), for tickets that name none."""
    if isinstance(default_branch, int):
        default_branch = merchant.branches.filter(pk=default_branch).first()
    return Context(merchant, list(merchant.branches.filter(is_active=True)), default_branch=default_branch)


def _echo(value) -> str:
    """Input quoted back in the report: printable only (PostgreSQL's jsonb refuses \\u0000, and a report
    is read by people)."""
    return "".join(ch for ch in str(value)[:100] if ch.isprintable())


def describe(item: Item) -> tuple[dict, object]:
    """The report entry of an item before it is checked (where it came from, its branch and number as sent,
    printable only) and the payload in our format."""
    entry = dict(item.ref)
    payload, ref_id = adapt(item.payload)
    if ref_id is not None:
        entry["ref_id"] = _echo(ref_id)
    if isinstance(payload, dict):
        for key in ("branch", "number"):
            value = payload.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                entry[key] = _echo(value)
    return entry, payload


def not_processed(items: list[Item], message: str) -> list[dict]:
    """Entries for items a batch never got to (it stopped on an error): nothing of them was stored."""
    out = []
    for item in items:
        entry, _ = describe(item)
        entry.update(status=NOT_PROCESSED, code=NOT_PROCESSED, errors={"ticket": [message]})
        out.append(entry)
    return out


def ingest(*, merchant: Merchant, items: list[Item], source: str, batch_pk: int | None = None,
           actor: str = "", ctx: Context | None = None, default_branch=None) -> Outcome:
    ctx = ctx or context_for(merchant, default_branch)
    out = Outcome()
    good: list[tuple[dict, object]] = []
    for item in items:
        entry, payload = describe(item)
        out.entries.append(entry)
        if item.error:
            _reject(out, entry, "invalid_file", {"file": [item.error]})
            continue
        try:
            draft = normalize(payload, ctx)
        except TicketRejected as exc:
            _reject(out, entry, "invalid_ticket", exc.errors)
            continue
        entry["branch"], entry["number"] = draft.branch_code, draft.number
        good.append((entry, draft))
    if good:
        stored = store_drafts(merchant=merchant, drafts=[d for _, d in good], branches=ctx.branches,
                              source=source, batch_id=batch_pk, actor=actor)
        for (entry, draft), result in zip(good, stored, strict=True):
            if result.status == CONFLICT:
                fields = ", ".join(result.differences)
                _reject(out, entry, "conflict", {"ticket": [
                    f"Ya existe el ticket {draft.number} de la sucursal {draft.branch_code} con datos distintos "
                    f"({fields})."]})
                entry["ticket_id"] = result.ticket_id
                entry["differences"] = result.differences
                continue
            entry["status"] = result.status
            entry["ticket_id"] = result.ticket_id
            entry["self_invoice_url"] = self_invoice_url(result.public_code)
            entry["expires_at"] = result.expires_at.astimezone(ctx.tz).isoformat()
            if result.status == CREATED:
                out.created += 1
            else:
                out.duplicate += 1
            if draft.warnings:
                entry["warnings"] = draft.warnings
            out.drafts.append((entry, draft))
    return out


def _reject(out: Outcome, entry: dict, code: str, errors: dict) -> None:
    entry["status"] = REJECTED
    entry["code"] = code
    entry["errors"] = errors
    out.rejected += 1


__all__ = ["CREATED", "DUPLICATE", "NOT_PROCESSED", "REJECTED", "Item", "Outcome", "adapt", "describe", "ingest",
           "not_processed", "self_invoice_url"]
