"""Standard Webhooks: every event type the product sends verifies with the `standardwebhooks` package on a real
loopback receiver; one webhook-id across retries; secret rotation (both secrets verify during the overlap, only
the new one after it, with the clock moved); the test event through the normal delivery path; the API and the
admin, each against a second merchant."""

import base64
import datetime as dt
import re
import secrets
from pathlib import Path

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from infra.models import Event
from invoicing.webhooks import signing
from invoicing.webhooks.models import EVENTS, TEST_EVENT, WebhookDelivery, WebhookEndpoint
from invoicing.webhooks.services import (
    webhook_deliver,
    webhook_emit,
    webhook_endpoint_create,
    webhook_secret_rotate,
    webhook_send_test,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
PRODUCT_EVENTS = [*EVENTS, TEST_EVENT]
EVENT_NAME = re.compile(r"""["']((?:invoice|global_invoice|batch|webhook)\.[a-z_]+)["']""")


def _emit(merchant, event="invoice.stamped"):
    return webhook_emit(merchant_id=merchant.pk, event=event, data={"id": 7, "total": "116.00"})


def _make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def _move_clock(monkeypatch, delta):
    moved = timezone.now() + delta
    monkeypatch.setattr(timezone, "now", lambda: moved)
    return moved


def _fails(request, secret):
    with pytest.raises(WebhookVerificationError):
        request.verified(secret)
    return True


def test_the_event_names_in_the_code_are_exactly_the_listed_ones():
    """So "every event type the product sends" is EVENTS plus the test event, which the next test walks."""
    found = set()
    for top in ("invoicing", "tickets", "portal"):
        for path in (ROOT / top).rglob("*.py"):
            if "/migrations/" not in path.as_posix():
                found |= set(EVENT_NAME.findall(path.read_text(encoding="utf-8")))
    assert found == set(PRODUCT_EVENTS)


@pytest.mark.parametrize("event", PRODUCT_EVENTS)
def test_every_event_type_verifies_with_the_standard_webhooks_library(event, merchant, receiver, allow_private):
    endpoint, secret = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    if event == TEST_EVENT:
        delivery = webhook_send_test(endpoint=endpoint, actor="ana")
    else:
        [delivery] = _emit(merchant, event)
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    [request] = receiver.requests
    payload = request.verified(secret)
    assert payload["type"] == event and payload["id"] == str(delivery.event_id)
    assert dt.datetime.fromisoformat(payload["timestamp"]).tzinfo is not None
    assert request.headers["webhook-id"] == str(delivery.event_id)
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", request.headers["webhook-signature"])
    assert _fails(request, signing.new_secret())


def test_a_secret_is_whsec_and_the_base64_of_32_random_bytes(merchant):
    _, secret = webhook_endpoint_create(merchant=merchant, url="https://erp.example.com/hooks")
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert signing.secret_key(secret) == base64.b64decode(secret[6:])


def test_every_retry_carries_the_same_webhook_id_and_its_own_valid_signature(merchant, receiver, allow_private):
    _, secret = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    receiver.script = [500, 503]
    [delivery] = _emit(merchant)
    for _ in range(3):
        webhook_deliver(delivery_id=delivery.pk)
        _make_due(delivery)
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered"
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(delivery.event_id)}
    assert all(r.verified(secret)["id"] == str(delivery.event_id) for r in receiver.requests)


def test_a_secret_from_before_the_standard_format_still_signs_with_its_key(merchant, receiver, allow_private):
    """Old secrets were URL-safe base64; a receiver converts one to the standard alphabet (docs/webhooks.md)."""
    legacy = "whsec_" + secrets.token_urlsafe(32)
    endpoint, _ = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=legacy)
    [delivery] = _emit(merchant)
    webhook_deliver(delivery_id=delivery.pk)
    converted = "whsec_" + base64.b64encode(base64.urlsafe_b64decode(legacy[6:] + "==")).decode()
    assert receiver.requests[0].verified(converted)["type"] == "invoice.stamped"


# --- rotation -------------------------------------------------------------------------------------------------

def test_during_the_overlap_both_secrets_verify_and_after_it_only_the_new_one(merchant, receiver, allow_private,
                                                                               monkeypatch):
    endpoint, old = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    [before] = _emit(merchant)  # emitted before the rotation, sent after it
    endpoint, new = webhook_secret_rotate(endpoint=endpoint, actor="ana")
    assert new != old and Webhook(new)
    assert endpoint.previous_secret_expires_at - endpoint.secret_rotated_at == dt.timedelta(hours=24)
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (stored.secret, stored.previous_secret) == (new, old)

    webhook_deliver(delivery_id=before.pk)
    [during] = _emit(merchant)
    webhook_deliver(delivery_id=during.pk)
    for request in receiver.requests:
        assert len(request.headers["webhook-signature"].split(" ")) == 2  # "v1,<new> v1,<old>"
        assert request.verified(old) == request.verified(new)

    _move_clock(monkeypatch, dt.timedelta(hours=24, seconds=1))
    [after] = _emit(merchant)
    assert webhook_deliver(delivery_id=after.pk) == "delivered"
    request = receiver.requests[-1]
    assert request.verified(new)["id"] == str(after.event_id)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert _fails(request, old)


def test_a_retry_after_the_overlap_keeps_its_webhook_id_and_is_signed_with_the_new_secret_only(
        merchant, receiver, allow_private, monkeypatch):
    endpoint, old = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    receiver.script = [500]
    [delivery] = _emit(merchant)
    webhook_deliver(delivery_id=delivery.pk)
    assert receiver.requests[0].verified(old)
    _, new = webhook_secret_rotate(endpoint=endpoint)
    _move_clock(monkeypatch, dt.timedelta(hours=25))
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"  # the backoff is long past on the moved clock
    first, retry = receiver.requests
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == str(delivery.event_id)
    assert retry.verified(new) and _fails(retry, old)


def test_the_overlap_is_configurable_and_zero_ends_the_old_secret_at_once(merchant, receiver, allow_private,
                                                                          settings):
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 2
    endpoint, old = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    endpoint, mid = webhook_secret_rotate(endpoint=endpoint)
    assert endpoint.previous_secret_expires_at - endpoint.secret_rotated_at == dt.timedelta(hours=2)
    endpoint, new = webhook_secret_rotate(endpoint=endpoint, overlap=dt.timedelta(0))
    assert endpoint.previous_secret is None and endpoint.previous_secret_expires_at is None
    [delivery] = _emit(merchant)
    webhook_deliver(delivery_id=delivery.pk)
    [request] = receiver.requests
    assert request.verified(new) and _fails(request, mid) and _fails(request, old)


def test_a_rotation_during_another_keeps_only_the_two_newest_secrets(merchant, receiver, allow_private):
    endpoint, first = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    endpoint, second = webhook_secret_rotate(endpoint=endpoint)
    endpoint, third = webhook_secret_rotate(endpoint=endpoint)
    [delivery] = _emit(merchant)
    webhook_deliver(delivery_id=delivery.pk)
    [request] = receiver.requests
    assert request.verified(third) and request.verified(second) and _fails(request, first)


def test_a_rotation_is_recorded_without_the_secret(merchant):
    endpoint, old = webhook_endpoint_create(merchant=merchant, url="https://erp.example.com/hooks")
    _, new = webhook_secret_rotate(endpoint=endpoint, actor="ana")
    event = Event.objects.filter(entity="webhook", object_id=endpoint.pk, reason__startswith="secreto").get()
    assert event.actor == "ana" and event.data["previous_secret_expires_at"]
    assert new not in str(event.__dict__) and old not in str(event.__dict__)


# --- API -------------------------------------------------------------------------------------------------------

def test_the_api_rotates_the_secret_and_shows_it_once(api, receiver, allow_private, merchant):
    created = api.post("/api/v1/webhooks", {"url": receiver.url}, format="json").json()
    url = f"/api/v1/webhooks/{created['id']}/rotate-secret"
    assert created["links"]["rotate_secret"].endswith(url)
    response = api.post(url, {}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    new = body["secret"]
    assert new.startswith("whsec_") and new != created["secret"]
    expires = dt.datetime.fromisoformat(body["previous_secret_expires_at"])
    rotated = dt.datetime.fromisoformat(body["secret_rotated_at"])
    assert expires - rotated == dt.timedelta(hours=24)
    shown = api.get(f"/api/v1/webhooks/{created['id']}").json()
    assert "secret" not in shown and shown["previous_secret_expires_at"] == body["previous_secret_expires_at"]

    test = api.post(f"/api/v1/webhooks/{created['id']}/test").json()
    webhook_deliver(delivery_id=test["id"])
    [request] = receiver.requests
    assert request.verified(created["secret"])["type"] == "webhook.test" and request.verified(new)

    now = api.post(url, {"previous_secret_hours": 0}, format="json").json()
    assert now["previous_secret_expires_at"] is None


@pytest.mark.parametrize("body", [{"previous_secret_hours": 169}, {"previous_secret_hours": -1},
                                  {"previous_secret_hours": "mañana"}])
def test_a_bad_overlap_is_a_400_naming_the_field_and_changes_nothing(api, body):
    created = api.post("/api/v1/webhooks", {"url": "https://erp.example.com/hooks"}, format="json").json()
    response = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "previous_secret_hours" in error["details"]
    assert WebhookEndpoint.objects.get(pk=created["id"]).secret == created["secret"]


def test_another_merchants_key_cannot_rotate_or_test(api, other_api):
    created = api.post("/api/v1/webhooks", {"url": "https://erp.example.com/hooks"}, format="json").json()
    base = f"/api/v1/webhooks/{created['id']}"
    for response in (other_api.post(f"{base}/rotate-secret", {}, format="json"), other_api.post(f"{base}/test")):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.secret == created["secret"] and endpoint.previous_secret is None
    assert not WebhookDelivery.objects.exists()


def test_the_rotation_is_in_the_openapi_schema_with_an_example(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/webhooks/{id}/rotate-secret"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["examples"]
    # The format is explained once, in the API's description page, which the create operation points to.
    assert "Standard Webhooks" in schema["info"]["description"]
    assert "Webhooks" in schema["paths"]["/api/v1/webhooks"]["post"]["description"]


# --- admin -----------------------------------------------------------------------------------------------------

@pytest.fixture
def owner(client, merchant, make_staff):
    client.force_login(make_staff(merchant, "duena-a"))
    return client


def test_the_admin_button_rotates_and_shows_the_new_secret_once(owner, merchant, receiver, allow_private):
    endpoint, old = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    change = f"/admin/invoicing/webhookendpoint/{endpoint.pk}/change/"
    page = owner.get(change).content.decode()
    assert "rotar-secreto" in page and "Rotar el secreto de firma" in page
    assert owner.get(f"/admin/invoicing/webhookendpoint/{endpoint.pk}/rotar-secreto/").status_code == 302
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == old  # a GET changes nothing

    response = owner.post(f"/admin/invoicing/webhookendpoint/{endpoint.pk}/rotar-secreto/", follow=True)
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert stored.secret != old and stored.previous_secret == old
    shown = response.content.decode()
    assert stored.secret in shown and "no se volverá a mostrar" in shown and "sigue firmando" in shown
    assert stored.secret not in owner.get(change).content.decode()

    owner.post(f"/admin/invoicing/webhookendpoint/{endpoint.pk}/probar/")
    [delivery] = WebhookDelivery.objects.filter(event="webhook.test")
    webhook_deliver(delivery_id=delivery.pk)
    [request] = receiver.requests
    assert request.verified(stored.secret)["type"] == "webhook.test" and request.verified(old)


def test_the_admin_actions_rotate_and_send_a_test_event(owner, merchant, receiver, allow_private):
    endpoint, old = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    response = owner.post("/admin/invoicing/webhookendpoint/", {"action": "rotate_secret",
                                                                "_selected_action": [endpoint.pk]}, follow=True)
    new = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    assert new != old and new in response.content.decode()
    owner.post("/admin/invoicing/webhookendpoint/", {"action": "send_test", "_selected_action": [endpoint.pk]})
    [delivery] = WebhookDelivery.objects.filter(event="webhook.test", endpoint=endpoint)
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert receiver.requests[0].verified(new)["type"] == "webhook.test"


def test_another_merchants_staff_cannot_rotate_or_test(client, merchant, other_merchant, make_staff):
    endpoint, old = webhook_endpoint_create(merchant=merchant, url="https://erp.example.com/hooks")
    client.force_login(make_staff(other_merchant, "dueno-b"))
    base = f"/admin/invoicing/webhookendpoint/{endpoint.pk}"
    for url in (f"{base}/rotar-secreto/", f"{base}/probar/"):
        assert client.post(url).status_code in (302, 404)
    for action in ("rotate_secret", "send_test"):
        client.post("/admin/invoicing/webhookendpoint/", {"action": action, "_selected_action": [endpoint.pk]})
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert stored.secret == old and stored.previous_secret is None
    assert not WebhookDelivery.objects.exists()
