"""Domain errors of invoicing: a code for machines, a Spanish message for people.

Subclass of the project's DomainError, so the API's one exception handler renders it as
``{"error": {"code", "message", "details"}}`` with ``status``.
"""

from infra.errors import DomainError


class InvoicingError(DomainError):
    """Refused request; ``status`` is the HTTP status the API answers with (409 unless said otherwise)."""

    status = 409

    def __init__(self, code: str, message: str, details: dict | None = None, status: int | None = None):
        super().__init__(message, code=code, details=details, status=status)
