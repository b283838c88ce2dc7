"""A finished background batch is announced to the merchant's webhooks (tickets → signal → invoicing)."""

from tickets.models import Batch
from tickets.services import api_key_create


def test_finished_batch_emits_batch_completed(merchant, branch, settings, queued_tasks,
                                              django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(merchant=merchant, url="https://erp.example.com/hooks", secret="whsec_x",
                                   events=["batch.completed"])
    settings.API_BATCH_SYNC_MAX = 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant, name='x', scopes=['tickets'])[1]}")
    ticket = {"branch": branch.code, "sold_at": "2026-11-20T12:00:00-06:00", "payment_form": "01", "total": "116.00",
              "lines": [{"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO", "quantity": "1",
                         "unit_price": "116.00", "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]}]}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/tickets/batch", {"batch_id": "b1", "tickets": [
            {**ticket, "number": "1"}, {**ticket, "number": "2"}]}, format="json")
    assert response.status_code == 202
    assert queued_tasks[0][:2] == ("bulk", "tickets.ingest.tasks.process_batch")
    assert queued_tasks.run() == "done"
    delivery = WebhookDelivery.objects.get(event="batch.completed")
    assert delivery.payload["data"]["batch_id"] == "b1" and delivery.payload["data"]["created"] == 2
    assert Batch.objects.get().status == "done"
