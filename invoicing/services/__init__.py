"""Invoicing business logic. Views, serializers, admin actions and tasks call these functions only."""

from invoicing.services.issue import ReceptorData, invoice_issue

__all__ = ["ReceptorData", "invoice_issue"]
