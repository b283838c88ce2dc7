"""Every request gets an id: the caller's X-Request-ID when it is a sane token (a load balancer's or a POS's own),
else a new one; it is echoed in the response's X-Request-ID and carried on every log line of the request with the
merchant and the invoice once known (infra/logcontext.py). First in MIDDLEWARE, so that everything after it logs
with the id. With LOG_REQUESTS=1 it also logs one line per request (method, path, status, milliseconds)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings

from infra.logcontext import log_context

HEADER = "X-Request-ID"
# Letters, digits and ._:- up to 100 characters: what load balancers and tracing headers send; anything else
# (a log-injection attempt, a megabyte of text) is replaced by our own id.
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,100}")
log = logging.getLogger("portal.request")


def request_id_from(value: str | None) -> str:
    value = (value or "").strip()
    return value if _SANE.fullmatch(value) else uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.headers.get(HEADER))
        request.request_id = request_id
        started = time.perf_counter()
        # Every field named: nothing of the previous request served by this thread survives into this one.
        with log_context(request_id=request_id, merchant_id=None, invoice_id=None):
            response = self.get_response(request)
            response[HEADER] = request_id
            if settings.LOG_REQUESTS:
                log.info("%s %s %s", request.method, request.path, response.status_code,
                         extra={"method": request.method, "path": request.path, "status": response.status_code,
                                "ms": round((time.perf_counter() - started) * 1000, 1)})
        return response
