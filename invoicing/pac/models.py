"""What the sandbox PAC remembers, in the database so every worker and host shares it."""

from django.db import models


class SandboxCertificate(models.Model):
    """The installation's sandbox "SAT" certificate: it signs the sandbox stamps (SelloSAT). Created once."""

    name = models.CharField(max_length=20, unique=True, default="default")
    cer_der = models.BinaryField()
    key_der = models.BinaryField()  # PKCS#8, encrypted with ``password``; it signs nothing of fiscal value
    password = models.CharField(max_length=100)
    number = models.CharField("NoCertificadoSAT", max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "certificado del PAC sandbox"
        verbose_name_plural = "certificados del PAC sandbox"

    def __str__(self):
        return self.number


class SandboxStamp(models.Model):
    """One document stamped by the sandbox: the same sealed XML always gets this same UUID back."""

    class CancelStatus(models.TextChoices):
        NONE = "", "Sin solicitud"
        IN_PROCESS = "in_process", "En proceso"
        CANCELLED = "cancelled", "Cancelado"
        REJECTED = "rejected", "Solicitud rechazada"

    # Unique through Meta.constraints (``unique=True`` adds a LIKE-only index too on PostgreSQL).
    xml_sha256 = models.CharField(max_length=64)
    uuid = models.CharField("UUID", max_length=36)
    emisor_rfc = models.CharField(max_length=13)
    receptor_rfc = models.CharField(max_length=13)
    total = models.DecimalField(max_digits=24, decimal_places=6)
    kind = models.CharField("TipoDeComprobante", max_length=1)
    related = models.JSONField(default=list, blank=True)  # [{"tipo": "04", "uuid": "…"}]
    stamped_at = models.DateTimeField()
    stamped_xml = models.BinaryField()
    cancel_status = models.CharField(max_length=12, choices=CancelStatus, default=CancelStatus.NONE, blank=True)
    cancel_motivo = models.CharField(max_length=2, blank=True)
    cancel_replacement_uuid = models.CharField(max_length=36, blank=True)
    cancel_requires_acceptance = models.BooleanField(default=False)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "timbre del PAC sandbox"
        verbose_name_plural = "timbres del PAC sandbox"
        constraints = [
            models.UniqueConstraint(fields=["xml_sha256"], name="sandbox_stamp_xml_unique"),
            models.UniqueConstraint(fields=["uuid"], name="sandbox_stamp_uuid_unique"),
        ]

    def __str__(self):
        return self.uuid
