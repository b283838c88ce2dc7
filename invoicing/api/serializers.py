"""Explicit input and output shapes of the invoices API."""

from django.core.validators import ProhibitNullCharactersValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from infra.api.schema import ErrorEnvelope
from infra.api.strict import StrictJsonSerializer
from invoicing.lifecycle import LEGAL
from invoicing.models import Cancellation, Invoice
from invoicing.services.cancel_notify import cancellation_data
from invoicing.services.receptor import INPUT_MAX_LENGTH as LIMIT
from invoicing.services.receptor import MAX_EMAILS


class ReceptorText(serializers.CharField):
    """Text the receptor rules judge, with their codes and messages (a NUL character included), not the field."""

    def __init__(self, **kwargs):
        super().__init__(allow_blank=True, **kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class ReceptorIn(StrictJsonSerializer):
    """Shape only: the values are cleaned and judged by invoicing/services/receptor.py, the portal's rules."""

    rfc = ReceptorText(max_length=LIMIT["rfc"])
    name = ReceptorText(max_length=LIMIT["name"], help_text="Como en la Constancia de Situación Fiscal; el régimen "
                                                            "de capital («S.A. DE C.V.») se quita y se avisa en "
                                                            "«warnings».")
    tax_regime = ReceptorText(max_length=LIMIT["tax_regime"], help_text="c_RegimenFiscal, p. ej. 612")
    postal_code = ReceptorText(max_length=LIMIT["postal_code"], required=False, default="",
                               help_text="Código postal del domicilio fiscal (no se pide a un extranjero)")
    cfdi_use = ReceptorText(max_length=LIMIT["cfdi_use"], help_text="c_UsoCFDI, p. ej. G03")
    foreign_country = ReceptorText(
        max_length=LIMIT["foreign_country"], required=False, default="",
        help_text="Solo para un residente en el extranjero (rfc XEXX010101000, tax_regime 616, cfdi_use S01): su "
                  "país de residencia fiscal, clave c_Pais del SAT (p. ej. USA), nunca MEX. postal_code se deja "
                  "vacío: el CFDI lleva el de la sucursal que factura.")
    foreign_tax_id = ReceptorText(
        max_length=LIMIT["foreign_tax_id"], required=False, default="",
        help_text="Solo con rfc XEXX010101000: su número de registro tributario en ese país (NumRegIdTrib), en el "
                  "formato que fija c_Pais (USA y CAN: 9 dígitos).")
    emails = serializers.ListField(child=ReceptorText(max_length=LIMIT["email"]), max_length=20, required=False,
                                   default=list, help_text=f"Hasta {MAX_EMAILS} correos.")


class AwareDateTimeField(serializers.DateTimeField):
    """An instant with its UTC offset: a date-time without one would be read in a zone the client never chose."""

    default_error_messages = {"naive": "Incluye la zona horaria, p. ej. 2026-06-01T09:00:00-06:00."}

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # a well-formed but impossible date: the field's own message says so
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        return super().to_internal_value(value)


class InvoiceCreateIn(StrictJsonSerializer):
    ticket_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=50)
    receptor = ReceptorIn()
    issue_at = AwareDateTimeField(
        required=False, allow_null=True,
        help_text="Emisión programada: la factura queda «scheduled» (aparta los tickets, aún sin folio ni CFDI) y "
                  "se sella y timbra a partir de esta hora, con las reglas de ese día; la Fecha del CFDI es la del "
                  "timbrado. Con zona horaria. Hasta 5 minutos en el pasado: se emite ya; más: 400 "
                  "`issue_at_in_past`. Después del plazo de facturación de un ticket o del límite de su factura "
                  "global: 400 `issue_at_too_late`. Se retira antes de su hora con POST …/withdraw.")


class ResendIn(StrictJsonSerializer):
    emails = serializers.ListField(child=serializers.EmailField(), max_length=10, required=False)


class WarningOut(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


NULLABLE_UUID = {"type": "string", "format": "uuid", "nullable": True,
                 "description": "Folio fiscal (UUID del timbre), en mayúsculas; null hasta que se timbra."}
ErrorOut = ErrorEnvelope  # the one envelope of every API (infra/api/schema.py)


class PdfPendingOut(serializers.Serializer):
    """202 while a large invoice's PDF is rendered in the background."""

    status = serializers.CharField(help_text="«generating»")
    message = serializers.CharField()
    retry_after = serializers.IntegerField(help_text="Segundos para volver a pedirlo (también en Retry-After).")


class CancellationOut(serializers.Serializer):
    """A cancellation request and where it stands (the ``invoice.cancellation_updated`` webhook sends the same)."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Cancellation.Status.choices,
                                     help_text="waiting: espera a que se timbre el sustituto; requested: enviada o "
                                               "por enviar al PAC; pending: el SAT la recibió y espera la respuesta "
                                               "del receptor; cancelled; rejected: el receptor la rechazó; refused: "
                                               "el SAT o el PAC no la aceptaron; abandoned: el sustituto no se timbró")
    motive = serializers.CharField()
    motive_name = serializers.CharField()
    replacement_id = serializers.IntegerField(allow_null=True)
    replacement_uuid = serializers.CharField(allow_null=True)
    tickets = serializers.ChoiceField(choices=Cancellation.Tickets.choices)
    tickets_message = serializers.CharField()
    requires_acceptance = serializers.BooleanField()
    acceptance_reason = serializers.CharField()
    acceptance_message = serializers.CharField()
    deadline = serializers.DateField(allow_null=True, help_text="Último día en que se puede cancelar (CFF 29-A).")
    source = serializers.CharField()
    sat_status = serializers.CharField()
    last_code = serializers.CharField()
    last_message = serializers.CharField()
    requested_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    next_check_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ReceptorOut(serializers.Serializer):
    rfc = serializers.CharField()
    name = serializers.CharField()
    tax_regime = serializers.CharField()
    postal_code = serializers.CharField(help_text="DomicilioFiscalReceptor (el de la sucursal para un extranjero).")
    cfdi_use = serializers.CharField()
    emails = serializers.ListField(child=serializers.CharField())
    foreign_country = serializers.CharField(allow_blank=True, help_text="ResidenciaFiscal; vacío si es mexicano.")
    foreign_tax_id = serializers.CharField(allow_blank=True, help_text="NumRegIdTrib; vacío si es mexicano.")


class InvoiceErrorOut(serializers.Serializer):
    code = serializers.CharField(help_text="Código del PAC o del SAT (p. ej. CFDI40147), o nuestro.")
    message = serializers.CharField()
    permanent = serializers.BooleanField(help_text="true: no se reintentará (la factura quedó «failed»).")


class InvoiceLinksOut(serializers.Serializer):
    self = serializers.URLField()
    xml = serializers.URLField(required=False, help_text="Solo si la factura está timbrada (o en cancelación).")
    pdf = serializers.URLField(required=False)
    zip = serializers.URLField(required=False)


class InvoiceOut(serializers.ModelSerializer):
    uuid = serializers.SerializerMethodField()
    ticket_ids = serializers.SerializerMethodField()
    receptor = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()
    cancellation = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = ["id", "kind", "status", "serie", "folio", "uuid", "currency", "exchange_rate", "payment_form",
                  "payment_method",
                  "subtotal", "discount", "tax_total", "withheld_total", "total", "issued_at", "stamped_at", "issue_at",
                  "pac", "attempts", "receptor", "ticket_ids", "error", "links", "cancellation", "created_at"]

    @extend_schema_field(NULLABLE_UUID)
    def get_uuid(self, obj) -> str | None:
        """Folio fiscal (UUID del timbre), en mayúsculas; null hasta que se timbra."""
        return str(obj.uuid).upper() if obj.uuid else None

    def get_ticket_ids(self, obj) -> list[int]:
        return [link.ticket_id for link in obj.ticket_links.all()]

    @extend_schema_field(ReceptorOut)
    def get_receptor(self, obj) -> dict:
        return {"rfc": obj.receptor_rfc, "name": obj.receptor_name, "tax_regime": obj.receptor_tax_regime,
                "postal_code": obj.receptor_postal_code, "cfdi_use": obj.receptor_cfdi_use,
                "emails": obj.receptor_emails, "foreign_country": obj.receptor_country,
                "foreign_tax_id": obj.receptor_tax_id}

    @extend_schema_field(InvoiceErrorOut(allow_null=True))
    def get_error(self, obj) -> dict | None:
        """Why the last stamping attempt failed; null when it did not."""
        if not obj.last_error_code:
            return None
        return {"code": obj.last_error_code, "message": obj.last_error_message,
                "permanent": obj.last_error_permanent}

    @extend_schema_field(CancellationOut(allow_null=True))
    def get_cancellation(self, obj) -> dict | None:
        """The latest cancellation request of the invoice, if any."""
        # Prefetched by the views; an extra stamp's cancellation is not the invoice's (docs/pac.md).
        latest = max((c for c in obj.cancellations.all() if c.extra_stamp_id is None), key=lambda c: c.pk,
                     default=None)
        return cancellation_data(latest) if latest is not None else None

    @extend_schema_field(InvoiceLinksOut)
    def get_links(self, obj) -> dict:
        request = self.context.get("request")
        base = request.build_absolute_uri(f"/api/v1/invoices/{obj.pk}") if request else f"/api/v1/invoices/{obj.pk}"
        links = {"self": base}
        if obj.status in LEGAL:
            links.update(xml=f"{base}/xml", pdf=f"{base}/pdf", zip=f"{base}/zip")
        return links


class InvoiceCreatedOut(InvoiceOut):
    warnings = serializers.SerializerMethodField()

    class Meta(InvoiceOut.Meta):
        fields = [*InvoiceOut.Meta.fields, "warnings"]

    @extend_schema_field(WarningOut(many=True))
    def get_warnings(self, obj) -> list[dict]:
        """What was changed in or is worth knowing about the receptor's data (e.g. the régimen de capital
        taken off the name): the same notices the portal shows."""
        return self.context.get("warnings", [])


class InvoiceListOut(serializers.Serializer):
    count = serializers.IntegerField(help_text="Facturas que cumplen el filtro (todas las páginas).")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    results = InvoiceOut(many=True)


class CancelIn(StrictJsonSerializer):
    motive = serializers.CharField(max_length=2, help_text="Motivo del SAT: 01 (con relación: indica "
                                   "«replacement_id»), 02 (errores sin relación), 03 (no se llevó a cabo la "
                                   "operación). El 04 lo aplica solo la solicitud tardía de una global.")
    replacement_id = serializers.IntegerField(min_value=1, required=False, help_text="Solo con el motivo 01: la "
                                              "factura sustituta, timbrada y relacionada con TipoRelacion 04 "
                                              "(la crea «reissue»).")
    tickets = serializers.ChoiceField(choices=["release", "void"], required=False,
                                      help_text="Con 02 y 03: «release» libera los tickets (se pueden volver a "
                                                "facturar o entran en la global), «void» los cancela. Por omisión: "
                                                "release con 02, void con 03.")


class ReceptorChangesIn(StrictJsonSerializer):
    """Only the fields that change; the rest are kept from the invoice."""

    rfc = ReceptorText(max_length=LIMIT["rfc"], required=False)
    name = ReceptorText(max_length=LIMIT["name"], required=False)
    tax_regime = ReceptorText(max_length=LIMIT["tax_regime"], required=False)
    postal_code = ReceptorText(max_length=LIMIT["postal_code"], required=False)
    cfdi_use = ReceptorText(max_length=LIMIT["cfdi_use"], required=False)
    emails = serializers.ListField(child=ReceptorText(max_length=LIMIT["email"]), max_length=20, required=False)


class ReissueIn(StrictJsonSerializer):
    receptor = ReceptorChangesIn()


class CancellationAcceptedOut(serializers.Serializer):
    invoice = InvoiceOut()
    cancellation = CancellationOut()


class ReissueAcceptedOut(serializers.Serializer):
    invoice = InvoiceOut(help_text="La factura original: sigue timbrada hasta que el SAT cancele.")
    replacement = InvoiceOut(help_text="La factura sustituta, en timbrado.")
    cancellation = CancellationOut()
