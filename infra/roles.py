"""What each role of a merchant's staff may do in the back office: one table, read by the admin's permission hooks.

A role is a set of capabilities. Model admins name the capability each kind of access needs (``view_capability``,
``edit_capability``, the ``permissions`` of their actions, ``custom_view_capabilities`` for their own views), and
``infra.admin_scope.MerchantScopedAdmin`` checks them for every request of a non-superuser; Django's per-user
model permissions play no part for merchant staff. Anything that names no capability is refused to staff.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Dueño"
    ACCOUNTANT = "accountant", "Contador"
    CASHIER = "cashier", "Cajero"


class Cap(StrEnum):
    FIND = "find"  # tickets and invoices: list, search, detail
    READ = "read"  # everything else of the merchant, read-only
    RESEND = "resend"  # an invoice by email, to the receptor or another address
    RETRY = "retry"  # stamping of an invoice waiting out a PAC error
    DOWNLOAD = "download"  # XML, PDF, ZIP of an invoice
    EXPORT = "export"  # the accountant's period export
    CANCEL = "cancel"  # lifecycle actions, when the state machine offers them
    REISSUE = "reissue"
    TICKETS = "tickets"  # end a ticket's self-invoicing window, void it
    GLOBALS = "globals"  # issue a factura global now
    SETTINGS = "settings"  # the merchant, its branches, branding, PAC
    CSD = "csd"
    API_KEYS = "api_keys"
    WEBHOOKS = "webhooks"
    STAFF = "staff"


CAPABILITIES: dict[str, frozenset[Cap]] = {
    Role.OWNER: frozenset(Cap),
    Role.ACCOUNTANT: frozenset({Cap.FIND, Cap.READ, Cap.DOWNLOAD, Cap.EXPORT, Cap.CANCEL, Cap.REISSUE}),
    Role.CASHIER: frozenset({Cap.FIND, Cap.RESEND, Cap.RETRY}),
}

# What each role is told it can do (the staff page shows it next to the choice).
SUMMARY = {
    Role.OWNER: "Todo: configuración, CSD, PAC, llaves de API, webhooks y personal.",
    Role.ACCOUNTANT: "Consulta todo, descarga y exporta; cancela y reexpide.",
    Role.CASHIER: "Busca tickets y facturas, reenvía y reintenta; sin configuración.",
}


def user_role(user) -> str | None:
    membership = getattr(user, "membership", None) if user is not None and user.is_authenticated else None
    return membership.role if membership else None


def user_can(user, capability: Cap | str) -> bool:
    """Superusers can do everything; staff what their membership's role lists; anyone else nothing."""
    if user is None or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return Cap(capability) in CAPABILITIES.get(user_role(user), frozenset())
