"""The event log every app writes (infra/events.py): one row per status change, of any kind of object.

The tenant is ``settings.TENANT_MODEL`` (the merchant), named by setting so that this package imports nothing of
the apps above it. ``Event`` was ``tickets.Event``: it kept its table (``tickets_event``, see migration 0001).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Event(models.Model):
    """One row per status change of a ticket or an invoice: who, when, from, to, why."""

    merchant = models.ForeignKey(settings.TENANT_MODEL, on_delete=models.CASCADE, related_name="events",
                                 verbose_name="comercio")
    entity = models.CharField("objeto", max_length=20)  # "ticket", "invoice", "batch", …
    object_id = models.BigIntegerField("id del objeto")
    from_status = models.CharField("estado anterior", max_length=20, blank=True)
    to_status = models.CharField("estado nuevo", max_length=20)
    actor = models.CharField("quién", max_length=150, blank=True)
    reason = models.TextField("motivo", blank=True)
    data = models.JSONField("datos", default=dict, blank=True)
    created_at = models.DateTimeField("fecha", auto_now_add=True)

    class Meta:
        db_table = "tickets_event"  # moved from the tickets app without moving its rows
        verbose_name = "evento"
        verbose_name_plural = "eventos"
        indexes = [
            models.Index(fields=["entity", "object_id"], name="event_entity_object"),
            # The back office's recent invoice activity per merchant (the dashboard's PAC health, last hour).
            models.Index(fields=["merchant", "created_at"], name="event_invoice_recent",
                         condition=Q(entity="invoice")),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.entity}#{self.object_id}: {self.from_status or '∅'} → {self.to_status}"
