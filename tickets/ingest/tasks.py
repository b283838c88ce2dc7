"""django-q2 task for large batches: takes the batch's id, calls one service; enqueued after commit."""

from django_q.tasks import async_task


def enqueue_batch(batch_pk: int) -> None:
    async_task("tickets.ingest.tasks.process_batch", batch_pk, task_name=f"ticket-batch-{batch_pk}", group="batch")


def process_batch(batch_pk: int) -> str:
    from tickets.services import batch_process

    return batch_process(batch_pk=batch_pk)
