"""One ticket payload → a checked ``TicketDraft``: the entry of ingestion (tickets.services, tickets/ingest/batch.py).

A ticket comes as JSON (tickets/ingest/normalize.py) or as the POS's CFDI (tickets/ingest/document.py, built on
normalize's field rules); both end in ``normalize.ticket_draft``. The choice is made here, above both modules, so
that neither imports the other back.
"""

from __future__ import annotations

from tickets.ingest.document import lines_from_document
from tickets.ingest.normalize import (
    Context,
    TicketDraft,
    TicketRejected,
    _Errors,
    lines_from_json,
    ticket_draft,
)


def normalize(raw, ctx: Context) -> TicketDraft:
    """Check one ticket payload; raise ``TicketRejected`` with every problem found."""
    errs = _Errors()
    if not isinstance(raw, dict):
        raise TicketRejected({"ticket": ["Cada ticket es un objeto JSON."]})
    source = lines_from_document if raw.get("document") is not None else lines_from_json
    h, line_pairs = source(raw, ctx, errs)
    return ticket_draft(raw, ctx, errs, h, line_pairs)
