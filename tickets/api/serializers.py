"""Explicit request/response shapes of the tickets API (OpenAPI), and the output functions that follow them.

Ingestion does not validate through DRF serializers (too slow for 10,000 tickets a request): the request
serializers document the payload that ``tickets.ingest.normalize`` checks by hand, field for field.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from infra.api.schema import ErrorEnvelope  # noqa: F401 - the envelope, for views that import it from here
from tickets.eligibility import ticket_eligibility
from tickets.ingest.batch import self_invoice_url
from tickets.ingest.normalize import CURRENCY_PATTERN
from tickets.models import Batch, Ticket

MONEY = {"max_digits": 18, "decimal_places": 2, "coerce_to_string": True}
VALUE = {"max_digits": 24, "decimal_places": 6, "coerce_to_string": True}


# --- requests ------------------------------------------------------------------------------------------------


class TaxIn(serializers.Serializer):
    tax = serializers.ChoiceField(choices=["002", "003"], help_text="002 IVA, 003 IEPS (trasladados).")
    factor = serializers.ChoiceField(choices=["Tasa", "Cuota", "Exento"], default="Tasa")
    rate = serializers.DecimalField(required=False, allow_null=True, help_text="0.160000; omitir si Exento.",
                                    **VALUE)


class LineIn(serializers.Serializer):
    product_code = serializers.CharField(max_length=8, help_text="ClaveProdServ (8 dígitos).")
    unit_code = serializers.CharField(max_length=3, help_text="ClaveUnidad, p. ej. H87.")
    description = serializers.CharField(max_length=1000)
    sku = serializers.CharField(max_length=100, required=False)
    quantity = serializers.DecimalField(**VALUE)
    unit_price = serializers.DecimalField(**VALUE)
    prices_include_tax = serializers.BooleanField(default=True, help_text="El precio ya incluye impuestos.")
    discount = serializers.DecimalField(required=False, help_text="Descuento del renglón (misma base que el "
                                                                  "precio).", **VALUE)
    tax_object = serializers.ChoiceField(choices=["01", "02", "03"], default="02", help_text="ObjetoImp.")
    taxes = TaxIn(many=True, required=False)


class TicketIn(serializers.Serializer):
    branch = serializers.CharField(max_length=40, required=False,
                                   help_text="Clave de la sucursal. Si falta: la del LugarExpedicion del CFDI "
                                             "(con «document») o la de la llave de API; si no, 400.")
    number = serializers.CharField(max_length=64, help_text="Número de ticket (único por sucursal).")
    sold_at = serializers.DateTimeField(required=False,
                                        help_text="Obligatorio con lines (con document se toma la Fecha del CFDI). ISO "
                                                  "8601 con diferencia de UTC, p. ej. 2026-05-31T13:45:00-06:00 (o "
                                                  "…Z); sin ella, o solo la fecha, se rechaza (400).")
    currency = serializers.RegexField(
        CURRENCY_PATTERN, default="MXN",
        help_text="Cualquier clave del catálogo c_Moneda del SAT cuya moneda tiene centavos (2 decimales), en "
                  "mayúsculas o minúsculas: MXN (por omisión), USD, EUR, CAD, GBP… No se admiten las de 0 o 3 "
                  "decimales (p. ej. JPY, KWD) ni XXX o XTS.")
    exchange_rate = serializers.DecimalField(
        required=False, allow_null=True, help_text="Pesos por unidad de la moneda (hasta 6 decimales). Si falta, "
                                                   "se toma de la tabla de tipos de cambio del comercio.", **VALUE)
    payment_form = serializers.CharField(max_length=2, default="01", help_text="c_FormaPago.")
    discount = serializers.DecimalField(required=False, help_text="Descuento del ticket, con impuestos.", **MONEY)
    total = serializers.DecimalField(required=False, help_text="Total cobrado; debe cuadrar con los renglones. "
                                                               "Obligatorio con lines (con document, el del CFDI).",
                                     **MONEY)
    subtotal = serializers.DecimalField(required=False, help_text="Opcional; se verifica.", **MONEY)
    tax_total = serializers.DecimalField(required=False, help_text="Opcional; se verifica.", **MONEY)
    lines = LineIn(many=True, required=False)
    document = serializers.CharField(required=False, help_text="En lugar de lines: el CFDI 3.3/4.0 que armó el "
                                                               "punto de venta, en base64.")


@extend_schema_field({
    "type": "array", "minItems": 1,
    # A bad ticket never rejects the batch: it is judged alone and answered in «report» (207). So an item is any
    # object, and the ticket's shape is the one documented; a client sends TicketIn, the server takes both.
    "items": {"anyOf": [{"$ref": "#/components/schemas/TicketInRequest"}, {"type": "object"}]},
    "description": "Hasta 10,000 tickets, cada uno como en POST /tickets (TicketIn). Uno inválido no rechaza el "
                   "lote: su resultado va en «report» con sus errores.",
})
class BatchTickets(serializers.ListField):
    pass


class BatchIn(serializers.Serializer):
    batch_id = serializers.CharField(max_length=100, help_text="Id del lote del cliente; no se repite.")
    tickets = BatchTickets()


class BatchZipIn(serializers.Serializer):
    batchId = serializers.CharField(max_length=100)  # noqa: N815 - wire name
    file = serializers.FileField(help_text="ZIP de archivos .json (también se acepta en el campo «file[0]») (un ticket cada uno, nuestro "
                                           "formato o {\"cfdi\": {ref_id, ticket_number, document}}).")


class VoidIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False)


class OptionalBoolean(serializers.BooleanField):
    """A query flag whose absence means "either" (None). DRF reads a missing boolean of a query string as False
    (default_empty_html); here it gets the default instead, and the schema says boolean, not nullable."""

    default_empty_html = serializers.empty


class TicketQuery(serializers.Serializer):
    number = serializers.CharField(required=False, max_length=64)
    branch = serializers.CharField(required=False, max_length=40)
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    sold_from = serializers.DateTimeField(required=False)
    sold_to = serializers.DateTimeField(required=False)
    invoiced = OptionalBoolean(required=False, default=None,
                               help_text="true: solo facturados; false: solo los no facturados; sin él: todos.")
    limit = serializers.IntegerField(required=False, min_value=1, default=50)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=10_000_000, default=0)

    def validate_limit(self, value):
        return min(value, settings.API_LIST_MAX_LIMIT)


class ValidateQuery(serializers.Serializer):
    number = serializers.CharField(max_length=64)
    total = serializers.DecimalField(required=False, max_digits=18, decimal_places=2)
    date = serializers.DateField(required=False)
    branch = serializers.CharField(required=False, max_length=40)


# --- responses -------------------------------------------------------------------------------------------------


class TaxOut(serializers.Serializer):
    tax = serializers.CharField()
    factor = serializers.CharField()
    rate = serializers.CharField(allow_null=True)


class LineOut(serializers.Serializer):
    position = serializers.IntegerField()
    product_code = serializers.CharField()
    unit_code = serializers.CharField()
    sku = serializers.CharField(allow_blank=True)
    description = serializers.CharField()
    quantity = serializers.DecimalField(**VALUE)
    unit_price = serializers.DecimalField(**VALUE)
    prices_include_tax = serializers.BooleanField()
    amount = serializers.DecimalField(help_text="Importe con impuestos antes de descuentos.", **VALUE)
    discount = serializers.DecimalField(help_text="Descuento con impuestos (incluye su parte del descuento del "
                                                  "ticket).", **VALUE)
    tax_object = serializers.CharField()
    taxes = TaxOut(many=True)


class InvoiceLinkOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    uuid = serializers.CharField(allow_null=True)
    serie = serializers.CharField(allow_blank=True)
    folio = serializers.IntegerField(allow_null=True)
    amount = serializers.DecimalField(**MONEY)
    url = serializers.CharField()


class TicketSummaryOut(serializers.Serializer):
    id = serializers.IntegerField()
    branch = serializers.CharField()
    number = serializers.CharField()
    sold_at = serializers.DateTimeField()
    currency = serializers.CharField()
    exchange_rate = serializers.DecimalField(allow_null=True, **VALUE)
    payment_form = serializers.CharField()
    subtotal = serializers.DecimalField(**MONEY)
    discount = serializers.DecimalField(**MONEY)
    tax_total = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    source = serializers.CharField()
    expires_at = serializers.DateTimeField()
    can_self_invoice = serializers.BooleanField()
    self_invoice_url = serializers.CharField()
    created_at = serializers.DateTimeField()


class TicketOut(TicketSummaryOut):
    lines = LineOut(many=True)
    invoices = InvoiceLinkOut(many=True)


class TicketListOut(serializers.Serializer):
    count = serializers.IntegerField()
    total_amount = serializers.DecimalField(help_text="Suma de los totales de todos los tickets que cumplen.",
                                            **MONEY)
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    results = TicketSummaryOut(many=True)


class ValidationOut(serializers.Serializer):
    can_self_invoice = serializers.BooleanField()
    code = serializers.CharField()
    message = serializers.CharField()
    ticket = TicketSummaryOut(allow_null=True)


class BatchEntryOut(serializers.Serializer):
    index = serializers.IntegerField()
    file = serializers.CharField(required=False)
    ref_id = serializers.CharField(required=False)
    branch = serializers.CharField(required=False)
    number = serializers.CharField(required=False)
    status = serializers.CharField(help_text="created, duplicate, rejected o not_processed (el lote se detuvo antes "
                                             "de llegar a él: reenvía el mismo batch_id).")
    ticket_id = serializers.IntegerField(required=False, allow_null=True)
    self_invoice_url = serializers.CharField(required=False)
    expires_at = serializers.DateTimeField(required=False)
    code = serializers.CharField(required=False, help_text="Si se rechazó: invalid_ticket, invalid_file o conflict; "
                                                           "not_processed si no se procesó.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    differences = serializers.ListField(child=serializers.CharField(), required=False)


class BatchOut(serializers.Serializer):
    batch_id = serializers.CharField()
    status = serializers.CharField(help_text="received, processing, done o failed.")
    source = serializers.CharField()
    total_count = serializers.IntegerField()
    processed_count = serializers.IntegerField()
    created_count = serializers.IntegerField()
    duplicate_count = serializers.IntegerField()
    rejected_count = serializers.IntegerField()
    progress = serializers.FloatField(help_text="0 a 1.")
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()
    report_csv_url = serializers.CharField()
    report = BatchEntryOut(many=True)


# --- output functions ----------------------------------------------------------------------------------------------


def _money(value) -> str:
    return f"{value:.2f}"


def _value(value) -> str | None:
    return None if value is None else f"{value:.6f}"


def _local(moment, tz) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat()


def ticket_summary(ticket: Ticket, now=None) -> dict:
    tz = ticket.merchant.tzinfo  # select_related("merchant") in list queries
    now = now or timezone.now()
    return {
        "id": ticket.pk,
        "branch": ticket.branch.code,
        "number": ticket.number,
        "sold_at": _local(ticket.sold_at, tz),
        "currency": ticket.currency,
        "exchange_rate": _value(ticket.exchange_rate),
        "payment_form": ticket.payment_form,
        "subtotal": _money(ticket.subtotal),
        "discount": _money(ticket.discount),
        "tax_total": _money(ticket.tax_total),
        "total": _money(ticket.total),
        "status": ticket.status,
        "source": ticket.source,
        "expires_at": _local(ticket.expires_at, tz),
        "can_self_invoice": ticket_eligibility(ticket, merchant=ticket.merchant, now=now).ok,
        "self_invoice_url": self_invoice_url(ticket.public_code),
        "created_at": _local(ticket.created_at, tz),
    }


def _invoice_url(pk: int) -> str:
    try:
        return settings.PUBLIC_BASE_URL + reverse("api-invoice", kwargs={"pk": pk})
    except NoReverseMatch:
        return f"{settings.PUBLIC_BASE_URL}/api/v1/invoices/{pk}"


def ticket_detail(ticket: Ticket) -> dict:
    data = ticket_summary(ticket)
    data["lines"] = [
        {
            "position": line.position,
            "product_code": line.product_code,
            "unit_code": line.unit_code,
            "sku": line.sku,
            "description": line.description,
            "quantity": _value(line.quantity),
            "unit_price": _value(line.unit_price),
            "prices_include_tax": line.prices_include_tax,
            "amount": _value(line.amount),
            "discount": _value(line.discount),
            "tax_object": line.tax_object,
            "taxes": [{"tax": t.get("tax", ""), "factor": t.get("factor", ""),
                       "rate": None if t.get("rate") is None else str(t["rate"])} for t in line.taxes or []],
        }
        for line in ticket.lines.all()
    ]
    # tickets must not import invoicing models: follow the reverse relation of the through table.
    data["invoices"] = [
        {
            "id": link.invoice.pk,
            "kind": link.invoice.kind,
            "status": link.invoice.status,
            "uuid": str(link.invoice.uuid) if link.invoice.uuid else None,
            "serie": link.invoice.serie,
            "folio": link.invoice.folio,
            "amount": _money(link.amount),
            "url": _invoice_url(link.invoice.pk),
        }
        for link in ticket.invoice_links.select_related("invoice").order_by("invoice_id")
    ]
    return data


def batch_out(batch: Batch, *, include_report: bool = True) -> dict:
    tz = batch.merchant.tzinfo
    base = f"{settings.PUBLIC_BASE_URL}/api/v1/batches/{batch.batch_id}"
    return {
        "batch_id": batch.batch_id,
        "status": batch.status,
        "source": batch.source,
        "total_count": batch.total_count,
        "processed_count": batch.processed_count,
        "created_count": batch.created_count,
        "duplicate_count": batch.duplicate_count,
        "rejected_count": batch.rejected_count,
        "progress": round(batch.processed_count / batch.total_count, 4) if batch.total_count else 1.0,
        "error": batch.error,
        "created_at": _local(batch.created_at, tz),
        "finished_at": _local(batch.finished_at, tz),
        "url": base,
        "report_csv_url": f"{base}/report.csv",
        "report": batch.report if include_report else [],
    }
