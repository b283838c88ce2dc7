"""Webhooks for what other apps announce with signals."""

from invoicing.webhooks.services import webhook_emit


def on_batch_finished(sender, batch, **kwargs) -> None:
    webhook_emit(merchant_id=batch.merchant_id, event="batch.completed", data={
        "batch_id": batch.batch_id, "status": batch.status, "total": batch.total_count,
        "created": batch.created_count, "duplicates": batch.duplicate_count, "rejected": batch.rejected_count,
        "report": f"/api/v1/batches/{batch.batch_id}",
    })
