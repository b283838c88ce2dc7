"""django-q2 tasks for webhooks (the deliver queue): each takes ids and calls one service."""

import logging

from infra.queues import DELIVER, enqueue_or_leave

log = logging.getLogger(__name__)


def enqueue_deliveries(delivery_ids: list[int]) -> None:
    """Deliveries are rows due now: with the broker away they wait for the every-minute sweeper."""
    for delivery_id in delivery_ids:
        if enqueue_or_leave("invoicing.webhooks.tasks.deliver_webhook", delivery_id, queue=DELIVER,
                            group="webhooks", task_name=f"webhook-{delivery_id}") is None:
            break  # the broker is away: the rest would fail the same way


def deliver_webhook(delivery_id: int) -> str:
    from invoicing.webhooks.services import webhook_deliver

    return webhook_deliver(delivery_id=delivery_id)


def sweep_webhook_deliveries() -> int:
    """Periodic: queue deliveries whose retry is due, and those a crashed worker left behind."""
    from invoicing.webhooks.services import due_delivery_ids

    ids = due_delivery_ids()
    enqueue_deliveries(ids)
    if ids:
        log.info("webhook sweeper queued %d deliver(ies)", len(ids))
    return len(ids)
