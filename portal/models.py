"""The portal's own rows: the shoppers' "Mis facturas" access links."""

from django.db import models

from tickets.models import Merchant


class InvoiceAccessRequest(models.Model):
    """A shopper asked for a link to her invoices at one merchant (portal/shopper/my_invoices.py).

    Written for every request, whether the RFC and email match anything or not (the page answers the same);
    the task that checks the pair deletes it when nothing matches. Only the link token's SHA-256 is kept, and
    the email address is forgotten once the link is sent.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", verbose_name="comercio")
    rfc = models.CharField("RFC", max_length=13)
    email = models.CharField("correo", max_length=254, blank=True)
    language = models.CharField("idioma", max_length=8, blank=True)
    token_hash = models.CharField("huella del enlace", max_length=64, blank=True)
    created_at = models.DateTimeField("pedido", auto_now_add=True)
    expires_at = models.DateTimeField("vence", null=True, blank=True)
    used_at = models.DateTimeField("usado", null=True, blank=True)

    class Meta:
        verbose_name = "enlace a «Mis facturas»"
        verbose_name_plural = "enlaces a «Mis facturas»"
        indexes = [models.Index(fields=["token_hash"], name="portal_access_token_idx"),
                   models.Index(fields=["created_at"], name="portal_access_created_idx")]

    def __str__(self) -> str:
        return f"{self.rfc} · {self.merchant_id}"
