"""Delivery against a real HTTP server: signature, retries with backoff (500, timeout), recovery, give-up and
manual redelivery, event filtering, transactions, the SSRF guard, the sweeper."""

import datetime as dt
import json
import time

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from infra.errors import InvalidInput
from infra.models import Event
from invoicing.webhooks.models import WebhookDelivery
from invoicing.webhooks.services import (
    due_delivery_ids,
    webhook_deliver,
    webhook_emit,
    webhook_endpoint_create,
    webhook_redeliver,
)
from invoicing.webhooks.tasks import sweep_webhook_deliveries

pytestmark = pytest.mark.django_db


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """The receiver's side, with the Standard Webhooks library as docs/webhooks.md shows it."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def _emit(merchant, event="invoice.stamped", data=None):
    return webhook_emit(merchant_id=merchant.pk, event=event, data=data or {"id": 7, "total": "116.00"})


def _make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def _reload(delivery):
    return WebhookDelivery.objects.get(pk=delivery.pk)


def test_delivery_is_signed_with_the_endpoint_secret_and_marked_delivered(merchant, receiver, allow_private,
                                                                          django_capture_on_commit_callbacks):
    endpoint, secret = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [delivery] = _emit(merchant, data={"id": 7, "total": "116.00", "name": "ÑANDÚ"})
    assert len(callbacks) == 1  # queued only after commit

    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    [request] = receiver.requests
    assert verify(secret, request.headers, request.body)
    assert not verify("whsec_b3Rybw==", request.headers, request.body)
    assert not verify(secret, request.headers, request.body + b" ")
    assert not verify(secret, {**request.headers, "webhook-id": "otro"}, request.body)
    assert request.headers["webhook-id"] == str(delivery.event_id)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["content-type"] == "application/json"
    payload = json.loads(request.body)
    assert payload["id"] == str(delivery.event_id) and payload["type"] == "invoice.stamped"
    assert payload["data"] == {"id": 7, "total": "116.00", "name": "ÑANDÚ"}
    assert dt.datetime.fromisoformat(payload["created_at"]).tzinfo is not None
    delivery = _reload(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at and delivery.response_excerpt == '{"ok": true}'
    assert Event.objects.filter(entity="webhook_delivery", object_id=delivery.pk, to_status="delivered").exists()
    # Sent once: a second call (a duplicate task) does nothing.
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered" and len(receiver.requests) == 1


def test_a_500_is_retried_with_exponential_backoff_until_the_receiver_recovers(merchant, receiver, allow_private):
    webhook_endpoint_create(merchant=merchant, url=receiver.url)
    receiver.script = [500, 502]
    receiver.body = b"fallo interno"
    [delivery] = _emit(merchant)

    before = timezone.now()
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    first = _reload(delivery)
    assert (first.attempts, first.last_status_code, first.response_excerpt) == (1, 500, "fallo interno")
    assert dt.timedelta(seconds=29) < first.next_attempt_at - before < dt.timedelta(seconds=35)
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"  # not due yet: nothing sent
    assert len(receiver.requests) == 1

    _make_due(delivery)
    before = timezone.now()
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    second = _reload(delivery)
    assert (second.attempts, second.last_status_code) == (2, 502)
    assert dt.timedelta(seconds=59) < second.next_attempt_at - before < dt.timedelta(seconds=65)  # doubled

    _make_due(delivery)
    receiver.body = b"ok"
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    final = _reload(delivery)
    assert (final.status, final.attempts, final.last_status_code, final.next_attempt_at) == ("delivered", 3, 200,
                                                                                             None)
    # Every attempt carries the same event id, so the receiver can deduplicate.
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(delivery.event_id)}


def test_a_timeout_is_a_failed_attempt_and_is_retried(merchant, receiver, allow_private):
    webhook_endpoint_create(merchant=merchant, url=receiver.url)
    receiver.script = [("sleep", 2)]  # the client gives up after WEBHOOK_TIMEOUT_SECONDS = 1
    [delivery] = _emit(merchant)
    started = time.monotonic()
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    assert time.monotonic() - started < 1.9
    timed_out = _reload(delivery)
    assert timed_out.attempts == 1 and timed_out.last_status_code is None
    assert "tiempo agotado" in timed_out.response_excerpt
    _make_due(delivery)
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"


def test_after_the_last_attempt_it_fails_and_reenviar_sends_it_again(merchant, receiver, allow_private, settings,
                                                                    django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    webhook_endpoint_create(merchant=merchant, url=receiver.url)
    receiver.default_status = 503
    [delivery] = _emit(merchant)
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    _make_due(delivery)
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    failed = _reload(delivery)
    assert (failed.attempts, failed.last_status_code, failed.next_attempt_at) == (2, 503, None)
    assert Event.objects.filter(entity="webhook_delivery", object_id=delivery.pk, to_status="failed").exists()
    assert delivery.pk not in due_delivery_ids()

    receiver.default_status = 204
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert webhook_redeliver(delivery=failed, actor="ana")
    assert len(callbacks) == 1
    assert not webhook_redeliver(delivery=_reload(delivery))  # only failed ones
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert _reload(delivery).attempts == 1


def test_only_active_endpoints_subscribed_to_the_event_get_a_delivery(merchant, other_merchant, receiver):
    everything, _ = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    stamped_only, _ = webhook_endpoint_create(merchant=merchant, url=receiver.url, events=["invoice.stamped"])
    webhook_endpoint_create(merchant=merchant, url=receiver.url, events=["invoice.failed"])
    webhook_endpoint_create(merchant=merchant, url=receiver.url, is_active=False)
    webhook_endpoint_create(merchant=other_merchant, url=receiver.url)

    assert {d.endpoint_id for d in _emit(merchant, "invoice.stamped")} == {everything.pk, stamped_only.pk}
    assert len(_emit(merchant, "batch.completed")) == 1
    with pytest.raises(ValueError):
        _emit(merchant, "invoice.unknown")


def test_an_event_emitted_in_a_transaction_that_rolls_back_does_not_exist(merchant, receiver):
    webhook_endpoint_create(merchant=merchant, url=receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        _emit(merchant)
        raise RuntimeError("the change that caused the event failed")
    assert not WebhookDelivery.objects.exists()


def test_the_response_excerpt_is_capped_at_one_kilobyte(merchant, receiver, allow_private):
    webhook_endpoint_create(merchant=merchant, url=receiver.url)
    receiver.default_status = 400
    receiver.body = b"x" * 5000
    [delivery] = _emit(merchant)
    webhook_deliver(delivery_id=delivery.pk)
    assert len(_reload(delivery).response_excerpt) == 1024


def test_private_and_loopback_addresses_are_refused_without_the_setting(merchant, receiver, settings):
    settings.DEBUG = False
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost"), "http://10.1.2.3/hook",
                "http://169.254.169.254/latest/meta-data"):
        webhook_endpoint_create(merchant=merchant, url=url)
    deliveries = _emit(merchant)
    for delivery in deliveries:
        assert webhook_deliver(delivery_id=delivery.pk) == "failed"  # no retries: it will not change
        assert "no pública" in _reload(delivery).response_excerpt
    assert receiver.requests == []
    settings.WEBHOOK_ALLOW_PRIVATE = True
    [loopback] = [d for d in deliveries if d.endpoint.url == receiver.url]
    webhook_redeliver(delivery=_reload(loopback))
    assert webhook_deliver(delivery_id=loopback.pk) == "delivered" and len(receiver.requests) == 1


def test_urls_that_are_not_http_are_refused_when_registered_and_when_delivered(merchant, allow_private):
    for url in ("ftp://example.com/x", "file:///etc/passwd", "gopher://127.0.0.1:25/", "example.com/hook",
                "https://user:pw@example.com/", "http://[::1", "http://example.com:99999/",
                "https://example.com/a b"):
        with pytest.raises(InvalidInput) as err:
            webhook_endpoint_create(merchant=merchant, url=url)
        assert "url" in err.value.details
    endpoint, _ = webhook_endpoint_create(merchant=merchant, url="https://example.com/hook")
    type(endpoint).objects.filter(pk=endpoint.pk).update(url="file:///etc/passwd")  # as if edited behind our back
    [delivery] = _emit(merchant)
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    assert "http" in _reload(delivery).response_excerpt


def test_the_sweeper_queues_due_retries_and_deliveries_whose_worker_died(merchant, receiver):
    webhook_endpoint_create(merchant=merchant, url=receiver.url)
    due, later, delivered = _emit(merchant) + _emit(merchant) + _emit(merchant)
    _make_due(due)
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    WebhookDelivery.objects.filter(pk=delivered.pk).update(status="delivered", next_attempt_at=None)
    assert due_delivery_ids() == [due.pk]
    assert sweep_webhook_deliveries() == 1
    # A lease (a worker holding it) expires like any due time: the sweeper picks it up again.
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert set(due_delivery_ids()) == {due.pk, later.pk}


def test_a_delivery_of_a_deactivated_endpoint_is_not_sent(merchant, receiver, allow_private):
    endpoint, _ = webhook_endpoint_create(merchant=merchant, url=receiver.url)
    [delivery] = _emit(merchant)
    type(endpoint).objects.filter(pk=endpoint.pk).update(is_active=False)
    assert webhook_deliver(delivery_id=delivery.pk) == "failed"
    assert receiver.requests == [] and "desactivado" in _reload(delivery).response_excerpt
