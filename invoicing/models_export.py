"""The accountant's export of a period: one ZIP with every CFDI's XML (PDFs optional), a CSV and an XLSX.

Imported at the bottom of invoicing/models.py so Django registers it in the invoicing app.
"""

from django.db import models

from tickets.models import Branch, Merchant


class AccountingExport(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "En cola"
        RUNNING = "running", "Generando"
        DONE = "done", "Lista"
        FAILED = "failed", "Falló"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="exports", verbose_name="comercio")
    branch = models.ForeignKey(Branch, on_delete=models.SET_NULL, null=True, blank=True, related_name="exports",
                               verbose_name="sucursal")
    first_day = models.DateField("desde")
    last_day = models.DateField("hasta (inclusive)")
    include_pdfs = models.BooleanField("incluir PDF", default=False)
    status = models.CharField("estado", max_length=10, choices=Status, default=Status.QUEUED)
    processed = models.PositiveIntegerField("facturas procesadas", default=0)
    total = models.PositiveIntegerField("facturas del periodo", default=0)
    file = models.FileField("archivo", upload_to="exports/%Y/%m/", blank=True)
    error = models.TextField("error", blank=True)
    requested_by = models.CharField("solicitada por", max_length=150, blank=True)
    created_at = models.DateTimeField("solicitada", auto_now_add=True)
    # Renewed with every chunk written: a "running" export whose heartbeat stops was abandoned by its worker.
    heartbeat_at = models.DateTimeField("última señal", null=True, blank=True)
    finished_at = models.DateTimeField("terminada", null=True, blank=True)

    class Meta:
        verbose_name = "exportación contable"
        verbose_name_plural = "exportaciones contables"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "-created_at"], name="export_merchant_recent")]

    def __str__(self):
        where = f" · {self.branch.code}" if self.branch_id else ""
        return f"{self.first_day:%d/%m/%Y}–{self.last_day:%d/%m/%Y}{where}"
