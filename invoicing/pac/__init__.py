"""Stamping providers (PACs). ``get_pac(merchant)`` is the merchant's primary PAC; ``get_secondary_pac`` the one
stamping fails over to (invoicing/services/failover.py), ``pac_named`` the one that stamped a given CFDI.

See base.py for the interface (StampResult, CancelResult, StatusResult, PacError, Pac) and docs/pac.md.
"""

from __future__ import annotations

from .base import NOT_SENT, CancelResult, Pac, PacError, StampResult, StatusResult

__all__ = ["CancelResult", "Pac", "PacError", "StampResult", "StatusResult", "get_pac", "get_secondary_pac",
           "pac_named"]


def build_pac(kind: str, *, environment: str = "test", username: str = "", password: str = "") -> Pac:
    kind = (kind or "sandbox").lower()
    environment = environment or "test"
    if kind == "sandbox":
        from .sandbox import SandboxPac

        return SandboxPac()
    if kind == "finkok":
        from .finkok import FinkokPac

        return FinkokPac(username=username or "", password=password or "", environment=environment)
    if kind == "sw":
        from .sw import SwPac

        return SwPac(username=username or "", password=password or "", environment=environment)
    raise PacError("config", f"PAC desconocido: «{kind}».", permanent=True, outcome=NOT_SENT)


def get_pac(merchant) -> Pac:
    """The provider configured on the merchant (``merchant.pac``: "sandbox" | "finkok" | "sw")."""
    return build_pac(getattr(merchant, "pac", "") or "sandbox",
                     environment=getattr(merchant, "pac_environment", "") or "test",
                     username=getattr(merchant, "pac_username", "") or "",
                     password=getattr(merchant, "pac_password", "") or "")


def get_secondary_pac(merchant) -> Pac | None:
    """The merchant's secondary PAC (``merchant.pac_secondary``), or None when it has none."""
    kind = getattr(merchant, "pac_secondary", "") or ""
    if not kind:
        return None
    return build_pac(kind, environment=getattr(merchant, "pac_secondary_environment", "") or "test",
                     username=getattr(merchant, "pac_secondary_username", "") or "",
                     password=getattr(merchant, "pac_secondary_password", "") or "")


def pac_named(merchant, name: str) -> Pac:
    """The merchant's PAC called ``name`` (what ``Invoice.pac`` records): the secondary when that is its name,
    otherwise the primary. Cancellations and status checks go to the PAC that stamped the CFDI."""
    secondary = getattr(merchant, "pac_secondary", "") or ""
    if name and name == secondary and name != (getattr(merchant, "pac", "") or "sandbox"):
        return get_secondary_pac(merchant)
    return get_pac(merchant)
