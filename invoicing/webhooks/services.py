"""Webhook business logic: endpoints (create, update, delete, secret rotation), emission, signed delivery with
retries. Deliveries follow the Standard Webhooks format (invoicing/webhooks/signing.py, docs/webhooks.md).

Emission writes one ``WebhookDelivery`` per matching active endpoint inside the caller's transaction and queues
the deliveries after commit, so an event exists exactly when the change that caused it was committed.

Delivery claims the row first (a guarded update that pushes ``next_attempt_at`` one lease ahead), so a row queued
twice (task + sweeper) is sent once; a worker that dies mid-request leaves the lease to expire and the sweeper
re-queues it. Retries back off exponentially up to WEBHOOK_MAX_ATTEMPTS, then the delivery is ``failed``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from infra.errors import InvalidInput, Unprocessable
from infra.events import record_event, transition
from infra.queues import DELIVER, after_commit, enqueue_or_leave
from invoicing.lifecycle import LEGAL
from invoicing.models import Invoice
from invoicing.services.documents import public_download_url
from invoicing.webhooks import signing, transport
from invoicing.webhooks.models import EVENTS, TEST_EVENT, WebhookDelivery, WebhookEndpoint, new_secret
from tickets.models import Merchant

log = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_MERCHANT = 20
EXCERPT_BYTES = 1024
ENTITY = "webhook_delivery"


# --- Endpoints -------------------------------------------------------------------------------------------------

def _clean_url(url: str) -> str:
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise InvalidInput(details={"url": ["Usa una URL completa que empiece con https:// (o http://)."]})
    if len(url) > 500:
        raise InvalidInput(details={"url": ["La URL admite hasta 500 caracteres."]})
    if parts.username or parts.password:
        raise InvalidInput(details={"url": ["La URL no debe llevar usuario ni contraseña."]})
    return url


def _clean_events(events) -> list[str]:
    events = list(dict.fromkeys(e.strip() for e in (events or []) if isinstance(e, str) and e.strip()))
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidInput(details={"events": [f"Eventos desconocidos: {', '.join(unknown)}. "
                                               f"Válidos: {', '.join(EVENTS)}."]})
    return events


@transaction.atomic
def webhook_endpoint_create(*, merchant: Merchant, url: str, events=(), description: str = "",
                            is_active: bool = True, actor: str = "") -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (returned in clear so the caller can show it once)."""
    url, events = _clean_url(url), _clean_events(events)
    Merchant.objects.select_for_update().filter(pk=merchant.pk).first()  # serialises the per-merchant cap
    if WebhookEndpoint.objects.filter(merchant=merchant).count() >= MAX_ENDPOINTS_PER_MERCHANT:
        raise Unprocessable(f"Se admite un máximo de {MAX_ENDPOINTS_PER_MERCHANT} webhooks por comercio.",
                            code="too_many_webhooks")
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(merchant=merchant, url=url, secret=secret, events=events,
                                              description=(description or "").strip()[:200], is_active=is_active)
    record_event(merchant_id=merchant.pk, entity="webhook", object_id=endpoint.pk, from_status="",
                 to_status="active" if is_active else "inactive", actor=actor, reason=f"webhook creado: {url}")
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, url: str | None = None, events=None,
                            description: str | None = None, is_active: bool | None = None,
                            actor: str = "") -> WebhookEndpoint:
    changed = []
    if url is not None:
        endpoint.url = _clean_url(url)
        changed.append("url")
    if events is not None:
        endpoint.events = _clean_events(events)
        changed.append("events")
    if description is not None:
        endpoint.description = description.strip()[:200]
        changed.append("description")
    was_active = endpoint.is_active
    if is_active is not None:
        endpoint.is_active = bool(is_active)
        changed.append("is_active")
    if changed:
        endpoint.save(update_fields=changed)
        record_event(merchant_id=endpoint.merchant_id, entity="webhook", object_id=endpoint.pk,
                     from_status="active" if was_active else "inactive",
                     to_status="active" if endpoint.is_active else "inactive", actor=actor,
                     reason=f"webhook modificado: {', '.join(changed)}")
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: str = "") -> None:
    record_event(merchant_id=endpoint.merchant_id, entity="webhook", object_id=endpoint.pk,
                 from_status="active" if endpoint.is_active else "inactive", to_status="deleted", actor=actor,
                 reason=f"webhook eliminado: {endpoint.url}")
    endpoint.delete()


MAX_OVERLAP_HOURS = 7 * 24


def rotation_overlap_default() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "WEBHOOK_SECRET_OVERLAP_HOURS", 24)))


@transaction.atomic
def webhook_secret_rotate(*, endpoint: WebhookEndpoint, overlap: dt.timedelta | None = None,
                          actor: str = "") -> tuple[WebhookEndpoint, str]:
    """A new signing secret (returned in clear, to be shown once); the current one keeps signing too until
    ``overlap`` (default WEBHOOK_SECRET_OVERLAP_HOURS) has passed, so the receiver can switch without losing a
    message. ``overlap`` zero ends the old secret at once (a leaked one). Only two secrets are ever active: a
    rotation during another one ends the oldest at once.
    """
    overlap = rotation_overlap_default() if overlap is None else overlap
    if overlap < dt.timedelta(0) or overlap > dt.timedelta(hours=MAX_OVERLAP_HOURS):
        raise InvalidInput(details={"previous_secret_hours": [
            f"Indica de 0 a {MAX_OVERLAP_HOURS} horas para el secreto anterior."]})
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    now = timezone.now()
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret if overlap else None
    endpoint.previous_secret_expires_at = now + overlap if overlap else None
    endpoint.secret, endpoint.secret_rotated_at = secret, now
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "secret_rotated_at"])
    status = "active" if endpoint.is_active else "inactive"
    until = (f"el anterior firma también hasta {timezone.localtime(endpoint.previous_secret_expires_at):%d/%m/%Y %H:%M}"
             if overlap else "el anterior dejó de valer")
    record_event(merchant_id=endpoint.merchant_id, entity="webhook", object_id=endpoint.pk, from_status=status,
                 to_status=status, actor=actor, reason=f"secreto de firma rotado; {until}",
                 data={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat() if overlap
                       else None})
    return endpoint, secret


# --- Emission --------------------------------------------------------------------------------------------------

def _payload(event: str, event_id: uuid.UUID, data: dict) -> dict:
    # Round-trip through JSON so what is stored is exactly what is sent (Decimal → "116.00", dates → ISO).
    # "type", "timestamp", "data" are the Standard Webhooks payload; "id" and "created_at" were ours before it.
    created = timezone.now().isoformat()
    return json.loads(json.dumps({"id": str(event_id), "type": event, "timestamp": created, "created_at": created,
                                  "data": data}, cls=DjangoJSONEncoder))


def _enqueue_after_commit(delivery_ids: list[int]) -> None:
    if delivery_ids:
        after_commit(enqueue_deliveries, delivery_ids)


def enqueue_deliveries(delivery_ids: list[int]) -> None:
    """Deliveries are rows due now: with the broker away they wait for the every-minute sweeper."""
    for delivery_id in delivery_ids:
        if enqueue_or_leave("invoicing.webhooks.tasks.deliver_webhook", delivery_id, queue=DELIVER,
                            group="webhooks", task_name=f"webhook-{delivery_id}") is None:
            break  # the broker is away: the rest would fail the same way


@transaction.atomic
def webhook_emit(*, merchant_id: int, event: str, data: dict) -> list[WebhookDelivery]:
    """One delivery per active endpoint of the merchant subscribed to ``event``, queued after commit.

    Call it inside the transaction that makes the change the event reports: if that rolls back, nothing is sent.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; add it to invoicing.webhooks.models.EVENTS")
    endpoints = [e for e in WebhookEndpoint.objects.filter(merchant_id=merchant_id, is_active=True)
                 .only("pk", "events") if e.wants(event)]
    return _create_deliveries(merchant_id, endpoints, event, data)


def _create_deliveries(merchant_id: int, endpoints, event: str, data: dict) -> list[WebhookDelivery]:
    now = timezone.now()
    deliveries = []
    for endpoint in endpoints:
        event_id = uuid.uuid4()
        deliveries.append(WebhookDelivery.objects.create(
            merchant_id=merchant_id, endpoint_id=endpoint.pk, event=event, event_id=event_id,
            payload=_payload(event, event_id, data), next_attempt_at=now,
        ))
    _enqueue_after_commit([d.pk for d in deliveries])
    return deliveries


@transaction.atomic
def webhook_send_test(*, endpoint: WebhookEndpoint, actor: str = "") -> WebhookDelivery:
    """A ``webhook.test`` event to this endpoint only (even if inactive or filtered), to check the receiver."""
    data = {"message": "Evento de prueba: si lo recibes, tu webhook está bien configurado.",
            "endpoint_id": endpoint.pk, "requested_by": actor}
    return _create_deliveries(endpoint.merchant_id, [endpoint], TEST_EVENT, data)[0]


def invoice_event_data(invoice) -> dict:
    """The ``data`` of invoice events: what a POS/ERP needs to match the invoice to its sales and fetch it."""
    base = f"{settings.PUBLIC_BASE_URL}/api/v1/invoices/{invoice.pk}"
    links = {"self": base}
    data = {
        "id": invoice.pk, "kind": invoice.kind, "status": invoice.status,
        "uuid": str(invoice.uuid).upper() if invoice.uuid else None,
        "serie": invoice.serie, "folio": invoice.folio, "currency": invoice.currency, "total": invoice.total,
        "receptor_rfc": invoice.receptor_rfc, "stamped_at": invoice.stamped_at,
    }
    ticket_ids = list(invoice.ticket_links.order_by("ticket_id").values_list("ticket_id", flat=True))
    data["ticket_count"] = len(ticket_ids)
    if invoice.kind == Invoice.Kind.GLOBAL:
        # A global may hold thousands of tickets: the count here, the list through the API.
        data["global"] = {"periodicity": invoice.global_periodicity, "months": invoice.global_months,
                          "year": invoice.global_year}
    else:
        data["ticket_ids"] = ticket_ids
    if invoice.uuid and invoice.status in LEGAL:
        links.update({fmt: f"{base}/{fmt}" for fmt in ("xml", "pdf", "zip")})
        links["public"] = {fmt: public_download_url(invoice, fmt) for fmt in ("xml", "pdf", "zip")}
    if invoice.last_error_code:
        data["error"] = {"code": invoice.last_error_code, "message": invoice.last_error_message,
                         "permanent": invoice.last_error_permanent}
    data["links"] = links
    return data


def invoice_webhook_emit(*, invoice=None, invoice_id: int | None = None, event: str | None = None) -> int:
    """Emit an invoice event (``invoice.stamped`` / ``global_invoice.stamped`` by kind when ``event`` is None).

    Never breaks the caller: it runs in a savepoint and logs its own failures, because it is called from the
    stamping pipeline. Returns how many deliveries were created.
    """
    try:
        with transaction.atomic():
            if invoice is None:
                invoice = Invoice.objects.get(pk=invoice_id)
            if event is None:
                event = "global_invoice.stamped" if invoice.kind == Invoice.Kind.GLOBAL else "invoice.stamped"
            if not WebhookEndpoint.objects.filter(merchant_id=invoice.merchant_id, is_active=True).exists():
                return 0  # the common case: no query for the invoice's tickets
            return len(webhook_emit(merchant_id=invoice.merchant_id, event=event, data=invoice_event_data(invoice)))
    except Exception:
        log.exception("webhook %s for invoice %s could not be emitted", event, invoice_id or invoice.pk)
        return 0


def invoices_webhook_emit(invoice_ids: list[int]) -> int:
    """``invoice_webhook_emit`` for a stamped batch: one query when none of their merchants has an endpoint."""
    try:
        with transaction.atomic():  # a savepoint: called inside the stamping transaction, which must survive
            hooked = WebhookEndpoint.objects.filter(
                is_active=True, merchant_id__in=Invoice.objects.filter(pk__in=invoice_ids).values("merchant_id"))
            invoices = list(Invoice.objects.filter(pk__in=invoice_ids, merchant_id__in=hooked.values("merchant_id"))
                            .order_by("pk")) if hooked.exists() else []
    except Exception:
        log.exception("webhooks for %d stamped invoices could not be emitted", len(invoice_ids))
        return 0
    return sum(invoice_webhook_emit(invoice=invoice) for invoice in invoices)


def global_deadline_alert_hook(*, merchant, period, payload: dict) -> None:
    """Fits ``invoicing.services.global_schedule.ALERT_HOOKS``: the deadline alert as a webhook."""
    webhook_emit(merchant_id=merchant.pk, event="global_invoice.deadline_alert",
                 data={"period_id": period.pk, **payload})


# --- Delivery --------------------------------------------------------------------------------------------------

def _setting(name: str, default):
    return getattr(settings, name, default)


def backoff_seconds(attempts: int) -> int:
    base = int(_setting("WEBHOOK_BACKOFF_BASE_SECONDS", 60))
    return min(base * 2 ** max(attempts - 1, 0), int(_setting("WEBHOOK_BACKOFF_MAX_SECONDS", 6 * 3600)))


def _timeout() -> float:
    return float(_setting("WEBHOOK_TIMEOUT_SECONDS", 10))


def webhook_deliver(*, delivery_id: int) -> str:
    """Send one delivery if it is pending and due; returns its status afterwards. Safe to call twice."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=2 * _timeout() + 30)
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING,
                                             next_attempt_at__lte=now).update(next_attempt_at=lease)
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return "missing"  # its endpoint was deleted
    if not claimed:
        return delivery.status  # not due, already sent, or another worker holds it
    endpoint = delivery.endpoint
    if not endpoint.is_active and delivery.event != TEST_EVENT:
        _give_up(delivery, None, "El webhook está desactivado; no se envió.")
        return delivery.status
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # webhook-id is the event id, the same on every attempt (receivers deduplicate on it); the timestamp is this
    # attempt's, so a retry hours later is still inside the receiver's replay window.
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Autofactura-Webhooks/1.0",
        **signing.headers(endpoint.signing_secrets(now), str(delivery.event_id), int(time.time()), body),
    }
    attempts = delivery.attempts + 1
    try:
        status_code, excerpt = transport.post(endpoint.url, body=body, headers=headers, timeout=_timeout(),
                                              max_bytes=EXCERPT_BYTES)
    except transport.Refused as exc:
        delivery.attempts = attempts
        _give_up(delivery, None, str(exc))  # the address will not become acceptable by retrying
        return delivery.status
    except transport.SendError as exc:
        status_code, excerpt = None, str(exc)[:EXCERPT_BYTES]
    if status_code is not None and 200 <= status_code < 300:
        transition(delivery, entity=ENTITY, expected=WebhookDelivery.Status.PENDING,
                   to=WebhookDelivery.Status.DELIVERED, reason=f"{delivery.event}: HTTP {status_code}",
                   attempts=attempts, last_status_code=status_code, response_excerpt=excerpt,
                   delivered_at=timezone.now(), next_attempt_at=None)
        return delivery.status
    delivery.attempts = attempts
    if attempts >= int(_setting("WEBHOOK_MAX_ATTEMPTS", 10)):
        _give_up(delivery, status_code, excerpt)
        return delivery.status
    delay = backoff_seconds(attempts)
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
        attempts=attempts, last_status_code=status_code, response_excerpt=excerpt,
        next_attempt_at=timezone.now() + dt.timedelta(seconds=delay))
    log.info("webhook delivery %s: %s, retry %s in %ss", delivery.pk, status_code or excerpt[:80], attempts, delay)
    return WebhookDelivery.Status.PENDING


def _give_up(delivery: WebhookDelivery, status_code: int | None, excerpt: str) -> None:
    transition(delivery, entity=ENTITY, expected=WebhookDelivery.Status.PENDING, to=WebhookDelivery.Status.FAILED,
               reason=f"{delivery.event}: {excerpt[:200] or f'HTTP {status_code}'} (intento {delivery.attempts})",
               attempts=delivery.attempts, last_status_code=status_code, response_excerpt=excerpt[:EXCERPT_BYTES],
               next_attempt_at=None)


@transaction.atomic
def webhook_redeliver(*, delivery: WebhookDelivery, actor: str = "") -> bool:
    """A failed delivery back to pending with fresh attempts (same event id: receivers deduplicate by it)."""
    changed = transition(delivery, entity=ENTITY, expected=WebhookDelivery.Status.FAILED,
                         to=WebhookDelivery.Status.PENDING, actor=actor, reason="reenvío manual",
                         attempts=0, next_attempt_at=timezone.now())
    if changed:
        _enqueue_after_commit([delivery.pk])
    return changed


def due_delivery_ids(*, limit: int = 1000) -> list[int]:
    """Pending deliveries whose retry is due, or whose worker lease expired (a crash mid-request)."""
    return list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING,
                                               next_attempt_at__lte=timezone.now())
                .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
