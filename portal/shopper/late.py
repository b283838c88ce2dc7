"""Late requests: a ticket already in a stamped global invoice (DESIGN.md "Late request", issue 8).

The merchant's policy decides: a credit note to the global or cancel-and-reissue, then the nominative
invoice (``invoicing.services.late_request.late_request_issue``), or "refuse", where the portal explains.
"""

from __future__ import annotations

from collections.abc import Callable

from invoicing.services.late_request import late_request_issue
from tickets.models import Merchant


def _issue_late(*, merchant, ticket_ids, receptor, actor="", idempotency_key=None, language=""):
    # Same call shape as invoice_issue, the same key: a double click replays the one request's invoice.
    return late_request_issue(merchant=merchant, ticket_ids=ticket_ids, receptor=receptor, actor=actor,
                              idempotency_key=idempotency_key, language=language)


def late_request_service(merchant: Merchant) -> Callable | None:
    """The late-request service to call for ``merchant``, or None when late requests are not possible."""
    if merchant.late_request_policy == Merchant.LatePolicy.REFUSE:
        return None
    return _issue_late
