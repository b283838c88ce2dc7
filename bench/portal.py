"""Shoppers' lookup: what a shopper waits for at a given arrival rate, and throughput against a bare view.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/portal.py [--rate 150] [--sweep]

Starts gunicorn on 127.0.0.1 (persistent DB connections). The requests cycle through a hit (302 to the cart), a
wrong total and a miss (both render the page).

- Open loop (what a shopper feels): requests are sent at a fixed rate (default 150/s; `--sweep` also runs
  50/100/150/200/300) by a generator that never waits for an answer before sending the next, each on its own
  connection as phones arrive. Latency counts from the moment a request was due, so a slow server cannot hide
  its queue by slowing the generator down (no coordinated omission).
- Closed loop (capacity): 32 connections always busy for a bounded time, with `wrk` when installed, else a
  threaded Python client; the real lookup against a bare Django view doing the same DB look-up.

Prints ONE JSON object. Targets: open_loop_p99_ms <= 50 with 0 errors at 150/s; ratio >= 0.6.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 32
DURATION_S = int(os.environ.get("BENCH_SECONDS", "10"))
SLUG = "bench-portal"

SETTINGS = """
from bench.settings import *  # noqa
PORTAL_RATE_LIMITS = {"lookup_ip": (10**9, 60), "lookup_merchant": (10**9, 60)}
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
LOGGING = {"version": 1, "disable_existing_loggers": True, "root": {"level": "ERROR"}}
"""

WRK_LUA = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "%s"
wrk.headers["X-CSRFToken"] = "%s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH %%d %%f %%d %%d\\n", summary.requests, latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.duration))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_data():
    import datetime as dt
    from decimal import Decimal

    import django
    from django.core.management import call_command

    django.setup()
    from django.utils import timezone

    from tickets.models import Branch, Merchant, Ticket
    from tickets.services import LineInput, ticket_create

    call_command("migrate", verbosity=0)
    merchant, _ = Merchant.objects.get_or_create(slug=SLUG, defaults={
        "legal_name": "BENCH", "rfc": "EKU9003173C9", "self_invoice_window": "days", "self_invoice_days": 3650})
    branch, _ = Branch.objects.get_or_create(merchant=merchant, code="B1",
                                             defaults={"name": "Bench", "postal_code": "06600"})
    ticket = Ticket.objects.filter(merchant=merchant, number="BENCH1").first()
    if ticket is None:
        line = LineInput(product_code="50202306", unit_code="H87", description="X", quantity=Decimal(1),
                         unit_price=Decimal("116.00"))
        ticket = ticket_create(merchant=merchant, branch=branch, number="BENCH1", lines=[line],
                               sold_at=timezone.now() - dt.timedelta(hours=1))
    day = timezone.localtime(ticket.sold_at, merchant.tzinfo).date().isoformat()
    return [f"number=BENCH1&total=116.00&sold_on={day}",        # hit: 302 to the cart
            f"number=BENCH1&total=115.00&sold_on={day}",        # total does not match
            f"number=NOPE&total=116.00&sold_on={day}"]          # not found


def python_load(url: str, bodies: list[str], cookie: str, token: str) -> dict:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    deadline = time.monotonic() + DURATION_S
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def run(n: int):
        mine, i = [], n
        while time.monotonic() < deadline:
            body = bodies[i % len(bodies)]
            i += 1
            start = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                conn.request("POST", parts.path, body, {"Content-Type": "application/x-www-form-urlencoded",
                                                        "Cookie": cookie, "X-CSRFToken": token})
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status >= 400 and resp.status != 404:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(CONNECTIONS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0
    return {"rps": len(latencies) / elapsed, "p99_ms": p99 * 1000, "errors": errors[0]}


def wrk_load(url: str, bodies: list[str], cookie: str, token: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA % (", ".join(json.dumps(b) for b in bodies), cookie, token))
        script = f.name
    try:
        out = subprocess.run(["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{DURATION_S}s", "--timeout", "10s",
                              "-s", script, url], capture_output=True, text=True, timeout=DURATION_S + 60).stdout
    finally:
        os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    _, requests, p99_us, errors, duration_us = line.split()
    return {"rps": int(requests) / (int(duration_us) / 1e6), "p99_ms": float(p99_us) / 1000, "errors": int(errors)}


def open_loop(url: str, bodies: list[str], cookie: str, token: str, rate: float, seconds: float) -> dict:
    """Send ``rate`` requests a second for ``seconds``, each due at a fixed time, whatever the answers do."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port, path = parts.hostname, parts.port, parts.path
    requests_ = [
        (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
         f"Content-Length: {len(b)}\r\nCookie: {cookie}\r\nX-CSRFToken: {token}\r\nConnection: close\r\n\r\n{b}"
         ).encode() for b in bodies]
    latencies: list[float] = []
    errors = [0]

    async def one(due: float, payload: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(payload)
            status = await asyncio.wait_for(reader.readline(), 10)
            await asyncio.wait_for(reader.read(), 10)  # Connection: close → the whole answer
            writer.close()
            code = int(status.split()[1])
            if code >= 400 and code != 404:
                errors[0] += 1
        except (TimeoutError, OSError, IndexError, ValueError):
            errors[0] += 1
        latencies.append(loop.time() - due)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        total = int(rate * seconds)
        tasks = []
        for n in range(total):
            due = start + n / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, requests_[n % len(requests_)])))
        await asyncio.gather(*tasks)

    asyncio.run(run())
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000 if latencies else 0.0

    return {"rate": rate, "requests": len(latencies), "p50_ms": round(pct(0.50), 2), "p99_ms": round(pct(0.99), 2),
            "max_ms": round(latencies[-1] * 1000, 2) if latencies else 0.0, "errors": errors[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=150, help="open-loop arrivals per second (default 150)")
    parser.add_argument("--sweep", action="store_true", help="also run 50, 100, 150, 200 and 300 per second")
    parser.add_argument("--open-seconds", type=float, default=float(os.environ.get("BENCH_OPEN_SECONDS", "10")))
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print(json.dumps({"error": "set DATABASE_URL to a PostgreSQL database"}))
        sys.exit(2)
    tmp = tempfile.mkdtemp(prefix="bench-portal-")
    Path(tmp, "bench_portal_settings.py").write_text(SETTINGS)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "bench_portal_settings", "DEBUG": "0",
                       "SECRET_KEY": "bench-" + "x" * 50, "FIELD_ENCRYPTION_KEY": "A" * 43 + "=",
                       "ALLOWED_HOSTS": "127.0.0.1", "CONN_MAX_AGE": "600", "SECURE_COOKIES": "0", "VAR_DIR": tmp,
                       "PYTHONPATH": os.pathsep.join([tmp, str(ROOT)])})
    sys.path[:0] = [tmp, str(ROOT)]
    bodies = setup_data()

    port = free_port()
    workers = str(max(2, (os.cpu_count() or 1) * 2 + 1))
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", workers, "--log-level", "warning"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        import requests

        for _ in range(100):
            try:
                session = requests.Session()
                session.get(f"{base}/{SLUG}/", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                time.sleep(0.1)
        token = session.cookies["csrftoken"]
        # One real lookup puts the ticket in this session's cart: later hits find it there (no session write).
        session.post(f"{base}/{SLUG}/", data=bodies[0], headers={"X-CSRFToken": token,
                     "Content-Type": "application/x-www-form-urlencoded"}, allow_redirects=False).raise_for_status()
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        load = wrk_load if shutil.which("wrk") else python_load
        load(f"{base}/{SLUG}/bench-lookup", bodies, cookie, token)  # warm-up of every worker
        bare = load(f"{base}/{SLUG}/bench-lookup", bodies, cookie, token)
        lookup = load(f"{base}/{SLUG}/", bodies, cookie, token)
        time.sleep(1)  # let the closed loop's backlog drain before measuring what one arrival waits
        rates = sorted({args.rate, *((50, 100, 150, 200, 300) if args.sweep else ())})
        sweep = {r: open_loop(f"{base}/{SLUG}/", bodies, cookie, token, r, args.open_seconds) for r in rates}
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "lookup_rps": round(lookup["rps"], 1), "bare_rps": round(bare["rps"], 1),
        "lookup_p99_ms": round(lookup["p99_ms"], 2), "bare_p99_ms": round(bare["p99_ms"], 2),
        "ratio": round(lookup["rps"] / bare["rps"], 3) if bare["rps"] else None,
        "errors": lookup["errors"] + bare["errors"], "connections": CONNECTIONS, "seconds": DURATION_S,
        "gunicorn_workers": int(workers), "load_generator": load.__name__,
        "open_loop_rate": args.rate, "open_loop_p50_ms": sweep[args.rate]["p50_ms"],
        "open_loop_p99_ms": sweep[args.rate]["p99_ms"], "open_loop_errors": sweep[args.rate]["errors"],
        "open_loop_seconds": args.open_seconds,
        **({"open_loop_sweep": [sweep[r] for r in rates]} if args.sweep else {}),
    }))


if __name__ == "__main__":
    main()
