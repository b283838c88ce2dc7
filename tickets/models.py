"""Tenants (merchants, branches), their tickets, API keys and batches (the event log is infra.models.Event)."""

import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from infra.encryption import EncryptedTextField
from infra.roles import Role
from invoicing.cfdi.errors import ERROR
from invoicing.cfdi.rfc import is_generic, rfc_issues


def validate_rfc(value: str) -> None:
    """The merchant's RFC by the one RFC rule (invoicing/cfdi/rfc.py); an emisor never has a generic one."""
    if is_generic(value):
        raise ValidationError("Un comercio no puede usar un RFC genérico (público en general o extranjero).")
    errors = [issue.message for issue in rfc_issues(value, "rfc", who="el RFC") if issue.severity == ERROR]
    if errors:
        raise ValidationError(errors)


POSTAL_CODE_VALIDATOR = RegexValidator(r"^[0-9]{5}$", "El código postal tiene 5 dígitos.")
MONEY = {"max_digits": 18, "decimal_places": 2}
LINE_VALUE = {"max_digits": 24, "decimal_places": 6}


def public_code() -> str:
    """Random code for public URLs: never a sequential id (anti-enumeration)."""
    return secrets.token_urlsafe(12)


# First path segments the site itself uses: a merchant slug equal to one would be unreachable.
RESERVED_SLUGS = frozenset({"t", "f", "admin", "api", "healthz", "static", "media", "idioma"})


def validate_slug_not_reserved(value: str) -> None:
    if value.lower() in RESERVED_SLUGS:
        raise ValidationError(f"«{value}» está reservado para el sitio; elige otro slug.")


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Zona horaria desconocida: {value}") from exc


class Merchant(models.Model):
    class SelfInvoiceWindow(models.TextChoices):
        DAYS = "days", "Días después de la compra"
        MONTH_END = "month_end", "Hasta el fin del mes de la compra"

    class Periodicity(models.TextChoices):
        DAILY = "01", "Diario"
        WEEKLY = "02", "Semanal"
        FORTNIGHTLY = "03", "Quincenal"
        MONTHLY = "04", "Mensual"
        BIMONTHLY = "05", "Bimestral"

    class GlobalGrouping(models.TextChoices):
        BRANCH = "branch", "Una por sucursal"
        MERCHANT = "merchant", "Una por comercio (si las sucursales comparten código postal)"

    class LatePolicy(models.TextChoices):
        CREDIT_NOTE = "credit_note", "Nota de crédito a la global y factura nominativa"
        CANCEL_REISSUE = "cancel_reissue", "Cancelar y reexpedir la global sin el ticket"
        REFUSE = "refuse", "No facturar tickets ya incluidos en la global"

    class CorrectionWindow(models.TextChoices):
        MONTH = "month", "Hasta el fin del mes de la factura"
        DAYS = "days", "Días después de timbrar la factura"
        OFF = "off", "No permitir (solo el comercio corrige)"

    class Pac(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox (sin validez fiscal)"
        FINKOK = "finkok", "Finkok"
        SW = "sw", "SW Sapien"

    class PacEnvironment(models.TextChoices):
        TEST = "test", "Pruebas"
        PRODUCTION = "production", "Producción"

    slug = models.SlugField("slug del portal", max_length=60, unique=True, validators=[validate_slug_not_reserved])
    legal_name = models.CharField("razón social", max_length=300)
    rfc = models.CharField("RFC", max_length=13, validators=[validate_rfc])
    tax_regime = models.CharField("régimen fiscal", max_length=3, default="601")
    time_zone = models.CharField(
        "zona horaria", max_length=64, default="America/Mexico_City", validators=[validate_time_zone]
    )
    logo = models.FileField("logotipo", upload_to="logos/", blank=True)
    brand_color = models.CharField(
        "color de marca",
        max_length=7,
        default="#0B5FFF",
        validators=[RegexValidator(r"^#[0-9A-Fa-f]{6}$", "Color en formato #RRGGBB.")],
    )
    contact_email = models.EmailField("correo de contacto", blank=True)
    # What shoppers see (the portal's landing, its error messages, the aviso de privacidad); contact_email above
    # is the merchant's own inbox for alerts and is never shown to them.
    customer_email = models.EmailField(
        "correo de atención a clientes", blank=True, default="",
        help_text="Se muestra a tus clientes en el portal de facturación, en sus mensajes de error y en el aviso de "
                  "privacidad.")
    customer_phone = models.CharField(
        "teléfono de atención a clientes", max_length=40, blank=True, default="",
        validators=[RegexValidator(r"^[0-9 +()\-.,a-zA-Z]*$", "Escribe el teléfono con números, espacios, «+», «-» y "
                                   "paréntesis (por ejemplo «55 1234 5678» o «800 123 4567 ext. 2»).")],
        help_text="Se muestra a tus clientes junto al correo de atención.")
    address = models.CharField(
        "domicilio", max_length=300, blank=True, default="",
        help_text="Tu domicilio para el aviso de privacidad (la ley pide el domicilio del responsable de los datos).")
    privacy_notice = models.TextField(
        "aviso de privacidad", blank=True, default="",
        help_text="El aviso que ven tus clientes en el portal de facturación. Vacío: el texto predeterminado, que "
                  "cumple con la Ley Federal de Protección de Datos Personales en Posesión de los Particulares con "
                  "tus datos de arriba; edítalo si tratas los datos de otra manera.")
    self_invoice_window = models.CharField(
        "plazo de autofacturación", max_length=12, choices=SelfInvoiceWindow, default=SelfInvoiceWindow.MONTH_END
    )
    self_invoice_days = models.PositiveSmallIntegerField("días para autofacturar", default=30)
    require_branch_on_lookup = models.BooleanField("pedir sucursal al buscar el ticket", default=False)
    global_periodicity = models.CharField(
        "periodicidad de la factura global", max_length=2, choices=Periodicity, default=Periodicity.MONTHLY
    )
    global_grouping = models.CharField(
        "agrupación de la global", max_length=10, choices=GlobalGrouping, default=GlobalGrouping.BRANCH
    )
    late_request_policy = models.CharField(
        "solicitudes tardías", max_length=16, choices=LatePolicy, default=LatePolicy.CREDIT_NOTE
    )
    # "Corregir mis datos" on the shopper's invoice page: a new invoice replaces the old one (motivo 01).
    self_correction_window = models.CharField(
        "corrección de datos por el cliente", max_length=8, choices=CorrectionWindow, default=CorrectionWindow.MONTH,
        help_text="Hasta cuándo el cliente puede corregir sus datos fiscales desde la página de su factura.")
    self_correction_days = models.PositiveSmallIntegerField("días para corregir datos", default=30)
    pac = models.CharField("PAC", max_length=10, choices=Pac, default=Pac.SANDBOX)
    pac_environment = models.CharField(
        "ambiente del PAC", max_length=10, choices=PacEnvironment, default=PacEnvironment.TEST
    )
    pac_username = models.CharField("usuario del PAC", max_length=200, blank=True)
    pac_password = EncryptedTextField("contraseña o token del PAC", null=True, blank=True)
    # Failover (docs/pac.md): where stamping goes while the PAC above is down, and only when that is safe.
    pac_secondary = models.CharField(
        "PAC secundario", max_length=10, choices=Pac, blank=True, default="",
        help_text="Si el PAC principal no responde, las facturas se timbran con este. Vacío: sin respaldo.")
    pac_secondary_environment = models.CharField(
        "ambiente del PAC secundario", max_length=10, choices=PacEnvironment, default=PacEnvironment.TEST
    )
    pac_secondary_username = models.CharField("usuario del PAC secundario", max_length=200, blank=True)
    pac_secondary_password = EncryptedTextField("contraseña o token del PAC secundario", null=True, blank=True)
    border_region_stimulus = models.BooleanField(
        "aplica el estímulo fiscal de la región fronteriza (IVA 8 %)", default=False, db_default=False,
        help_text="Solo quien presentó el aviso ante el SAT. El IVA al 8 % se acepta únicamente en tickets de "
                  "sucursales cuyo código postal el catálogo del SAT marca como región fronteriza.")
    is_active = models.BooleanField("activo", default=True)
    created_at = models.DateTimeField("creado", auto_now_add=True)

    class Meta:
        verbose_name = "comercio"
        verbose_name_plural = "comercios"

    def __str__(self):
        return f"{self.legal_name} ({self.rfc})"

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def logo_url(self) -> str:
        """The logo as the app serves it (portal/media.py), whatever the storage: a bucket stays private."""
        return f"{settings.MEDIA_URL}{self.logo.name}" if self.logo else ""

    @property
    def customer_contact(self) -> str:
        """How shoppers reach the merchant («facturas@tienda.mx o 55 1234 5678»); "" when nothing is set."""
        return " o ".join(c for c in (self.customer_email, self.customer_phone) if c)

    def contact_phrase(self, fallback: str = "el comercio") -> str:
        """Whom to contact, for a sentence «comunícate con …»: the merchant's name and contact, or ``fallback``."""
        contact = self.customer_contact
        return f"{self.legal_name} ({contact})" if contact else fallback


class Branch(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="branches", verbose_name="comercio")
    code = models.CharField("clave de sucursal", max_length=40)
    name = models.CharField("nombre", max_length=200)
    postal_code = models.CharField(
        "código postal (LugarExpedicion)", max_length=5, validators=[POSTAL_CODE_VALIDATOR]
    )
    invoice_serie = models.CharField("serie de facturas", max_length=25, default="F")
    credit_note_serie = models.CharField("serie de notas de crédito", max_length=25, default="NC")
    global_serie = models.CharField("serie de facturas globales", max_length=25, default="G")
    is_active = models.BooleanField("activa", default=True)

    class Meta:
        verbose_name = "sucursal"
        verbose_name_plural = "sucursales"
        constraints = [models.UniqueConstraint(fields=["merchant", "code"], name="branch_code_unique_per_merchant")]

    def __str__(self):
        return f"{self.code} · {self.name}"


class MerchantMembership(models.Model):
    """Which merchant a back-office user works for; the admin shows that merchant's data only."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership",
                                verbose_name="usuario")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="memberships",
                                 verbose_name="comercio")
    # What the user may do (infra/roles.py). Memberships made before roles existed were full access: owner.
    role = models.CharField("rol", max_length=12, choices=Role, default=Role.OWNER)

    class Meta:
        verbose_name = "usuario del comercio"
        verbose_name_plural = "usuarios del comercio"

    def __str__(self):
        return f"{self.user} → {self.merchant.slug}"


class StaffMember(MerchantMembership):
    """A merchant's staff as its owners manage them: invite by email, role, access on or off.

    A proxy with its own admin (merchant-scoped, the merchant never editable); the plain membership admin stays
    superuser-only."""

    class Meta:
        proxy = True
        verbose_name = "persona del equipo"
        verbose_name_plural = "equipo"


class Batch(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", "Recibido"
        PROCESSING = "processing", "Procesando"
        DONE = "done", "Terminado"
        FAILED = "failed", "Falló"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="batches", verbose_name="comercio")
    batch_id = models.CharField("id del lote (cliente)", max_length=100)
    public_id = models.CharField("id público", max_length=24, unique=True, default=public_code)
    status = models.CharField("estado", max_length=12, choices=Status, default=Status.RECEIVED)
    source = models.CharField("formato", max_length=10, default="json")
    total_count = models.PositiveIntegerField("tickets", default=0)
    created_count = models.PositiveIntegerField("creados", default=0)
    duplicate_count = models.PositiveIntegerField("duplicados", default=0)
    rejected_count = models.PositiveIntegerField("rechazados", default=0)
    report = models.JSONField("reporte por ticket", default=list, blank=True)
    # The branch of the API key that sent the batch: tickets that name no branch (and whose CFDI's
    # LugarExpedicion matches none) are taken from it, also when a worker processes the batch later.
    default_branch = models.ForeignKey("Branch", on_delete=models.SET_NULL, null=True, blank=True,
                                       related_name="+", verbose_name="sucursal de la llave")
    processed_count = models.PositiveIntegerField("procesados", default=0)
    # Raw body kept for the background worker (JSON or ZIP); cleared once the batch is processed.
    payload = models.BinaryField("contenido recibido", null=True, blank=True, editable=False)
    error = models.TextField("error", blank=True)
    created_at = models.DateTimeField("recibido", auto_now_add=True)
    finished_at = models.DateTimeField("terminado", null=True, blank=True)
    # Background batches: the worker holding one renews lease_until with every chunk; past it the batch is
    # abandoned (worker killed, task lost) and the sweeper queues it again. ``run`` grows with every claim,
    # so a worker that lost its lease cannot write any more; ``attempts`` counts claims since (re)submission.
    # db_default: code deployed before these columns (a rolling deploy) can still insert batches.
    lease_until = models.DateTimeField("en proceso hasta", null=True, blank=True)
    run = models.PositiveIntegerField("turno de proceso", default=0, db_default=0)
    attempts = models.PositiveSmallIntegerField("intentos", default=0, db_default=0)

    class Meta:
        verbose_name = "lote"
        verbose_name_plural = "lotes"
        constraints = [models.UniqueConstraint(fields=["merchant", "batch_id"], name="batch_id_unique_per_merchant")]
        # The sweeper's question every minute: which unfinished batches have an expired lease?
        indexes = [models.Index(fields=["lease_until"], name="batch_unfinished_lease",
                                condition=Q(status__in=["received", "processing"]))]

    def __str__(self):
        return self.batch_id


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Abierto"
        INVOICED = "invoiced", "Facturado"
        GLOBALIZED = "globalized", "En factura global"
        VOID = "void", "Cancelado"

    class Source(models.TextChoices):
        API = "api", "API"
        BATCH = "batch", "Lote"
        ZIP = "zip", "ZIP"
        ADMIN = "admin", "Administración"
        DEMO = "demo", "Demo"

    # No single-column index on merchant: the unique key and the composite indexes start with it, and every
    # extra index costs bulk ingestion.
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="tickets", db_index=False, verbose_name="comercio")
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="tickets", verbose_name="sucursal")
    number = models.CharField("número de ticket", max_length=64)
    sold_at = models.DateTimeField("fecha de venta")
    currency = models.CharField("moneda", max_length=3, default="MXN")
    exchange_rate = models.DecimalField("tipo de cambio", max_digits=18, decimal_places=6, null=True, blank=True)
    payment_form = models.CharField("forma de pago", max_length=2, default="01")
    subtotal = models.DecimalField("subtotal", **MONEY)
    discount = models.DecimalField("descuento", default=0, **MONEY)
    tax_total = models.DecimalField("impuestos trasladados", default=0, **MONEY)
    withheld_total = models.DecimalField("impuestos retenidos", default=0, **MONEY)
    total = models.DecimalField("total", **MONEY)
    # Unique through Meta.constraints: a plain btree, without the LIKE-pattern twin `unique=True` adds on PostgreSQL.
    public_code = models.CharField("código público", max_length=24, default=public_code, editable=False)
    expires_at = models.DateTimeField("fin del plazo de autofacturación", db_index=True)
    status = models.CharField("estado", max_length=12, choices=Status, default=Status.OPEN)
    source = models.CharField("origen", max_length=8, choices=Source, default=Source.API)
    batch = models.ForeignKey(Batch, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets", verbose_name="lote")
    fingerprint = models.CharField("huella del contenido", max_length=64, blank=True, help_text="Resumen del contenido: reconoce un reenvío idéntico del punto de venta.")
    document = models.BinaryField("CFDI enviado por el punto de venta", null=True, blank=True)
    created_at = models.DateTimeField("recibido", auto_now_add=True)
    updated_at = models.DateTimeField("actualizado", auto_now=True)

    class Meta:
        verbose_name = "ticket"
        verbose_name_plural = "tickets"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "branch", "number"], name="ticket_number_unique_per_branch"),
            models.UniqueConstraint(fields=["public_code"], name="ticket_public_code_unique"),
            models.CheckConstraint(condition=Q(total__gte=0), name="ticket_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=["merchant", "number"], name="ticket_merchant_number"),
            models.Index(fields=["merchant", "status", "sold_at"], name="ticket_merchant_status_sold"),
        ]

    def __str__(self):
        return f"{self.branch.code}-{self.number}"


class TicketLine(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="lines", db_index=False, verbose_name="ticket")  # see Meta
    position = models.PositiveSmallIntegerField("posición")
    product_code = models.CharField("ClaveProdServ", max_length=8)
    unit_code = models.CharField("ClaveUnidad", max_length=3)
    sku = models.CharField("NoIdentificacion/SKU", max_length=100, blank=True)
    description = models.CharField("descripción", max_length=1000)
    quantity = models.DecimalField("cantidad", **LINE_VALUE)
    unit_price = models.DecimalField("precio unitario", **LINE_VALUE)
    prices_include_tax = models.BooleanField("precio con impuestos", default=True)
    discount = models.DecimalField("descuento", default=0, **LINE_VALUE)
    tax_object = models.CharField("ObjetoImp", max_length=2, default="02")
    # [{"tax": "002", "factor": "Tasa"|"Cuota"|"Exento", "rate": "0.160000", "withheld": false}]
    taxes = models.JSONField("impuestos", default=list, blank=True)
    amount = models.DecimalField("importe del renglón (como se cobró)", **LINE_VALUE)

    class Meta:
        verbose_name = "renglón"
        verbose_name_plural = "renglones"
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["ticket", "position"], name="ticket_line_position_unique")]

    def __str__(self):
        return self.description


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        TICKETS = "tickets", "Tickets"
        INVOICES = "invoices", "Facturas"
        WEBHOOKS = "webhooks", "Webhooks"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys", verbose_name="comercio")
    name = models.CharField("nombre", max_length=100)
    prefix = models.CharField("prefijo", max_length=16, unique=True)
    key_hash = models.CharField("hash de la llave", max_length=64)
    scopes = models.JSONField("permisos", default=list)
    branch = models.ForeignKey(
        Branch, on_delete=models.SET_NULL, null=True, blank=True, related_name="api_keys", verbose_name="sucursal",
        help_text="La caja o punto de venta de esta sucursal: sus tickets sin sucursal se registran en ella.")
    created_at = models.DateTimeField("creada", auto_now_add=True)
    last_used_at = models.DateTimeField("último uso", null=True, blank=True)
    revoked_at = models.DateTimeField("revocada", null=True, blank=True)

    class Meta:
        verbose_name = "llave de API"
        verbose_name_plural = "llaves de API"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


from tickets.catalogs import PostalCode, ProductKey, TaxRateRule, UnitKey  # noqa: E402,F401  (SAT catalogs, see tickets/catalogs.py)
from tickets.exchange_rates import ExchangeRate  # noqa: E402,F401  (merchant's daily exchange rates)
