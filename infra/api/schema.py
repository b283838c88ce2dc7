"""OpenAPI pieces every API view shares: the error envelope, error answers with their examples, the headers the
API reads and sends, and the tags by resource.

Each view documents itself with ``@extend_schema`` next to its code, using these. What every operation can answer
(401/403/429/503 for a key, 404 under an id, 400/413/415 with a body) is added to each operation by the schema's
postprocessing hook (portal/api_schema.py), so a new endpoint gets them without repeating them. Examples use
SAT's test RFCs (EKU9003173C9 emisor, CACX7605101P8 receptor, XAXX010101000 público en general).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

# --- tags: one per resource, in the order the documentation shows them ----------------------------------------

TAG_TICKETS = "tickets"
TAG_BATCHES = "lotes"
TAG_RATES = "tipos de cambio"
TAG_INVOICES = "facturas"
TAG_CANCELLATIONS = "cancelaciones"
TAG_GLOBALS = "facturas globales"
TAG_EXPORTS = "exportaciones"
TAG_WEBHOOKS = "webhooks"

TAGS = [
    (TAG_TICKETS, "Las ventas del punto de venta: registrarlas, consultarlas, saber si se pueden autofacturar, "
                  "terminar su plazo, cancelarlas y registrar devoluciones."),
    (TAG_BATCHES, "Muchos tickets en una solicitud (JSON de hasta 10,000 o un ZIP), su avance y su resultado."),
    (TAG_RATES, "La tabla de tipos de cambio del comercio, para los tickets en moneda extranjera."),
    (TAG_INVOICES, "Facturas CFDI 4.0 de uno o varios tickets: emitir (se timbran en segundo plano), consultar, "
                   "descargar XML, PDF o ZIP y reenviar por correo."),
    (TAG_CANCELLATIONS, "Cancelar una factura ante el SAT o corregir los datos del receptor (sustitución, "
                        "motivo 01)."),
    (TAG_GLOBALS, "La factura global a público en general (XAXX010101000) de los tickets que nadie facturó."),
    (TAG_EXPORTS, "El paquete del contador: XML (y PDF) de un periodo con su resumen en CSV y XLSX."),
    (TAG_WEBHOOKS, "Avisos firmados a tu servidor cuando algo pasa con tus facturas."),
]


# --- the error envelope -----------------------------------------------------------------------------------------


class ErrorBody(serializers.Serializer):
    code = serializers.CharField(help_text="Código estable para programas (ver «Errores» en la descripción de la "
                                           "API), p. ej. validation_error.")
    message = serializers.CharField(help_text="Mensaje en español para personas.")
    details = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Datos del error: por campo, la lista de mensajes («lines[2].quantity»: […]); según el código, "
                  "también ids o valores (ticket_id, invoice_id, retry_after…). Objeto vacío si no hay.")


class ErrorEnvelope(serializers.Serializer):
    """Every error of the API: ``{"error": {"code", "message", "details"}}``."""

    error = ErrorBody()


def error_example(code: str, message: str, details: dict | None = None, *, name: str | None = None
                  ) -> OpenApiExample:
    """One error as the API sends it; put it in ``error(...)``, which gives it its status."""
    return OpenApiExample(name or code, value={"error": {"code": code, "message": message, "details": details or {}}},
                          response_only=True)


def error(description: str, *examples: OpenApiExample) -> OpenApiResponse:
    """An error answer of one operation with examples of the codes that operation answers with that status."""
    return OpenApiResponse(ErrorEnvelope, description=description, examples=list(examples))


# --- headers ------------------------------------------------------------------------------------------------------

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="Hasta 100 caracteres, única por comercio (p. ej. el folio de la venta y el número de intento). "
                "Repetir la solicitud con la misma llave y el mismo cuerpo responde lo mismo sin hacerlo dos "
                "veces; con otro cuerpo, 422 `idempotency_key_reused`.",
    examples=[OpenApiExample("Venta", value="venta-A-000123-1")],
)


def retry_after(*statuses: int, description: str = "Segundos que conviene esperar antes de repetir la solicitud."
                ) -> OpenApiParameter:
    return OpenApiParameter("Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, description=description,
                            response=list(statuses))


def location(*statuses: int) -> OpenApiParameter:
    return OpenApiParameter("Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=list(statuses),
                            description="Dónde consultar el avance.")


def content_disposition(*statuses: int) -> OpenApiParameter:
    return OpenApiParameter("Content-Disposition", OpenApiTypes.STR, OpenApiParameter.HEADER, response=list(statuses),
                            description="attachment; filename=\"…\": el nombre con que conviene guardarlo.")


def path_id(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.PATH, description=description)
