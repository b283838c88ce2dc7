"""Webhooks API: CRUD with the secret shown once, validation in the error envelope, test event, deliveries,
scope, and a second merchant's key seeing nothing."""

import pytest
from django.db import connection

from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint
from invoicing.webhooks.services import webhook_deliver, webhook_emit


def _create(api, **body):
    return api.post("/api/v1/webhooks", {"url": "https://erp.example.com/hooks", **body}, format="json")


def test_create_returns_the_secret_once_and_stores_it_encrypted(api, merchant):
    response = _create(api, events=["invoice.stamped", "invoice.failed"], description="ERP")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["events"] == ["invoice.stamped", "invoice.failed"] and body["is_active"] is True
    assert body["links"]["test"].endswith(f"/api/v1/webhooks/{body['id']}/test")
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.merchant == merchant and endpoint.secret == body["secret"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM invoicing_webhookendpoint WHERE id = %s", [endpoint.pk])
        assert body["secret"].encode() not in bytes(cursor.fetchone()[0])
    assert "secret" not in api.get(f"/api/v1/webhooks/{body['id']}").json()
    listed = api.get("/api/v1/webhooks").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]


@pytest.mark.parametrize("body,field", [
    ({"url": "ftp://erp.example.com/x"}, "url"),
    ({"url": "no-es-una-url"}, "url"),
    ({"events": ["invoice.unknown"]}, "events"),
    ({"events": "invoice.stamped"}, "events"),
    ({"is_active": "quizá"}, "is_active"),
])
def test_bad_input_is_a_400_naming_the_field(api, body, field):
    response = _create(api, **body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and any(k.startswith(field) for k in error["details"])
    assert not WebhookEndpoint.objects.exists()


def test_patch_changes_events_and_deactivates_then_delete_removes_it(api):
    created = _create(api).json()
    url = f"/api/v1/webhooks/{created['id']}"
    response = api.patch(url, {"events": ["batch.completed"], "is_active": False}, format="json")
    assert response.status_code == 200
    assert response.json()["events"] == ["batch.completed"] and response.json()["is_active"] is False
    assert api.patch(url, {"url": "javascript:alert(1)"}, format="json").status_code == 400
    assert api.get(url).json()["url"] == "https://erp.example.com/hooks"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404 and api.get(url).json()["error"]["code"] == "not_found"


def test_test_event_is_queued_and_its_result_shows_in_deliveries(api, receiver, allow_private,
                                                                 django_capture_on_commit_callbacks):
    created = _create(api, url=receiver.url, events=["invoice.failed"]).json()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(f"/api/v1/webhooks/{created['id']}/test")
    assert response.status_code == 202 and callbacks
    delivery = response.json()
    assert delivery["event"] == "webhook.test" and delivery["status"] == "pending"
    webhook_deliver(delivery_id=delivery["id"])
    assert receiver.requests[0].verified(created["secret"])["type"] == "webhook.test"
    assert receiver.requests[0].headers["webhook-id"] == delivery["event_id"]

    listed = api.get(f"/api/v1/webhooks/{created['id']}/deliveries").json()
    assert listed["count"] == 1
    assert listed["results"][0]["status"] == "delivered" and listed["results"][0]["last_status_code"] == 200
    assert api.get(f"/api/v1/webhooks/{created['id']}/deliveries?status=failed").json()["count"] == 0
    bad = api.get(f"/api/v1/webhooks/{created['id']}/deliveries?status=raro")
    assert bad.status_code == 400 and "status" in bad.json()["error"]["details"]
    assert api.get(f"/api/v1/webhooks/{created['id']}/deliveries?limit=x").status_code == 400


def test_a_key_without_the_webhooks_scope_or_no_key_is_refused(merchant, client, make_hooks_client):
    tickets_only = make_hooks_client(merchant, scopes=("tickets",))
    response = tickets_only.get("/api/v1/webhooks")
    assert response.status_code == 403 and response.json()["error"]["code"] == "missing_scope"
    response = client.get("/api/v1/webhooks")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_another_merchants_key_sees_and_touches_nothing(api, other_api, merchant):
    mine = _create(api).json()
    webhook_emit(merchant_id=merchant.pk, event="invoice.stamped", data={})
    base = f"/api/v1/webhooks/{mine['id']}"
    assert other_api.get("/api/v1/webhooks").json() == {"count": 0, "results": []}
    for response in (other_api.get(base), other_api.patch(base, {"is_active": False}, format="json"),
                     other_api.delete(base), other_api.post(f"{base}/test"), other_api.get(f"{base}/deliveries")):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    endpoint = WebhookEndpoint.objects.get(pk=mine["id"])
    assert endpoint.is_active and WebhookDelivery.objects.filter(event="webhook.test").count() == 0
    assert _create(other_api).status_code == 201
    assert api.get("/api/v1/webhooks").json()["count"] == 1


def test_the_webhook_operations_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/webhooks"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/webhooks/{id}"])
    assert "post" in paths["/api/v1/webhooks/{id}/test"] and "get" in paths["/api/v1/webhooks/{id}/deliveries"]
