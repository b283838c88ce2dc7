"""django-q2 tasks for webhooks (the deliver queue): each takes ids and calls one service."""

import logging

from invoicing.webhooks.services import due_delivery_ids, enqueue_deliveries, webhook_deliver

log = logging.getLogger(__name__)


def deliver_webhook(delivery_id: int) -> str:
    return webhook_deliver(delivery_id=delivery_id)


def sweep_webhook_deliveries() -> int:
    """Periodic: queue deliveries whose retry is due, and those a crashed worker left behind."""
    ids = due_delivery_ids()
    enqueue_deliveries(ids)
    if ids:
        log.info("webhook sweeper queued %d deliver(ies)", len(ids))
    return len(ids)
