"""What a log line is about: the request, the merchant and the invoice, carried in context variables.

The request middleware (portal/middleware.py) opens a context per request (its id from X-Request-ID, or a new
one); API authentication, the shoppers' pages and the back office add the merchant; tasks and services that work
on one invoice add it with ``log_context``. ``ContextFilter`` copies them onto every log record, so the plain
format and the JSON one (``LOG_FORMAT=json``, portal/logs.py) both show them. A context variable, not a
thread-local: a worker thread that serves request after request starts each with nothing left from the last.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager

FIELDS = ("request_id", "merchant_id", "invoice_id")
_vars = {name: contextvars.ContextVar(name, default=None) for name in FIELDS}
_open = contextvars.ContextVar("log_context_open", default=False)


def current() -> dict:
    """The fields set now (None when unset)."""
    return {name: var.get() for name, var in _vars.items()}


def bind(**values) -> None:
    """Set fields until the enclosing ``log_context`` ends (the request's, or a task's). Outside any (a shell, a
    test calling a view's helper) it does nothing: a value set there would stay with the thread for good."""
    if not _open.get():
        return
    for name, value in values.items():
        _vars[name].set(value)


@contextmanager
def log_context(**values):
    """Set fields for the block; the fields it does not name keep their values, and all come back after it."""
    tokens = {name: _vars[name].set(value) for name, value in values.items()}
    tokens["_open"] = _open.set(True)
    outer = {name: var.get() for name, var in _vars.items() if name not in values}
    try:
        yield
    finally:
        for name, value in outer.items():  # ``bind`` inside the block must not leak out of it either
            _vars[name].set(value)
        _open.reset(tokens.pop("_open"))
        for name, token in tokens.items():
            _vars[name].reset(token)


class ContextFilter(logging.Filter):
    """Adds request_id, merchant_id and invoice_id to every record (None when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _vars.items():
            if not hasattr(record, name):  # a value passed with ``extra=`` wins
                setattr(record, name, var.get())
        return True
