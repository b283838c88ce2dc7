"""PAC failover bookkeeping (invoicing/services/failover.py, docs/pac.md): one circuit breaker per PAC service,
each merchant's current route and last switch, the invoices whose stamp request had a lost answer, and the
extra stamps found for a sale.

Imported at the bottom of invoicing/models.py so Django registers them in the invoicing app. Rows are written
only when something goes wrong (a failure, a switch, a lost answer): a healthy PAC costs one read per batch.
"""

from django.db import models
from django.db.models import Q

from tickets.models import Merchant


class PacCircuit(models.Model):
    """The circuit breaker of one PAC service (provider + URL), shared by every worker and every merchant on it.

    closed: documents go to it. After ``PAC_CIRCUIT_FAILURES`` service failures in a row (network, 5xx, SAT
    unreachable: not a bad document or a wrong password) it opens: merchants with a secondary PAC send new
    documents there. After ``PAC_CIRCUIT_OPEN_SECONDS`` one worker takes the probe (half-open) and sends it one
    document: a stamp closes it, a failure opens it again.
    """

    class State(models.TextChoices):
        CLOSED = "closed", "Cerrado: el PAC responde"
        OPEN = "open", "Abierto: el PAC no responde, se usa el secundario"
        HALF_OPEN = "half_open", "Semiabierto: probando si el PAC volvió"

    key = models.CharField("servicio", max_length=300)
    provider = models.CharField("PAC", max_length=10)
    state = models.CharField("estado", max_length=10, choices=State, default=State.CLOSED)
    failures = models.PositiveIntegerField("fallas seguidas", default=0)
    opened_at = models.DateTimeField("abierto desde", null=True, blank=True)
    retry_at = models.DateTimeField("próxima prueba", null=True, blank=True)
    probe_until = models.DateTimeField("prueba en curso hasta", null=True, blank=True)
    last_error = models.CharField("última falla", max_length=300, blank=True)
    last_failure_at = models.DateTimeField("fecha de la última falla", null=True, blank=True)
    last_success_at = models.DateTimeField("último timbre", null=True, blank=True)
    changed_at = models.DateTimeField("último cambio de estado", null=True, blank=True)

    class Meta:
        verbose_name = "circuito de PAC"
        verbose_name_plural = "circuitos de PAC"
        constraints = [models.UniqueConstraint(fields=["key"], name="pac_circuit_key_unique")]

    def __str__(self):
        return f"{self.key}: {self.get_state_display()}"


class PacRoute(models.Model):
    """Where a merchant's new documents go now (its primary or its secondary PAC) and the last switch.

    Changed with a guarded update (from the route read), with an event row (entity ``pac``) per switch.
    """

    class Route(models.TextChoices):
        PRIMARY = "primary", "PAC principal"
        SECONDARY = "secondary", "PAC secundario"

    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, primary_key=True, related_name="pac_route",
                                    verbose_name="comercio")
    route = models.CharField("ruta", max_length=10, choices=Route, default=Route.PRIMARY)
    switched_at = models.DateTimeField("último cambio", null=True, blank=True)
    from_pac = models.CharField("de", max_length=10, blank=True)
    to_pac = models.CharField("a", max_length=10, blank=True)
    reason = models.TextField("motivo", blank=True)

    class Meta:
        verbose_name = "ruta de timbrado"
        verbose_name_plural = "rutas de timbrado"

    def __str__(self):
        return f"{self.merchant_id}: {self.get_route_display()}"


class StampDoubt(models.Model):
    """A PAC got an invoice's sealed XML and its answer was lost (timeout, dropped connection, 5xx): it may hold
    a stamp for it.

    open: the invoice is pinned to that PAC (the same sealed XML goes to it again, never elsewhere) until it
    answers. cleared: it answered without a stamp, so the invoice may go to the other PAC; but the lost request
    may still be stamped late, so the PAC is asked again later (``find_stamp``) until ``next_check_at`` runs out.
    settled: nothing more to look for (its stamp was recovered, the checks found none, or found one and it was
    handed to the extra-stamp cancellation).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Sin respuesta: se vuelve a preguntar al mismo PAC"
        CLEARED = "cleared", "El PAC respondió sin timbre: se verifica más tarde"
        SETTLED = "settled", "Resuelta"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.CASCADE, related_name="stamp_doubts")
    pac = models.CharField("PAC", max_length=10)
    status = models.CharField("estado", max_length=10, choices=Status, default=Status.OPEN)
    first_error = models.CharField("respuesta perdida", max_length=40, blank=True)
    checks = models.PositiveSmallIntegerField("verificaciones", default=0)
    next_check_at = models.DateTimeField("próxima verificación", null=True, blank=True)
    result = models.CharField("resultado", max_length=300, blank=True)
    created_at = models.DateTimeField("fecha", auto_now_add=True)
    updated_at = models.DateTimeField("actualizada", auto_now=True)

    class Meta:
        verbose_name = "timbre en duda"
        verbose_name_plural = "timbres en duda"
        constraints = [
            models.UniqueConstraint(fields=["invoice", "pac"], condition=Q(status__in=["open", "cleared"]),
                                    name="one_unsettled_doubt_per_invoice_pac"),
        ]
        indexes = [
            models.Index(fields=["next_check_at"], condition=Q(status="cleared"), name="stamp_doubt_due"),
        ]

    def __str__(self):
        return f"factura #{self.invoice_id} en {self.pac}: {self.get_status_display()}"


class ExtraStamp(models.Model):
    """A second UUID found for one sale (two PACs both stamped it, or a PAC's late answer). The invoice keeps
    the UUID it stored first as its legal document; this one is cancelled with motivo 02 through the
    cancellation machinery (a Cancellation row pointing here) and the merchant is told."""

    class How(models.TextChoices):
        LATE_ANSWER = "late_answer", "Respuesta tardía de un PAC"
        CHECK = "check", "Verificación posterior con el PAC"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="extra_stamps",
                                verbose_name="factura")
    uuid = models.UUIDField("folio fiscal (UUID) sobrante")
    pac = models.CharField("PAC que lo timbró", max_length=10)
    stamped_xml = models.BinaryField("XML timbrado sobrante", null=True, blank=True)
    stamped_at = models.DateTimeField("fecha de timbrado", null=True, blank=True)
    how = models.CharField("cómo se detectó", max_length=12, choices=How)
    detected_at = models.DateTimeField("detectado", auto_now_add=True)

    class Meta:
        verbose_name = "timbre sobrante"
        verbose_name_plural = "timbres sobrantes"
        constraints = [models.UniqueConstraint(fields=["uuid"], name="extra_stamp_uuid_unique")]

    def __str__(self):
        return str(self.uuid).upper()
