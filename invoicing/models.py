"""CSD certificates, invoices (immutable CFDI snapshots), their tickets, relations and folio counters."""

from django.db import models
from django.db.models import Q

from infra.encryption import EncryptedBinaryField, EncryptedTextField
from tickets.models import MONEY, Branch, Merchant, Ticket, public_code


class Certificate(models.Model):
    """A merchant's CSD (Certificado de Sello Digital). The key and its password are encrypted at rest."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="certificates", verbose_name="comercio")
    cer_der = models.BinaryField("certificado (.cer)")
    key_der = EncryptedBinaryField("llave privada (.key)")
    password = EncryptedTextField("contraseña de la llave")
    number = models.CharField("número de certificado", max_length=20)
    rfc = models.CharField("RFC", max_length=13)
    legal_name = models.CharField("nombre en el certificado", max_length=300, blank=True)
    valid_from = models.DateTimeField("válido desde")
    valid_to = models.DateTimeField("válido hasta")
    is_active = models.BooleanField("activo", default=True)
    created_at = models.DateTimeField("cargado", auto_now_add=True)

    class Meta:
        verbose_name = "certificado de sello digital (CSD)"
        verbose_name_plural = "certificados de sello digital (CSD)"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"], condition=Q(is_active=True), name="one_active_certificate_per_merchant"
            ),
            models.UniqueConstraint(fields=["merchant", "number"], name="certificate_number_unique_per_merchant"),
        ]

    def __str__(self):
        return f"{self.number} ({self.rfc})"


class FolioCounter(models.Model):
    """Next folio per (merchant, serie): locked with SELECT … FOR UPDATE so folios are gap-free."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="folio_counters", verbose_name="comercio")
    serie = models.CharField("serie", max_length=25)
    next_folio = models.PositiveBigIntegerField("siguiente folio", default=1)

    class Meta:
        verbose_name = "contador de folios"
        verbose_name_plural = "contadores de folios"
        constraints = [models.UniqueConstraint(fields=["merchant", "serie"], name="folio_counter_unique")]

    def __str__(self):
        return f"{self.serie}: {self.next_folio}"


class Invoice(models.Model):
    """One CFDI. A legal snapshot: never edited after sealing, corrected only by new documents."""

    class Kind(models.TextChoices):
        INGRESO = "ingreso", "Factura (ingreso)"
        EGRESO = "egreso", "Nota de crédito (egreso)"
        GLOBAL = "global", "Factura global"

    class Status(models.TextChoices):
        # "scheduled": issued with ``issue_at`` (the API's scheduled emission): holds its tickets, no folio yet;
        # sealed and stamped from ``issue_at`` on, or "withdrawn" before it (no CFDI ever existed).
        SCHEDULED = "scheduled", "Programada"
        WITHDRAWN = "withdrawn", "Retirada sin emitir"
        ON_HOLD = "on_hold", "En espera"
        PENDING = "pending", "En cola"
        SEALED = "sealed", "Sellada"
        STAMPED = "stamped", "Timbrada"
        FAILED = "failed", "Rechazada"
        # "cancelling" is the cancellation requested (being sent to the PAC, or waiting for SAT to take it);
        # "cancel_pending": SAT took it and it waits for the receptor's answer (or SAT's confirmation).
        CANCELLING = "cancelling", "Cancelación solicitada"
        CANCEL_PENDING = "cancel_pending", "Cancelación pendiente de aceptación"
        CANCELLED = "cancelled", "Cancelada"

    # No index of its own: (merchant, status, created_at) and the other composite indexes start with it, and
    # every index is maintained on each of an invoice's four writes.
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="invoices", db_index=False, verbose_name="comercio")
    # No index: nothing lists invoices by branch, and only deleting a branch (refused while it has any) scans.
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="invoices", db_index=False, verbose_name="sucursal")
    kind = models.CharField("tipo", max_length=8, choices=Kind, default=Kind.INGRESO)
    status = models.CharField("estado", max_length=16, choices=Status, default=Status.PENDING)
    # Unique through Meta.constraints: ``unique=True`` would add a second, LIKE-only index on PostgreSQL.
    public_code = models.CharField("código público", max_length=24, default=public_code, editable=False)
    idempotency_key = models.CharField("llave de idempotencia", max_length=100, null=True, blank=True)  # noqa: DJ001 - NULL = no key
    serie = models.CharField("serie", max_length=25)
    folio = models.PositiveBigIntegerField("folio", null=True, blank=True)
    # Receptor snapshot
    receptor_rfc = models.CharField("RFC del receptor", max_length=13)
    receptor_name = models.CharField("nombre del receptor", max_length=300)
    receptor_tax_regime = models.CharField("régimen del receptor", max_length=3)
    receptor_postal_code = models.CharField("código postal del receptor", max_length=5)
    receptor_cfdi_use = models.CharField("uso del CFDI", max_length=4)
    receptor_emails = models.JSONField("correos", default=list, blank=True)
    # Only for a resident abroad (RFC XEXX010101000): ResidenciaFiscal (c_Pais) and NumRegIdTrib.
    receptor_country = models.CharField("país de residencia fiscal del receptor", max_length=3, blank=True,
                                        default="")
    receptor_tax_id = models.CharField("registro tributario extranjero del receptor", max_length=40, blank=True,
                                       default="")
    # The language of the emails the receptor gets ("" = the site's, es-MX): a shopper who asked in English.
    language = models.CharField("idioma de los correos", max_length=8, blank=True, default="")
    # Amounts snapshot
    currency = models.CharField("moneda", max_length=3, default="MXN")
    # TipoCambio of the CFDI: the tickets' (all of an invoice's tickets share currency and rate); None for MXN.
    exchange_rate = models.DecimalField("tipo de cambio", max_digits=18, decimal_places=6, null=True, blank=True)
    payment_form = models.CharField("forma de pago", max_length=2, default="01")
    payment_method = models.CharField("método de pago", max_length=3, default="PUE")
    subtotal = models.DecimalField("subtotal", default=0, **MONEY)
    discount = models.DecimalField("descuento", default=0, **MONEY)
    tax_total = models.DecimalField("impuestos trasladados", default=0, **MONEY)
    withheld_total = models.DecimalField("impuestos retenidos", default=0, **MONEY)
    total = models.DecimalField("total", default=0, **MONEY)
    # Factura global
    global_periodicity = models.CharField("periodicidad (global)", max_length=2, blank=True)
    global_months = models.CharField("meses (global)", max_length=2, blank=True)
    global_year = models.PositiveSmallIntegerField("año (global)", null=True, blank=True)
    # Documents
    # No index: only deleting a certificate would use it (a rare scan); stamping writes it with every seal.
    certificate = models.ForeignKey(Certificate, on_delete=models.PROTECT, null=True, blank=True, db_index=False, verbose_name="certificado")
    issued_at = models.DateTimeField("fecha de emisión", null=True, blank=True)
    # Scheduled emission: not sealed before this instant (the CFDI's Fecha is its stamping time, not this).
    issue_at = models.DateTimeField("emitir a partir de", null=True, blank=True)
    sealed_xml = models.BinaryField("XML sellado", null=True, blank=True)
    stamped_xml = models.BinaryField("XML timbrado", null=True, blank=True)
    uuid = models.UUIDField("folio fiscal (UUID)", null=True, blank=True, unique=True)
    stamped_at = models.DateTimeField("fecha de timbrado", null=True, blank=True)
    pac = models.CharField("PAC", max_length=10, blank=True)
    pdf = models.FileField("PDF", upload_to="invoices/%Y/%m/", blank=True)
    # Processing
    attempts = models.PositiveSmallIntegerField("intentos", default=0)
    next_attempt_at = models.DateTimeField("próximo intento", null=True, blank=True)
    # Set when a stamping batch claims the invoice; another batch may take it only after this passes (a worker
    # that died holding it). See invoicing/stamp_queue.py.
    lease_until = models.DateTimeField("en proceso hasta", null=True, blank=True)
    last_error_code = models.CharField("código del último error", max_length=40, blank=True)
    last_error_message = models.TextField("último error", blank=True)
    last_error_permanent = models.BooleanField("error definitivo", default=False)
    tickets = models.ManyToManyField(Ticket, through="InvoiceTicket", related_name="invoices", verbose_name="tickets")
    created_at = models.DateTimeField("creada", auto_now_add=True)
    updated_at = models.DateTimeField("actualizada", auto_now=True)

    class Meta:
        verbose_name = "factura"
        verbose_name_plural = "facturas"
        constraints = [
            models.UniqueConstraint(fields=["public_code"], name="invoice_public_code_unique"),
            models.UniqueConstraint(
                fields=["merchant", "serie", "folio"], condition=Q(folio__isnull=False), name="invoice_folio_unique"
            ),
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="invoice_idempotency_key_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "status", "created_at"], name="invoice_merchant_status"),
            models.Index(fields=["merchant", "receptor_rfc"], name="invoice_merchant_rfc"),
            # The stamping queue: only invoices still in flight, so the index stays as small as the backlog.
            models.Index(fields=["id"], condition=Q(status__in=["pending", "sealed"]), name="invoice_in_flight"),
            # The scheduled invoices, by due time: what the every-minute release reads.
            models.Index(fields=["issue_at"], condition=Q(status="scheduled"), name="invoice_scheduled_due"),
        ]

    def __str__(self):
        folio = f"{self.serie}-{self.folio}" if self.folio else f"#{self.pk}"
        return f"{self.get_kind_display()} {folio}"


class InvoiceTicket(models.Model):
    """A ticket taken into an invoice, with the amount taken from it."""

    # invoice: no index of its own, (invoice, ticket) below starts with it.
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="ticket_links", db_index=False, verbose_name="factura")
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="invoice_links", verbose_name="ticket")
    amount = models.DecimalField("importe", **MONEY)

    class Meta:
        verbose_name = "ticket de la factura"
        verbose_name_plural = "tickets de la factura"
        constraints = [models.UniqueConstraint(fields=["invoice", "ticket"], name="invoice_ticket_unique")]

    def __str__(self):
        return f"{self.invoice_id} ← {self.ticket_id}"


class InvoiceRelation(models.Model):
    """CfdiRelacionados: this invoice relates to another CFDI (by UUID) with a c_TipoRelacion."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="relations", verbose_name="factura")
    relation_type = models.CharField("TipoRelacion", max_length=2)
    related_uuid = models.UUIDField("UUID relacionado")
    related_invoice = models.ForeignKey(
        Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="related_from"
    , verbose_name="factura relacionada")

    class Meta:
        verbose_name = "CFDI relacionado"
        verbose_name_plural = "CFDI relacionados"
        constraints = [
            models.UniqueConstraint(fields=["invoice", "relation_type", "related_uuid"], name="invoice_relation_unique")
        ]

    def __str__(self):
        return f"{self.relation_type} {self.related_uuid}"
from invoicing.models_cancel import Cancellation  # noqa: E402,F401  (cancellations and their follow-up)
from invoicing.models_global import GlobalPeriod, LateRequest  # noqa: E402,F401  (factura global bookkeeping)
from invoicing.models_refund import Refund  # noqa: E402,F401  (refunds from the point of sale)
from invoicing.pac.models import SandboxCertificate, SandboxStamp  # noqa: E402,F401  (sandbox PAC memory)
from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint  # noqa: E402,F401  (merchant webhooks)


class StampSlot(models.Model):
    """One row per stamping task that may run at once (``INVOICE_STAMP_SLOTS``); see invoicing/stamp_queue.py.

    ``armed_at`` is set while a batch task for the slot is queued and has not started: whoever commits an
    invoice then knows a task will look at the queue after its commit, and enqueues nothing more.
    """

    id = models.PositiveSmallIntegerField(primary_key=True)
    armed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"slot {self.id}"


class InvoiceDelivery(models.Model):
    """What a stamped invoice still owes its receptor: its PDF stored and its email sent (docs/stamping.md).

    Written in the transaction that stamps the invoice, so a crash never loses it; the pending rows are the
    delivery queue (invoicing/delivery_queue.py), one invoice per claim, each retried with backoff on its own.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pendiente"
        DELIVERED = "delivered", "Entregada"
        FAILED = "failed", "Fallida"

    invoice = models.OneToOneField(Invoice, on_delete=models.CASCADE, primary_key=True, related_name="delivery")
    # Denormalised from the invoice: event rows and scoping without a join. No index: deleting a merchant is rare.
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField("estado", max_length=10, choices=Status, default=Status.PENDING)
    # More than INVOICE_PDF_LARGE_CONCEPTS concepts: rendered on the bulk queue, apart from the small ones.
    large = models.BooleanField("grande", default=False)
    concepts = models.PositiveIntegerField("conceptos", default=0)
    send_email = models.BooleanField("enviar correo", default=False)
    attempts = models.PositiveSmallIntegerField("intentos", default=0)
    # Pending: when it may be worked on; while a task holds it, the end of that task's lease.
    next_attempt_at = models.DateTimeField("próximo intento", null=True, blank=True)
    pdf_rendered_at = models.DateTimeField("PDF generado", null=True, blank=True)
    email_sent_at = models.DateTimeField("correo enviado", null=True, blank=True)
    last_error = models.TextField("último error", blank=True)
    created_at = models.DateTimeField("creada", auto_now_add=True)
    delivered_at = models.DateTimeField("entregada", null=True, blank=True)

    class Meta:
        verbose_name = "entrega de factura"
        verbose_name_plural = "entregas de facturas"
        indexes = [
            # The queue: only pending rows, so the index stays as small as the backlog.
            models.Index(fields=["large", "next_attempt_at"], condition=Q(status="pending"),
                         name="invoice_delivery_due"),
        ]

    def __str__(self):
        return f"entrega de la factura #{self.invoice_id} ({self.get_status_display()})"


class DeliverySlot(models.Model):
    """One row per delivery lane (0: ordinary invoices on the deliver queue, 1: large ones on the bulk queue).

    ``armed_at`` is set while the lane's task is queued and has not started, like StampSlot: a stamped batch
    then knows a task will look at the lane after its commit, and enqueues nothing more.
    """

    id = models.PositiveSmallIntegerField(primary_key=True)
    armed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"lane {self.id}"


from invoicing.models_export import AccountingExport  # noqa: E402,F401  (the accountant's period export)
from invoicing.models_failover import (  # noqa: E402,F401  (PAC failover: circuits, routes, doubts, extra stamps)
    ExtraStamp,
    PacCircuit,
    PacRoute,
    StampDoubt,
)
from invoicing.models_metrics import MetricCounter  # noqa: E402,F401  (stamping counters for /metrics)
