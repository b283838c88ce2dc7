"""Log formats: the plain one (default) and JSON (``LOG_FORMAT=json``), one object per line, for a log shipper.

Each JSON line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the context of
infra/logcontext.py (``request_id``, ``merchant_id``, ``invoice_id``: null when unknown), ``exception`` (the
traceback) when there is one, and whatever a call passed with ``extra=``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from infra.logcontext import FIELDS

# Attributes every LogRecord has: anything else on a record came from ``extra=`` (or a filter) and is logged too.
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime",
                                                                                       "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            entry[name] = getattr(record, name, None)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """Django's default line, plus the context when there is one: ``[req=… merchant=… invoice=…]``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{label}={value}" for label, name in (("req", "request_id"), ("merchant", "merchant_id"),
                                                                  ("invoice", "invoice_id"))
                           if (value := getattr(record, name, None)) is not None)
        return f"{line} [{context}]" if context else line


def logging_config(*, fmt: str, level: str) -> dict:
    """LOGGING for portal/settings.py: one console handler, the context filter, the chosen format."""
    if fmt not in ("plain", "json"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', got {fmt!r}")
    handler = {"class": "logging.StreamHandler", "filters": ["context"], "formatter": fmt}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "infra.logcontext.ContextFilter"}},
        "formatters": {"json": {"()": "portal.logs.JsonFormatter"}, "plain": {"()": "portal.logs.PlainFormatter"}},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # django-q2 gives its logger a handler of its own unless one is configured: this one, so its lines
            # are in the same format.
            "django-q": {"handlers": ["console"], "level": level, "propagate": False},
        },
    }
