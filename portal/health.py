"""/healthz: can this process reach the database and the task queue?"""

import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


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
    try:
        info["queued"] = broker.queue_size()
    except Exception:  # noqa: BLE001 - queue size is informational; reachability is what counts
        pass
    return info


@never_cache
def healthz(request):
    checks = {}
    for name, check in (("database", _check_database), ("queue", _check_queue)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported as such
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    healthy = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)
