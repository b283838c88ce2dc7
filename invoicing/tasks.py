"""django-q2 tasks: each takes ids, calls one service, and is enqueued after commit."""

from django_q.tasks import async_task


def enqueue_stamp(invoice_id: int) -> None:
    async_task("invoicing.tasks.stamp_invoice", invoice_id, task_name=f"stamp-invoice-{invoice_id}",
               group="stamp")


def stamp_invoice(invoice_id: int) -> str:
    from invoicing.services.stamping import invoice_stamp

    return invoice_stamp(invoice_id=invoice_id)
