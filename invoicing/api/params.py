"""Query-string parameters of the invoicing APIs: a clear 400 in the error envelope, never a 500."""

import datetime as dt

from django.utils.dateparse import parse_date

from invoicing.errors import InvoicingError


def int_param(request, name: str, default: int, maximum: int | None = None) -> int:
    """A non-negative integer, capped at ``maximum``."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # isdigit() alone accepts «²»
        raise InvoicingError("validation_error", f"«{name}» debe ser un entero no negativo.",
                             {name: ["Debe ser un entero no negativo."]}, status=400)
    return min(int(raw), maximum) if maximum else int(raw)


def date_param(request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = parse_date(raw)
    except ValueError:
        value = None
    if value is None:
        raise InvoicingError("validation_error", f"«{name}» debe ser una fecha AAAA-MM-DD.",
                             {name: ["Formato AAAA-MM-DD."]}, status=400)
    return value


def choice_param(request, name: str, choices) -> str | None:
    """One of ``choices`` (an enum of the schema); empty means absent."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    if raw not in choices:
        raise InvoicingError("validation_error", f"«{name}» no es un valor válido.",
                             {name: [f"Valores: {', '.join(choices)}."]}, status=400)
    return raw
