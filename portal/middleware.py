"""A database or broker that cannot be reached answers 503 with Retry-After, never a 500.

PostgreSQL restarting (or failing over) and Redis away end by themselves: a client should wait a few seconds and
resend, and a person should read that, not "internal error". The API gets the JSON error envelope
(``service_unavailable``; DRF views get the same from infra/api/errors.py), pages a short Spanish one.

``process_exception`` covers views (and the templates they render). An outage met outside a view — the session
saved on the way out, say — has already become Django's 500 response when it gets here; the
``got_request_exception`` receiver marks such a request so that ``__call__`` answers 503 instead. Only errors of
reaching the service count (infra/outages.py): a lock timeout or a deadlock stays a 500. Placed early in
MIDDLEWARE, right after the static files, so that every database user is inside it.
"""

from __future__ import annotations

import sys

from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from infra.api.errors import (
    UNAVAILABLE_CODE,
    UNAVAILABLE_MESSAGE,
    UNAVAILABLE_RETRY_AFTER_SECONDS,
    envelope,
)
from infra.outages import note_unavailable, service_unavailable

_MARK = "_service_unavailable"


def unavailable_response(request) -> HttpResponse:
    if request.path == "/api" or request.path.startswith("/api/"):
        response = JsonResponse(envelope(UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE), status=503)
    else:
        # No request context: a context processor may need the database that is away.
        retry_url = request.get_full_path() if request.method in ("GET", "HEAD") else ""
        response = HttpResponse(render_to_string("portal/unavailable.html", {"retry_url": retry_url}), status=503)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    response._has_been_logged = True  # note_unavailable logs the outage, not an error line per request
    return response


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            return unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if not service_unavailable(exception):
            return None
        note_unavailable(exception, request.path)
        return unavailable_response(request)


@receiver(got_request_exception, dispatch_uid="portal.middleware.service_unavailable")
def _mark_unavailable(sender, request=None, **kwargs):
    """Django sends this inside its handler of an uncaught exception: ``sys.exc_info()`` is that exception."""
    if request is not None and service_unavailable(sys.exc_info()[1]):
        setattr(request, _MARK, True)


class ApiRateLimitHeadersMiddleware:
    """The API key's rate-limit standing (infra/api/auth.py's throttle counts it) on every API answer: the
    throttle runs inside DRF, which has no way to add headers to the response it is not building."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        headers = getattr(request, "api_rate_limit", None)
        if headers:
            for name, value in headers.items():
                response.setdefault(name, value)
        return response


class ApiNulGuardMiddleware:
    """A NUL character in an API path, query string or Idempotency-Key is refused before any view: PostgreSQL
    cannot hold one in text, so it would end as a 500 wherever the value reaches a query (schemathesis found
    one). The answer is the API's own: 404 for a path (no resource has that name), 400 naming the parameter."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            if "\x00" in request.path:
                return JsonResponse(envelope("not_found", "No encontrado."), status=404)
            bad = [name for name, values in request.GET.lists() if any("\x00" in v for v in values) or "\x00" in name]
            if "\x00" in request.headers.get("Idempotency-Key", ""):
                bad.append("Idempotency-Key")
            if bad:
                return JsonResponse(envelope("validation_error", "Hay datos inválidos en la solicitud.",
                                             {name: ["No puede contener el carácter nulo."] for name in bad}),
                                    status=400)
        return self.get_response(request)
