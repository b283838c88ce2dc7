"""/healthz: can this process serve requests?

Anyone gets up/down: 200 ``{"status": "ok"}`` or 503 ``{"status": "error"}``, enough for a load balancer. Up/down
is the database alone: without it nothing works, while a broker or cache that does not answer leaves the web
process serving (data and the stamping queue live in the database; queued work is re-derived from it by the
sweepers once the broker is back), so pulling every web instance out of the balancer would turn a degraded
product into a total outage.
Logged-in staff, or a monitor sending ``X-Healthz-Token: <HEALTHZ_TOKEN>``, also get each check with its error
text (which names internal hosts and ports), the backlog of each queue, and the cache: a cache that does not
answer degrades the rate limits to per-process counters. Either one down is status "degraded", still 200.
"""

import hmac
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from infra import queues
from infra.resilient_cache import cache_status

TOKEN_HEADER = "HTTP_X_HEALTHZ_TOKEN"


def _check_database() -> dict:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_queue() -> dict:
    from django_q.brokers import get_broker

    started = time.perf_counter()
    broker = get_broker()
    reachable = bool(broker.ping())
    info = {"ok": reachable, "broker": type(broker).__name__, "ms": round((time.perf_counter() - started) * 1000, 2)}
    if reachable:
        info["queued"] = {queue: queues.backlog(queue) for queue in queues.QUEUES}
    return info


def _may_see_details(request) -> bool:
    expected = getattr(settings, "HEALTHZ_TOKEN", "") or ""
    given = request.META.get(TOKEN_HEADER, "")
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return True
    try:
        user = request.user  # reads the session: fails while the database is down
        return bool(user.is_active and user.is_staff)
    except Exception:  # noqa: BLE001 - no database, no session: an outsider's answer
        return False


@never_cache
def healthz(request):
    details = _may_see_details(request)
    # The cache does not decide up/down, so outsiders do not make this process probe it.
    probes = (("database", _check_database), ("queue", _check_queue)) + ((("cache", cache_status),) if details else ())
    checks = {}
    for name, check in probes:
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported as such
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    healthy = checks["database"]["ok"]
    status = 200 if healthy else 503
    if not details:
        return JsonResponse({"status": "ok" if healthy else "error"}, status=status)
    label = "error" if not healthy else "ok" if checks["cache"]["ok"] and checks["queue"]["ok"] else "degraded"
    return JsonResponse({"status": label, "checks": checks}, status=status)
