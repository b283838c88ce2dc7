"""What the merchant hears of an extra stamp (services/duplicates.py): the ``invoice.duplicate_stamp`` webhook at
each step and the emails. Apart from duplicates.py so the cancellation machinery can report its steps without
importing what starts them."""

from __future__ import annotations

import logging

from django.db import transaction

from infra.queues import DELIVER, enqueue_on_commit
from invoicing.models import ExtraStamp
from invoicing.webhooks.models import WebhookEndpoint
from invoicing.webhooks.services import invoice_event_data, webhook_emit

log = logging.getLogger("invoicing.pac")

EVENT = "invoice.duplicate_stamp"


def duplicate_stamp_data(extra: ExtraStamp, cancellation=None) -> dict:
    return {
        "uuid": str(extra.uuid).upper(),
        "pac": extra.pac,
        "how": extra.how,
        "detected_at": extra.detected_at,
        "cancellation": {"id": cancellation.pk, "status": cancellation.status, "motive": cancellation.motive,
                         "sat_status": cancellation.sat_status} if cancellation is not None else None,
    }


def duplicate_stamp_updated(extra: ExtraStamp, cancellation=None) -> None:
    """``invoice.duplicate_stamp``: found, then each step of its cancellation. The invoice in it is the legal
    document (its UUID unchanged); ``duplicate`` is the stamp being cancelled."""
    try:
        with transaction.atomic():  # a savepoint: a webhook problem never undoes the step
            invoice = extra.invoice
            if not WebhookEndpoint.objects.filter(merchant_id=invoice.merchant_id, is_active=True).exists():
                return
            webhook_emit(merchant_id=invoice.merchant_id, event=EVENT,
                         data={**invoice_event_data(invoice), "duplicate": duplicate_stamp_data(extra, cancellation)})
    except Exception:
        log.exception("webhook %s for extra stamp %s could not be emitted", EVENT, extra.pk)


def merchant_email_on_commit(extra_stamp_id: int, kind: str) -> None:
    enqueue_on_commit("invoicing.tasks_cancel.duplicate_stamp_email", extra_stamp_id, kind, queue=DELIVER,
                      group="cancel")
