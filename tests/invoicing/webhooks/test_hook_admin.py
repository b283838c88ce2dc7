"""Back office: create an endpoint (secret shown once), deliveries inline, "reenviar", merchant isolation."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages

from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint
from invoicing.webhooks.services import webhook_emit, webhook_endpoint_create


def _webhook_permissions():
    return Permission.objects.filter(content_type__app_label="invoicing", content_type__model__startswith="webhook")


@pytest.fixture
def staff_client(client, merchant, make_staff):
    client.force_login(make_staff(merchant, "staff-a", _webhook_permissions()))
    return client


def _failed_delivery(merchant):
    endpoint, _ = webhook_endpoint_create(merchant=merchant, url="https://erp.example.com/hooks")
    [delivery] = webhook_emit(merchant_id=merchant.pk, event="invoice.stamped", data={"id": 1})
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=10, last_status_code=500,
                                                          response_excerpt="boom", next_attempt_at=None)
    return endpoint, delivery


def test_staff_creates_an_endpoint_for_their_merchant_and_sees_the_secret_once(staff_client, merchant):
    response = staff_client.post("/admin/invoicing/webhookendpoint/add/", {
        "url": "https://erp.example.com/hooks", "events": ["invoice.stamped"], "description": "ERP",
        "is_active": "on", "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    }, follow=True)
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.merchant == merchant and endpoint.events == ["invoice.stamped"]
    shown = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert endpoint.secret in shown and "no se volverá a mostrar" in shown
    page = staff_client.get(f"/admin/invoicing/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret not in page


def test_a_url_that_is_not_http_is_explained_in_spanish(staff_client):
    response = staff_client.post("/admin/invoicing/webhookendpoint/add/", {
        "url": "ftp://erp.example.com/hooks", "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200 and "https://" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_change_page_lists_recent_deliveries_and_reenviar_requeues_failed_ones(staff_client, merchant):
    endpoint, delivery = _failed_delivery(merchant)
    page = staff_client.get(f"/admin/invoicing/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert "invoice.stamped" in page and "boom" in page
    response = staff_client.post("/admin/invoicing/webhookendpoint/", {
        "action": "redeliver_failed", "_selected_action": [endpoint.pk]})
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0) and delivery.next_attempt_at

    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    response = staff_client.post("/admin/invoicing/webhookdelivery/", {
        "action": "redeliver", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "pending"


def test_another_merchants_staff_sees_nothing(client, merchant, other_merchant, make_staff):
    endpoint, delivery = _failed_delivery(merchant)
    client.force_login(make_staff(other_merchant, "staff-b", _webhook_permissions()))
    assert client.get(f"/admin/invoicing/webhookendpoint/{endpoint.pk}/change/").status_code == 302  # not found
    assert client.get(f"/admin/invoicing/webhookdelivery/{delivery.pk}/change/").status_code == 302
    assert "erp.example.com" not in client.get("/admin/invoicing/webhookendpoint/").content.decode()
    assert "invoice.stamped" not in client.get("/admin/invoicing/webhookdelivery/").content.decode()
    client.post("/admin/invoicing/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.pk]})
    client.post("/admin/invoicing/webhookendpoint/", {"action": "redeliver_failed",
                                                      "_selected_action": [endpoint.pk]})
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "failed"
