"""Webhook endpoints of a merchant and one delivery row per (event, endpoint)."""

import uuid

from django.db import models

from infra.encryption import EncryptedTextField
from invoicing.webhooks import signing
from tickets.models import Merchant

# Events a merchant can subscribe to; an endpoint with an empty list receives them all.
EVENTS = (
    "invoice.stamped",
    "invoice.failed",
    "invoice.cancelled",
    "invoice.cancellation_updated",
    "invoice.duplicate_stamp",
    "global_invoice.stamped",
    "global_invoice.deadline_alert",
    "global_invoice.late",
    "batch.completed",
)
# Sent only by "probar" (API and admin), to the one endpoint being tested, whatever its filter.
TEST_EVENT = "webhook.test"
SECRET_PREFIX = signing.SECRET_PREFIX


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (the Standard Webhooks form; the migrations name this default)."""
    return signing.new_secret()


class WebhookEndpoint(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="webhook_endpoints", verbose_name="comercio")
    url = models.URLField("URL", max_length=500)
    # Encrypted, not hashed: every delivery is signed with it.
    secret = EncryptedTextField("secreto de firma", default=new_secret, editable=False)
    # During a rotation the old secret keeps signing too (a second signature in the header) until it expires.
    previous_secret = EncryptedTextField("secreto anterior", null=True, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField("el secreto anterior vale hasta", null=True, blank=True)
    secret_rotated_at = models.DateTimeField("secreto rotado", null=True, blank=True)
    events = models.JSONField("eventos", default=list, blank=True, help_text="Vacío: todos los eventos.")
    is_active = models.BooleanField("activo", default=True)
    description = models.CharField("descripción", max_length=200, blank=True)
    created_at = models.DateTimeField("creado", auto_now_add=True)

    class Meta:
        verbose_name = "webhook"
        verbose_name_plural = "webhooks"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "is_active"], name="webhook_endpoint_active")]

    def __str__(self):
        return self.description or self.url

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events

    def signing_secrets(self, now) -> list[str]:
        """The secrets that sign a message sent at ``now``: the current one, and the previous one until it expires."""
        active = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and now < self.previous_secret_expires_at:
            active.append(self.previous_secret)
        return active


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pendiente"
        DELIVERED = "delivered", "Entregado"
        FAILED = "failed", "Fallido"

    # Denormalised from the endpoint: scoping (admin, events) without a join.
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="webhook_deliveries", verbose_name="comercio")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name="webhook")
    event = models.CharField("evento", max_length=50)
    event_id = models.UUIDField("id del evento", default=uuid.uuid4, unique=True, editable=False)
    payload = models.JSONField("contenido")
    status = models.CharField("estado", max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField("intentos", default=0)
    # Pending: when it may be (re)sent; while a worker holds it, the end of its lease.
    next_attempt_at = models.DateTimeField("próximo intento", null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField("último código HTTP", null=True, blank=True)
    response_excerpt = models.TextField("respuesta (extracto)", blank=True)
    created_at = models.DateTimeField("creado", auto_now_add=True)
    delivered_at = models.DateTimeField("entregado", null=True, blank=True)

    class Meta:
        verbose_name = "entrega de webhook"
        verbose_name_plural = "entregas de webhooks"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_recent"),
        ]

    def __str__(self):
        return f"{self.event} → {self.endpoint_id} ({self.status})"
