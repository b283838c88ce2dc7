"""Request-body parsers of every API: our own size cap instead of Django's page limit, and JSON with limits.

Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB) guards the pages' forms; DRF reads a ``JSONParser`` body
through ``request.body``, which enforces it, so a 10,000-ticket batch (3.3 MB) died with RequestDataTooBig.
These parsers are not ``JSONParser`` subclasses: DRF hands them the request stream itself, they read at most
``API_MAX_BODY_BYTES`` (413 above it) and parse with ``infra.jsontext`` (nesting cap, no NaN).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, MultiPartParser

from infra import jsontext
from infra.errors import PayloadTooLarge


def _too_large() -> PayloadTooLarge:
    cap = settings.API_MAX_BODY_BYTES
    return PayloadTooLarge(f"El cuerpo de la solicitud excede {cap // (1024 * 1024)} MB.")


def _check_length(parser_context) -> None:
    request = (parser_context or {}).get("request")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except ValueError:
        length = 0
    if length > settings.API_MAX_BODY_BYTES:
        raise _too_large()


class ApiJSONParser(BaseParser):
    """Default parser of the project's APIs (floats as DRF's own JSONParser gives them)."""

    media_type = "application/json"
    decimals = False

    def parse(self, stream, media_type=None, parser_context=None):
        _check_length(parser_context)
        cap = settings.API_MAX_BODY_BYTES
        data = stream.read(cap + 1) if stream is not None else b""
        if len(data) > cap:
            raise _too_large()
        try:
            return jsontext.loads(data, decimals=self.decimals)
        except ValueError as exc:
            raise ParseError(f"JSON inválido: {exc}") from exc


class TicketJSONParser(ApiJSONParser):
    """Tickets carry money: exact decimals, never floats."""

    decimals = True


class CappedMultiPartParser(MultiPartParser):
    """A ZIP upload bigger than the API's cap is refused before it is spooled to disk."""

    def parse(self, stream, media_type=None, parser_context=None):
        _check_length(parser_context)
        return super().parse(stream, media_type, parser_context)
