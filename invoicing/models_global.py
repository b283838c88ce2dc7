"""Factura global bookkeeping: which periods were run, and late requests in progress (docs/global-invoice.md).

Imported at the bottom of invoicing/models.py so Django registers these models in the invoicing app.
"""

from django.db import models

from tickets.models import Merchant, Ticket


class GlobalPeriod(models.Model):
    """One closed period of one merchant that the scheduler (or a person) ran a global for.

    Tickets are the source of truth for coverage (an ``open`` ticket of a closed period is uncovered);
    this row links the period to its globals, remembers the deadline alert and stops the scheduler from
    retrying a period whose globals keep failing.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="global_periods", verbose_name="comercio")
    periodicity = models.CharField("periodicidad", max_length=2)
    first_day = models.DateField("primer día")
    last_day = models.DateField("último día")
    starts_at = models.DateTimeField("inicio")
    ends_at = models.DateTimeField("fin (exclusivo)")
    deadline = models.DateTimeField("fecha límite de timbrado")
    invoices = models.ManyToManyField("invoicing.Invoice", related_name="global_periods", blank=True, verbose_name="facturas globales")
    last_run_at = models.DateTimeField("última ejecución", null=True, blank=True)
    alerted_at = models.DateTimeField("alerta enviada", null=True, blank=True)
    created_at = models.DateTimeField("creado", auto_now_add=True)

    class Meta:
        verbose_name = "periodo de factura global"
        verbose_name_plural = "periodos de factura global"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "periodicity", "first_day"], name="global_period_unique"),
        ]
        indexes = [models.Index(fields=["deadline", "alerted_at"], name="global_period_deadline")]

    def __str__(self):
        return f"{self.first_day:%Y-%m-%d}..{self.last_day:%Y-%m-%d} ({self.periodicity})"


class LateRequest(models.Model):
    """A shopper asked for an invoice of tickets already in a global (RULES.md §2.1).

    The nominative invoice exists from the start (the shopper's page follows it) but is parked until the
    global is corrected: by a credit note (egreso, TipoRelacion 01) or by cancelling it (motivo 04) and
    re-issuing it without the tickets (TipoRelacion 04). ``late_request_advance`` moves it on; it is
    idempotent and re-reads everything from the database, so a crash in the middle just resumes.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "En proceso"
        RELEASED = "released", "Factura nominativa en timbrado"
        FAILED = "failed", "Falló"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="late_requests", verbose_name="comercio")
    policy = models.CharField("política", max_length=16, choices=Merchant.LatePolicy)
    status = models.CharField("estado", max_length=12, choices=Status, default=Status.IN_PROGRESS)
    invoice = models.OneToOneField("invoicing.Invoice", on_delete=models.PROTECT, related_name="late_request", verbose_name="factura nominativa")
    tickets = models.ManyToManyField(Ticket, related_name="late_requests", verbose_name="tickets")
    documents = models.ManyToManyField("invoicing.Invoice", related_name="late_request_documents", blank=True, verbose_name="documentos")
    last_error = models.TextField("último error", blank=True)
    created_at = models.DateTimeField("creada", auto_now_add=True)
    updated_at = models.DateTimeField("actualizada", auto_now=True)

    class Meta:
        verbose_name = "solicitud tardía"
        verbose_name_plural = "solicitudes tardías"
        indexes = [models.Index(fields=["status", "updated_at"], name="late_request_status")]

    def __str__(self):
        return f"Solicitud tardía #{self.pk} ({self.get_status_display()})"
