"""The cache is an optimisation: a Redis that is down, hung or back again never fails a caller.

Against real Redis clients: a closed port (refused at once), a socket that accepts and never answers (hung), and
the live Redis of the machine on a database of its own (skipped when there is none).
"""

import logging
import socket
import time

import pytest
import redis
from django.core.cache import caches

from infra import ratelimit
from infra.resilient_cache import ResilientRedisCache, cache_status

LIVE_REDIS = "redis://127.0.0.1:6379/13"


def _connects(monkeypatch) -> list:
    calls = []
    original = redis.connection.Connection._connect

    def counting(self):
        calls.append(self.port)
        return original(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counting)
    return calls


def _unreachable_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "infra.resilient_cache"]


def test_cache_calls_answer_from_process_memory_while_redis_is_unreachable(redis_down):
    cache = caches["default"]
    assert isinstance(cache, ResilientRedisCache)
    assert cache.add("k", 1, timeout=60) is True
    assert cache.incr("k") == 2
    cache.set("s", {"a": 1})
    assert cache.get("s") == {"a": 1} and cache.get_or_set("t", 5) == 5 and cache.has_key("t")
    assert cache.get_many(["k", "s"]) == {"k": 2, "s": {"a": 1}}
    cache.delete("k")
    assert cache.get("k") is None
    with pytest.raises(ValueError):  # incr of a missing key keeps Django's contract
        cache.incr("missing")


def test_a_dead_redis_is_tried_once_per_retry_interval_and_logged_once(redis_down, monkeypatch, caplog, still_clock):
    caplog.set_level(logging.INFO, logger="infra.resilient_cache")
    connects = _connects(monkeypatch)
    verdicts = [ratelimit.hit("t", "ip", limit=10, window=60) for _ in range(50)]
    assert len(connects) == 1  # the breaker opened at the first refusal
    assert [v.count for v in verdicts] == list(range(1, 51))  # still counted, in this process
    assert sum(v.allowed for v in verdicts) == 10
    [message] = _unreachable_logs(caplog)
    assert "unreachable" in message and "per process" in message

    caches["default"]._breaker._retry_at = 0  # as if CACHE_RETRY_SECONDS had passed
    assert ratelimit.hit("t", "ip", limit=10, window=60).count == 51
    assert len(connects) == 2  # one probe, refused again; no new log line within the minute
    assert len(_unreachable_logs(caplog)) == 1


def test_a_hung_redis_costs_one_timeout_not_one_per_request(point_cache_at):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel accepts connections; nobody ever answers
    try:
        point_cache_at(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout_s=0.2)
        started = time.perf_counter()
        for _ in range(20):
            assert ratelimit.hit("t", "ip", limit=100, window=60).allowed
        elapsed = time.perf_counter() - started
    finally:
        silent.close()
    assert elapsed < 1.0, f"20 counts took {elapsed:.2f} s"


def test_health_status_names_the_fallback_and_the_error(redis_down):
    status = cache_status()
    assert status["ok"] is False and status["backend"] == "ResilientRedisCache"
    assert status["rate_limits"] == "per-process fallback"
    assert "ConnectionError" in status["error"] and status["down_since"]


@pytest.fixture
def live_redis(point_cache_at):
    client = redis.Redis.from_url(LIVE_REDIS, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    point_cache_at(LIVE_REDIS)
    yield client
    for key in client.scan_iter(":1:rl:live:*"):
        client.delete(key)


def test_counts_are_shared_through_a_live_redis_and_shared_again_after_an_outage(live_redis, caplog, still_clock):
    caplog.set_level(logging.INFO, logger="infra.resilient_cache")
    assert ratelimit.hit("live", "ip", limit=5, window=600).count == 1
    assert any(key.startswith(b":1:rl:live:ip:") for key in live_redis.keys(":1:rl:live:*"))
    status = cache_status()
    assert status["ok"] is True and status["rate_limits"] == "shared"

    breaker = caches["default"]._breaker
    breaker.failed(redis.ConnectionError("simulated outage"))
    assert ratelimit.hit("live", "ip", limit=5, window=600).count == 1  # counted in this process meanwhile
    breaker._retry_at = 0
    assert ratelimit.hit("live", "ip", limit=5, window=600).count == 2  # back on Redis's counter
    assert not breaker.is_open
    assert [m for m in _unreachable_logs(caplog) if "answers again" in m]
