"""django-q2 tasks for large batches (the bulk queue): each takes the batch's id (or nothing) and calls one
service; enqueued after commit."""

from infra.queues import BULK, enqueue_or_leave


def enqueue_batch(batch_pk: int) -> None:
    """After the commit that stored the batch. A broker that is away must not turn the stored batch into a 500
    (the POS would resend it into a 409): the batch waits in ``received`` under its lease, and the bulk cluster
    queues it again when the broker is back (``batch_requeue_received``), the sweeper at the latest."""
    enqueue_or_leave("tickets.ingest.tasks.process_batch", batch_pk, queue=BULK, task_name=f"ticket-batch-{batch_pk}",
                     group="batch")


def process_batch(batch_pk: int) -> str:
    from tickets.services import batch_process

    return batch_process(batch_pk=batch_pk)


def sweep_batches() -> int:
    """Periodic (invoicing/schedules.py): batches abandoned by a dead worker are resumed or failed."""
    from tickets.services import batch_sweep

    return batch_sweep()
