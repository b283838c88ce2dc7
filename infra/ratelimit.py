"""Fixed-window counters in Django's cache: the one rate limiter of the API throttle and the shoppers' portal.

One counter per (scope, key, window): an ``add`` and an ``incr``, instead of a list of timestamps per client.
With ``CACHE_URL``/``REDIS_URL`` the cache is ``infra.resilient_cache.ResilientRedisCache``, shared by every
process and never raising: while Redis is away the counts are kept per process (see that module).
"""

from __future__ import annotations

import time
from typing import NamedTuple

from django.core.cache import caches


class Verdict(NamedTuple):
    allowed: bool
    count: int  # attempts in this window, this one included
    retry_after: float  # seconds until the window ends


def hit(scope: str, key: str, *, limit: int, window: int) -> Verdict:
    """Count one attempt of ``key`` in ``scope``; allowed while at most ``limit`` attempts in ``window`` seconds."""
    cache = caches["default"]
    now = time.time()
    bucket = int(now // window)
    cache_key = f"rl:{scope}:{key}:{bucket}"
    if cache.add(cache_key, 1, timeout=window + 5):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired (or the cache changed hands) between add and incr
            cache.add(cache_key, 1, timeout=window + 5)
            count = 1
    return Verdict(count <= limit, count, (bucket + 1) * window - now)
