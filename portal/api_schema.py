"""The OpenAPI schema's finishing pass (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]).

Views document their own operations (``@extend_schema`` next to each, with infra/api/schema.py's pieces). This
pass adds what is the same for all of them, so a new endpoint gets it for free:

- the description page (portal/api_description.md) with the error catalogue (portal/api_errors.py) and the
  webhook events (invoicing/webhooks/models.py) filled in from the code;
- the tags by resource, in order, with their descriptions;
- the answers every operation can give, as shared ``components/responses``: 401, 403 and 429 with a key, 404
  under an id, 400 with query parameters or a body, 413 and 415 with a body, 503 always;
- the rate-limit headers on every answer of an operation that takes a key.

An operation that documents one of those statuses itself (with its own examples) keeps its own.
"""

from __future__ import annotations

from pathlib import Path

from infra.api.schema import TAGS
from invoicing.webhooks.models import EVENTS, TEST_EVENT
from portal.api_errors import markdown_table

DESCRIPTION = Path(__file__).with_name("api_description.md")
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


def _envelope_example(code: str, message: str, details: dict | None = None) -> dict:
    return {"value": {"error": {"code": code, "message": message, "details": details or {}}}}


def _error_response(description: str, examples: dict, headers: dict | None = None) -> dict:
    response = {"description": description,
                "content": {"application/json": {"schema": ENVELOPE, "examples": examples}}}
    if headers:
        response["headers"] = headers
    return response


HEADERS = {
    "RetryAfter": {"description": "Segundos que conviene esperar antes de repetir la solicitud.",
                   "schema": {"type": "integer", "minimum": 0}},
    "RateLimitLimit": {"description": "Solicitudes permitidas a esta llave en la ventana actual.",
                       "schema": {"type": "integer"}},
    "RateLimitRemaining": {"description": "Solicitudes que le quedan a esta llave en la ventana actual.",
                           "schema": {"type": "integer", "minimum": 0}},
    "RateLimitReset": {"description": "Segundos hasta que empieza la siguiente ventana.",
                       "schema": {"type": "integer", "minimum": 0}},
    "WWWAuthenticate": {"description": "Bearer realm=\"api\"", "schema": {"type": "string"}},
}
RATE_HEADERS = {"X-RateLimit-Limit": {"$ref": "#/components/headers/RateLimitLimit"},
                "X-RateLimit-Remaining": {"$ref": "#/components/headers/RateLimitRemaining"},
                "X-RateLimit-Reset": {"$ref": "#/components/headers/RateLimitReset"}}
RETRY = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}

RESPONSES = {
    "SolicitudInvalida": _error_response("Datos inválidos (`details` por campo) o un cuerpo ilegible.", {
        "validation_error": _envelope_example("validation_error", "Hay datos inválidos en la solicitud.",
                                              {"limit": ["Debe ser un entero no negativo."]}),
        "malformed_request": _envelope_example("malformed_request", "El cuerpo de la solicitud no se pudo leer: "
                                               "JSON inválido: Expecting ',' delimiter: line 1 column 14 (char 13)"),
    }),
    "SinLlave": _error_response("Falta la llave de API, no es válida, fue revocada o el comercio está inactivo.", {
        "not_authenticated": _envelope_example("not_authenticated",
                                               "Falta la llave de API: envía «Authorization: Bearer <llave>»."),
        "invalid_api_key": _envelope_example("invalid_api_key", "La llave de API no es válida."),
    }, {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}),
    "SinPermiso": _error_response("La llave no tiene el permiso (scope) de esta operación.", {
        "missing_scope": _envelope_example("missing_scope", "La llave de API no tiene el permiso «invoices»."),
    }),
    "NoEncontrado": _error_response("No existe, o es de otro comercio.", {
        "not_found": _envelope_example("not_found", "No encontrado."),
    }),
    "DemasiadoGrande": _error_response("El cuerpo excede el máximo (API_MAX_BODY_BYTES).", {
        "payload_too_large": _envelope_example("payload_too_large", "El cuerpo de la solicitud excede 64 MB."),
    }),
    "TipoNoAdmitido": _error_response("Content-Type no admitido.", {
        "unsupported_media_type": _envelope_example("unsupported_media_type",
                                                    "Tipo de contenido no admitido: «text/plain»."),
    }),
    "DemasiadasSolicitudes": _error_response("Límite de solicitudes de la llave: espera Retry-After segundos.", {
        "rate_limited": _envelope_example("rate_limited", "Demasiadas solicitudes con esta llave; reintenta en 12 s.",
                                          {"retry_after": 12}),
    }, {**RETRY, **RATE_HEADERS}),
    "NoDisponible": _error_response("La base de datos o la cola no responden por un momento: repite tras "
                                    "Retry-After.", {
        "service_unavailable": _envelope_example("service_unavailable", "El servicio no está disponible por un "
                                                 "momento. Reintenta la solicitud en 5 segundos."),
    }, RETRY),
}


def _defaults(path: str, operation: dict) -> dict[str, str]:
    """status → shared response name, for what this operation can answer whatever it does."""
    out = {}
    params = operation.get("parameters", [])
    if any(p.get("in") == "query" for p in params) or "requestBody" in operation:
        out["400"] = "SolicitudInvalida"
    if operation.get("security"):
        out.update({"401": "SinLlave", "403": "SinPermiso", "429": "DemasiadasSolicitudes"})
    if "{" in path:
        out["404"] = "NoEncontrado"
    if "requestBody" in operation:
        out.update({"413": "DemasiadoGrande", "415": "TipoNoAdmitido"})
    out["503"] = "NoDisponible"
    return out


def description() -> str:
    events = "\n".join(f"- `{name}`" for name in (*EVENTS, TEST_EVENT))
    return (DESCRIPTION.read_text(encoding="utf-8")
            .replace("<!-- catálogo de errores -->", markdown_table())
            .replace("<!-- eventos de webhooks -->", events))


def postprocess(result, generator, request, public):
    result["info"]["description"] = description()
    result["tags"] = [{"name": name, "description": text} for name, text in TAGS]
    components = result.setdefault("components", {})
    components.setdefault("responses", {}).update(RESPONSES)
    components.setdefault("headers", {}).update(HEADERS)
    for path, item in result.get("paths", {}).items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True  # «?status=&limit=» is the same as leaving them out
            responses = operation.setdefault("responses", {})
            for status, name in _defaults(path, operation).items():
                responses.setdefault(status, {"$ref": f"#/components/responses/{name}"})
            if operation.get("security"):
                for response in responses.values():
                    if "$ref" not in response:
                        response.setdefault("headers", {}).update(RATE_HEADERS)
            operation["responses"] = dict(sorted(responses.items()))
    return result
