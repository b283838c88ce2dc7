"""django-q2 tasks for large batches (the bulk queue): each takes the batch's id (or nothing) and calls one
service; enqueued after commit."""

from tickets.services import batch_process, batch_sweep


def process_batch(batch_pk: int) -> str:
    return batch_process(batch_pk=batch_pk)


def sweep_batches() -> int:
    """Periodic (invoicing/schedules.py): batches abandoned by a dead worker are resumed or failed."""
    return batch_sweep()
