"""One error envelope for every API of the project: ``{"error": {"code", "message", "details"}}``.

Set as REST_FRAMEWORK["EXCEPTION_HANDLER"]. It handles our ``infra.errors.DomainError`` (and subclasses),
every DRF exception (401/403/404/405/406/415/429 with Retry-After, 400 with details per field), a database or
broker that cannot be reached (503 with Retry-After: infra/outages.py), and turns anything unexpected into a
logged 500 in the same envelope.
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from infra.errors import DomainError
from infra.outages import note_unavailable, service_unavailable

logger = logging.getLogger(__name__)

# A database restart or a failover takes seconds: clients (and people) may try again that soon.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
UNAVAILABLE_CODE = "service_unavailable"
UNAVAILABLE_MESSAGE = ("El servicio no está disponible por un momento. Reintenta la solicitud en "
                       f"{UNAVAILABLE_RETRY_AFTER_SECONDS} segundos.")


def envelope(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def flatten_details(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → ``{"lines[0].quantity": ["…"]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in flatten_details(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(v, (dict, list)) for v in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in detail)
        else:
            for i, value in enumerate(detail):
                for k, v in flatten_details(value, f"{prefix}[{i}]").items():
                    out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def _describe(exc: exceptions.APIException, request) -> tuple[str, str, dict]:
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        return "validation_error", "Hay datos inválidos en la solicitud.", flatten_details(detail)
    if isinstance(exc, exceptions.NotAuthenticated):
        return "not_authenticated", "Falta la llave de API: envía «Authorization: Bearer <llave>».", {}
    if isinstance(exc, exceptions.AuthenticationFailed):
        code = getattr(detail, "code", None)
        return (code if code and code != "authentication_failed" else "invalid_api_key"), str(detail), {}
    if isinstance(exc, exceptions.PermissionDenied):
        code = getattr(detail, "code", None)
        return (code if code and code != "permission_denied" else "permission_denied"), str(detail), {}
    if isinstance(exc, exceptions.NotFound):
        return "not_found", "No encontrado.", {}
    if isinstance(exc, exceptions.MethodNotAllowed):
        return "method_not_allowed", f"El método {request.method} no está permitido aquí.", {}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return (
            "unsupported_media_type",
            f"Tipo de contenido no admitido: «{request.content_type or 'ninguno'}».",
            {},
        )
    if isinstance(exc, exceptions.NotAcceptable):
        return "not_acceptable", "No se puede responder en el formato pedido (Accept); usa application/json.", {}
    if isinstance(exc, exceptions.Throttled):
        wait = math.ceil(exc.wait or 1)
        return "rate_limited", f"Demasiadas solicitudes con esta llave; reintenta en {wait} s.", {"retry_after": wait}
    if isinstance(exc, exceptions.ParseError):
        return "malformed_request", f"El cuerpo de la solicitud no se pudo leer: {detail}", {}
    code = getattr(detail, "code", None) or "error"
    return str(code), str(detail), {}


def api_exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, DomainError):
        set_rollback()
        response = Response(envelope(exc.code, exc.message, exc.details), status=exc.status)
        for name, value in exc.headers.items():
            response[name] = value
        return response
    if isinstance(exc, RequestDataTooBig):
        # Something read request.body (Django's page limit) before our parsers: still the API's 413.
        set_rollback()
        cap = settings.API_MAX_BODY_BYTES // (1024 * 1024)
        return Response(envelope("payload_too_large", f"El cuerpo de la solicitud excede el máximo ({cap} MB)."),
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):  # too many form fields or files, and the like
        set_rollback()
        return Response(envelope("malformed_request", "La solicitud no se pudo leer."),
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        code, message, details = _describe(exc, request)
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.Throttled):
            headers["Retry-After"] = str(math.ceil(exc.wait or 1))
        return Response(envelope(code, message, details), status=exc.status_code, headers=headers)
    if service_unavailable(exc):  # PostgreSQL or the broker away: it ends by itself, the client may resend
        set_rollback()
        note_unavailable(exc, request.path if request is not None else "API")
        response = Response(envelope(UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE),
                            status=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)})
        response._has_been_logged = True  # note_unavailable logs the outage, not an error line per request
        return response
    logger.exception("Error inesperado en la API", exc_info=exc)
    set_rollback()
    return Response(
        envelope("internal_error", "Error interno; ya quedó registrado. Intenta de nuevo más tarde."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Plain Django view for unknown URLs under /api/ (JSON instead of the HTML 404 page), whatever the method.

    CSRF-exempt like every API view (API keys, no cookies): otherwise a POST got the HTML 403 CSRF page before
    reaching it. It changes nothing, so exempting it opens nothing."""
    return JsonResponse(envelope("not_found", "No existe esa ruta de la API."), status=404)
