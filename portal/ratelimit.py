"""The shoppers' rate limits: which counters, how many attempts, and the lookup's rule.

Counting is tickets.ratelimit's (shared across processes when the cache is Redis, per process while Redis is
away). Limits are (count, seconds) pairs read from ``settings.PORTAL_RATE_LIMITS`` so a deployment (or the
benchmark) can tune them without code changes.
"""

from __future__ import annotations

from django.conf import settings

from tickets import ratelimit

DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "lookup_ip": (30, 600),         # a shopper types a few tickets; a scraper types thousands
    "lookup_merchant": (600, 60),   # caps a distributed guess against one merchant
    "rfc_ip": (10, 600),            # re-entering the RFC to see an invoiced ticket's files
    "resend_ip": (5, 3600),         # "reenviar por correo"
    "upload_ip": (10, 600),         # Constancia uploads (PDF parsing costs CPU)
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
    """Both limits are counted on every attempt, so neither can be probed for free."""
    by_ip = hit("lookup_ip", client_ip(request))
    by_merchant = hit("lookup_merchant", str(merchant_id))
    return by_ip and by_merchant
