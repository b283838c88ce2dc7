"""django-q2 tasks of the factura global and of late requests (the bulk queue): ids in, one service call each."""

import logging

from invoicing.services.global_schedule import global_invoices_run
from invoicing.services.late_request import late_request_advance, late_request_ids_in_progress

log = logging.getLogger(__name__)


def global_invoices_tick() -> dict:
    """Periodic (every few minutes): issue due globals of every merchant, backfill, deadline alerts."""
    return global_invoices_run()


def advance_late_request(late_request_id: int) -> str:
    return late_request_advance(late_request_id=late_request_id)


def advance_late_requests() -> int:
    """Periodic (every minute): move on every late request in progress (waits end, crashed chains resume)."""
    ids = late_request_ids_in_progress()
    for pk in ids:
        try:
            late_request_advance(late_request_id=pk)
        except Exception:  # one request's trouble must not stop the others; it is retried next minute
            log.exception("late request %s could not advance", pk)
    return len(ids)
