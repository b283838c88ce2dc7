"""Domain errors of invoicing: a code for machines, a Spanish message for people."""


class InvoicingError(Exception):
    """Refused request; ``status`` is the HTTP status the API answers with."""

    status = 409

    def __init__(self, code: str, message: str, details: dict | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        if status is not None:
            self.status = status
