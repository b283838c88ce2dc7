"""The shoppers' rate limits: which counters, how many attempts, and the lookup's rule.

Counting is infra.ratelimit's (shared across processes when the cache is Redis, per process while Redis is
away). Limits are (count, seconds) pairs read from ``settings.PORTAL_RATE_LIMITS`` so a deployment (or the
benchmark) can tune them without code changes.
"""

from __future__ import annotations

from django.conf import settings

from infra import ratelimit

DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "lookup_ip": (30, 600),         # a shopper types a few tickets; a scraper types thousands
    "lookup_merchant": (600, 60),   # notices a guess spread over many addresses against one merchant
    "lookup_surge_ip": (3, 600),    # what each address still gets while its merchant is over lookup_merchant
    "rfc_ip": (10, 600),            # re-entering the RFC to see an invoiced ticket's files
    "resend_ip": (5, 3600),         # "reenviar por correo"
    "upload_ip": (10, 600),         # Constancia uploads (PDF parsing costs CPU)
    "correction_ip": (5, 3600),     # "corregir mis datos": each success issues a CFDI and cancels another
    "my_invoices_ip": (5, 600),     # "mis facturas": asking for a link by email
    "my_invoices_rfc": (3, 3600),   # links asked for one RFC at one merchant, whatever the address
}


def limit_for(name: str) -> tuple[int, int]:
    return {**DEFAULT_LIMITS, **getattr(settings, "PORTAL_RATE_LIMITS", {})}[name]


def client_ip(request) -> str:
    # Behind a proxy, configure it to overwrite REMOTE_ADDR (or add middleware): X-Forwarded-For is forgeable.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def hit(name: str, key: str) -> bool:
    """Count one attempt for (name, key); False when the limit for the current window is exceeded."""
    count, window = limit_for(name)
    return ratelimit.hit(name, key, limit=count, window=window).allowed


def allow_lookup(request, merchant_id: int) -> bool:
    """Every attempt counts for its address. Only the attempts the address's own limit lets through count for
    the merchant: a blocked address adds nothing there, so one address cannot use up a merchant's allowance.

    Past the merchant's limit (a guess spread over many addresses, each under its own limit) the merchant is
    not closed, which would let a handful of addresses lock every shopper out: each address keeps a shopper's
    few attempts (lookup_surge_ip), so N addresses get a few guesses each instead of lookup_ip's count.
    """
    ip = client_ip(request)
    if not hit("lookup_ip", ip):
        return False
    if hit("lookup_merchant", str(merchant_id)):
        return True
    return hit("lookup_surge_ip", f"{merchant_id}:{ip}")
