"""Stamping providers (PACs). ``get_pac(merchant)`` is the only entry point the rest of the code needs.

See base.py for the interface (StampResult, CancelResult, StatusResult, PacError, Pac) and docs/pac.md.
"""

from __future__ import annotations

from .base import CancelResult, Pac, PacError, StampResult, StatusResult

__all__ = ["CancelResult", "Pac", "PacError", "StampResult", "StatusResult", "get_pac"]


def get_pac(merchant) -> Pac:
    """The provider configured on the merchant (``merchant.pac``: "sandbox" | "finkok" | "sw")."""
    kind = (getattr(merchant, "pac", "") or "sandbox").lower()
    environment = getattr(merchant, "pac_environment", "") or "test"
    username = getattr(merchant, "pac_username", "") or ""
    password = getattr(merchant, "pac_password", "") or ""
    if kind == "sandbox":
        from .sandbox import SandboxPac

        return SandboxPac()
    if kind == "finkok":
        from .finkok import FinkokPac

        return FinkokPac(username=username, password=password, environment=environment)
    if kind == "sw":
        from .sw import SwPac

        return SwPac(username=username, password=password, environment=environment)
    raise PacError("config", f"PAC desconocido: «{kind}».", permanent=True)
