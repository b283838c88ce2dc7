"""Refunds from the point of sale: one row per refund key, and what it did to the ticket.

Imported at the bottom of invoicing/models.py. An open ticket is reduced (or voided when refunded in full); a
ticket already in a CFDI gets a credit note (egreso) related to that CFDI. ``detail`` keeps the refunded lines as
the credit note's engine input, so a retried seal builds the same document.
"""

from django.db import models

from tickets.models import MONEY, Merchant, Ticket


class Refund(models.Model):
    class Kind(models.TextChoices):
        REDUCED = "reduced", "Ticket reducido"
        VOIDED = "voided", "Ticket cancelado (devolución total)"
        CREDIT_NOTE = "credit_note", "Nota de crédito"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="refunds")
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="refunds")
    key = models.CharField("llave del reembolso", max_length=100)
    kind = models.CharField("tipo", max_length=12, choices=Kind)
    amount = models.DecimalField("importe devuelto", **MONEY)
    lines = models.JSONField("renglones pedidos", default=list, blank=True)  # [{"position": 1, "quantity": "1"}]
    detail = models.JSONField("renglones devueltos", default=list, blank=True)
    returned_goods = models.BooleanField("devolución de mercancía", default=False)
    reason = models.CharField("motivo", max_length=500, blank=True)
    credit_note = models.OneToOneField("invoicing.Invoice", on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="refund", verbose_name="nota de crédito")
    request_hash = models.CharField(max_length=64)
    actor = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "reembolso"
        verbose_name_plural = "reembolsos"
        constraints = [models.UniqueConstraint(fields=["merchant", "key"], name="refund_key_unique_per_merchant")]

    def __str__(self):
        return f"Reembolso {self.key} ({self.get_kind_display().lower()}, ${self.amount})"
