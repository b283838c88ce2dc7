"""A Redis cache backend that keeps answering when Redis does not.

The cache is an optimisation: it holds rate-limit counters (shared by every web process, so a limit holds across
all of them) and django-q2's cluster statistics, nothing a request cannot live without. So when Redis is
unreachable, slow or refusing writes, every cache call goes to this process's memory instead of raising: the
limits then hold per process (N processes allow N times the limit), and the request is answered as usual.

A circuit breaker keeps a dead Redis from costing every request a connect timeout: after a failure Redis is left
alone for ``CACHE_RETRY_SECONDS`` and then one call tries it again. The outage is logged when it starts, at most
once a minute while it lasts, and when it ends; ``cache_status()`` reports it to /healthz.

Only store values whose loss or staleness is harmless: a value written during an outage stays in one process,
and the value Redis held before the outage comes back with it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60
FALLBACK_MAX_ENTRIES = 50_000
_DOWN_ERRORS = (RedisError, OSError)  # OSError: socket errors that redis-py lets through


class Breaker:
    """Per process and per Redis location (Django gives each thread its own backend instance)."""

    def __init__(self, location: str):
        self.location = location
        self._lock = threading.Lock()
        self.down_since: float | None = None  # wall clock, for people
        self.error = ""
        self._retry_at = 0.0  # monotonic
        self._logged_at = 0.0

    @property
    def is_open(self) -> bool:
        return self.down_since is not None

    def should_try(self) -> bool:
        if self.down_since is None:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._retry_at:
                return False
            # This call probes; the others keep using the fallback until it has answered.
            self._retry_at = now + _retry_seconds()
            return True

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            now = time.monotonic()
            self._retry_at = now + _retry_seconds()
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            if self.down_since is None:
                self.down_since = time.time()
                self._logged_at = now
                log.warning("cache %s unreachable (%s): rate limits count per process until it answers again",
                            self.location, self.error)
            elif now - self._logged_at >= LOG_EVERY_SECONDS:
                self._logged_at = now
                log.warning("cache %s still unreachable after %d s (%s): rate limits count per process",
                            self.location, time.time() - self.down_since, self.error)

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is None:
                return
            log.warning("cache %s answers again after %d s: rate limits are shared again",
                        self.location, time.time() - self.down_since)
            self.down_since = None
            self.error = ""

    def state(self) -> dict:
        if self.down_since is None:
            return {"ok": True, "rate_limits": "shared"}
        since = dt.datetime.fromtimestamp(self.down_since, tz=dt.UTC)
        return {"ok": False, "rate_limits": "per-process fallback", "down_since": since.isoformat(timespec="seconds"),
                "error": self.error}


_breakers: dict[str, Breaker] = {}
_breakers_lock = threading.Lock()


def _retry_seconds() -> float:
    return float(getattr(settings, "CACHE_RETRY_SECONDS", 5))


def _breaker_for(location: str) -> Breaker:
    breaker = _breakers.get(location)
    if breaker is None:
        with _breakers_lock:
            breaker = _breakers.setdefault(location, Breaker(location))
    return breaker


@receiver(setting_changed)
def _forget_breakers(*, setting, **kwargs):
    """Tests that point CACHES somewhere else start with a closed breaker and an empty fallback."""
    if setting in ("CACHES", "CACHE_RETRY_SECONDS"):
        with _breakers_lock:
            _breakers.clear()
        LocMemCache("resilient-cache-fallback", {}).clear()  # locmem instances of one name share their data


def _resilient(name: str):
    redis_method = getattr(RedisCache, name)

    def method(self, *args, **kwargs):
        if self._breaker.should_try():
            try:
                result = redis_method(self, *args, **kwargs)
            except _DOWN_ERRORS as exc:
                self._breaker.failed(exc)
            else:
                self._breaker.succeeded()
                return result
        return getattr(self._fallback, name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"RedisCache.{name}, or this process's memory while Redis does not answer."
    return method


class ResilientRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` that falls back to a per-process LocMem cache."""

    def __init__(self, server, params):
        super().__init__(server, params)
        location = server if isinstance(server, str) else ",".join(server)
        self._breaker = _breaker_for(location)
        fallback_params = {k: v for k, v in params.items() if k in ("TIMEOUT", "KEY_PREFIX", "VERSION", "KEY_FUNCTION")}
        fallback_params["OPTIONS"] = {"MAX_ENTRIES": FALLBACK_MAX_ENTRIES}
        self._fallback = LocMemCache("resilient-cache-fallback", fallback_params)

    add = _resilient("add")
    get = _resilient("get")
    set = _resilient("set")
    touch = _resilient("touch")
    delete = _resilient("delete")
    get_many = _resilient("get_many")
    has_key = _resilient("has_key")
    incr = _resilient("incr")  # decr, get_or_set and the async methods go through these
    set_many = _resilient("set_many")
    delete_many = _resilient("delete_many")
    clear = _resilient("clear")

    def probe(self) -> dict:
        """Ask Redis now, whatever the breaker says (for /healthz); a success closes the breaker."""
        started = time.perf_counter()
        try:
            self._cache.get_client().ping()
        except _DOWN_ERRORS as exc:
            self._breaker.failed(exc)
        else:
            self._breaker.succeeded()
        return {**self._breaker.state(), "ms": round((time.perf_counter() - started) * 1000, 2)}


def cache_status(alias: str = "default") -> dict:
    """What /healthz says about the cache: backend, and whether rate limits are shared or per process."""
    cache = caches[alias]
    info = {"backend": type(cache).__name__}
    if isinstance(cache, ResilientRedisCache):
        return {**info, **cache.probe()}
    if isinstance(cache, LocMemCache):
        return {**info, "ok": True, "rate_limits": "per process (no shared cache configured)"}
    return {**info, "ok": True, "rate_limits": "shared"}
