"""Hook for late requests: a ticket already in a stamped global invoice (DESIGN.md "Late request", issue 8).

Issue 8 provides ``invoicing.services.late.invoice_issue_late(*, merchant, ticket_ids, receptor, actor="",
idempotency_key=None) -> Invoice`` (same contract as ``invoice_issue``: a pending invoice whose stamping
is queued after commit, InvoicingError on refusal). Until that module exists, or when the merchant's
policy is "refuse", the portal explains instead of offering the invoice.
"""

from __future__ import annotations

from collections.abc import Callable

from tickets.models import Merchant


def late_request_service(merchant: Merchant) -> Callable | None:
    """The late-request service to call for ``merchant``, or None when late requests are not possible."""
    if merchant.late_request_policy == Merchant.LatePolicy.REFUSE:
        return None
    try:
        from invoicing.services.late import invoice_issue_late
    except ImportError:
        return None
    return invoice_issue_late
