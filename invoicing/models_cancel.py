"""Cancellations: one row per request to cancel a stamped CFDI, followed until SAT's answer is final.

Imported at the bottom of invoicing/models.py so Django registers it in the invoicing app. The invoice's own
status says where the CFDI stands (stamped → cancelling → cancel_pending → cancelled, or back to stamped); this
row keeps the request: motive, replacement, what happens to the tickets, SAT's answers, the follow-up schedule.
An invoice may have several (a request the receptor rejected, then another), at most one active. A request
with ``extra_stamp`` set cancels a second UUID found for the invoice's sale (docs/pac.md, failover), not the
invoice: the invoice's status never moves for it, and it does not count as the invoice's cancellation.
"""

from django.db import models
from django.db.models import Q

from tickets.models import Merchant


class Cancellation(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "En espera del CFDI sustituto"
        REQUESTED = "requested", "Solicitada"
        PENDING = "pending", "Pendiente de respuesta del receptor"
        CANCELLED = "cancelled", "Cancelada"
        REJECTED = "rejected", "Rechazada por el receptor"
        REFUSED = "refused", "No aceptada por el SAT o el PAC"
        ABANDONED = "abandoned", "No enviada: el CFDI sustituto no se timbró"

    class Tickets(models.TextChoices):
        REPLACEMENT = "replacement", "Pasan al CFDI sustituto"
        RELEASE = "release", "Se liberan (se pueden volver a facturar o van a la global)"
        VOID = "void", "Se cancelan (la venta no se realizó)"
        GLOBAL_REISSUE = "global_reissue", "La global se reexpide sin los tickets de la solicitud tardía"
        NONE = "none", "Sin tickets que mover"

    class Source(models.TextChoices):
        API = "api", "API"
        ADMIN = "admin", "Administración"
        PORTAL = "portal", "Portal (corrección del cliente)"
        LATE_REQUEST = "late_request", "Solicitud tardía"
        DUPLICATE = "duplicate", "Timbre sobrante (automática)"

    ACTIVE = (Status.WAITING, Status.REQUESTED, Status.PENDING)

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="cancellations")
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="cancellations")
    motive = models.CharField("motivo", max_length=2)
    replacement = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="replaces", verbose_name="CFDI sustituto")
    extra_stamp = models.ForeignKey("invoicing.ExtraStamp", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="cancellations", verbose_name="timbre sobrante")
    tickets_action = models.CharField("tickets", max_length=16, choices=Tickets, default=Tickets.NONE)
    status = models.CharField("estado", max_length=12, choices=Status, default=Status.REQUESTED)
    source = models.CharField("origen", max_length=12, choices=Source, default=Source.API)
    actor = models.CharField("solicitada por", max_length=150, blank=True)
    requires_acceptance = models.BooleanField("requiere aceptación", default=False)
    acceptance_reason = models.CharField("motivo de la aceptación", max_length=40, blank=True)
    deadline = models.DateField("fecha límite legal", null=True, blank=True)
    # Follow-up: when the task looks at it next (also its lease: a claim pushes it ahead), and how often it did.
    attempts = models.PositiveIntegerField("consultas", default=0)
    next_check_at = models.DateTimeField("próxima consulta", null=True, blank=True)
    last_code = models.CharField("último código", max_length=40, blank=True)
    last_message = models.TextField("última respuesta", blank=True)
    sat_status = models.CharField("estatus en el SAT", max_length=60, blank=True)
    acuse = models.BinaryField("acuse de cancelación", null=True, blank=True)
    requested_at = models.DateTimeField("enviada al PAC", null=True, blank=True)
    finished_at = models.DateTimeField("terminada", null=True, blank=True)
    deadline_alerted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "cancelación"
        verbose_name_plural = "cancelaciones"
        constraints = [
            # Two requests for one invoice at once: one row wins, the other hits this.
            models.UniqueConstraint(fields=["invoice"], condition=Q(status__in=["waiting", "requested", "pending"],
                                                                    extra_stamp__isnull=True),
                                    name="one_active_cancellation_per_invoice"),
            models.UniqueConstraint(fields=["extra_stamp"], condition=Q(status__in=["waiting", "requested", "pending"]),
                                    name="one_active_cancellation_per_extra_stamp"),
        ]
        indexes = [
            models.Index(fields=["next_check_at"], condition=Q(status__in=["waiting", "requested", "pending"]),
                         name="cancellation_follow_up"),
        ]

    def __str__(self):
        return f"Cancelación #{self.pk} (motivo {self.motive}, {self.get_status_display().lower()})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
