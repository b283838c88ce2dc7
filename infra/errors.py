"""Domain errors: what a service refuses, with a stable code, a Spanish message and per-field details.

The API's exception handler (infra/api/errors.py) turns any ``DomainError`` into the envelope
``{"error": {"code", "message", "details"}}`` with ``status``; other apps subclass these or raise them directly.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "invalid"
    message = "La solicitud no es válida."

    def __init__(self, message: str | None = None, *, code: str | None = None, details=None,
                 status: int | None = None, headers: dict | None = None):
        self.message = message or self.message
        self.code = code or self.code
        self.details = details if details is not None else {}
        self.status = status or self.status
        self.headers = headers or {}
        super().__init__(self.message)

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(DomainError):
    """Malformed or inconsistent input; ``details`` maps each wrong field to its messages."""

    status = 400
    code = "validation_error"
    message = "Hay datos inválidos en la solicitud."


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "No encontrado."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "La operación no es posible en el estado actual."


class Unprocessable(DomainError):
    status = 422
    code = "unprocessable"
    message = "La solicitud no se puede procesar."


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    message = "El contenido enviado es demasiado grande."
