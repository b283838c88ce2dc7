"""django-q2 tasks of cancellations: ids in, one service call each, enqueued after commit."""

import logging

from invoicing.services.cancel import cancellation_advance, cancellation_ids_due
from invoicing.services.cancel_notify import cancellation_email_send
from invoicing.services.cancel_notify import cancelled_documents as documents
from invoicing.services.duplicates import duplicate_email_send
from invoicing.services.failover import doubts_check_due

log = logging.getLogger(__name__)


def advance_cancellation(cancellation_id: int) -> str:
    return cancellation_advance(cancellation_id=cancellation_id)


def follow_up_cancellations() -> int:
    """Periodic (every minute): every active cancellation whose check is due (a replacement stamped, the PAC to
    retry after an outage, SAT's answer to ask for) moves on; the backoff of each sets when it is due."""
    ids = cancellation_ids_due()
    for pk in ids:
        try:
            cancellation_advance(cancellation_id=pk)
        except Exception:  # one request's trouble must not stop the others; it is due again after its backoff
            log.exception("cancellation %s could not advance", pk)
    return len(ids)


def cancellation_email(cancellation_id: int, kind: str) -> int:
    return cancellation_email_send(cancellation_id=cancellation_id, kind=kind)


def cancelled_documents(cancellation_id: int) -> None:
    documents(cancellation_id=cancellation_id)


def duplicate_stamp_email(extra_stamp_id: int, kind: str) -> int:
    return duplicate_email_send(extra_stamp_id=extra_stamp_id, kind=kind)


def check_late_stamps() -> int:
    """Periodic (every minute): ask the PACs that answered without a stamp after a lost request whether they
    stamped it late (invoicing/services/failover.py); an extra stamp found is cancelled."""
    return doubts_check_due()
