"""django-q2 task for large batches (the bulk queue): takes the batch's id, calls one service; enqueued after
commit."""

from tickets.queues import BULK, enqueue


def enqueue_batch(batch_pk: int) -> None:
    enqueue("tickets.ingest.tasks.process_batch", batch_pk, queue=BULK, task_name=f"ticket-batch-{batch_pk}",
            group="batch")


def process_batch(batch_pk: int) -> str:
    from tickets.services import batch_process

    return batch_process(batch_pk=batch_pk)
