"""Ticket ingestion end to end: batches of 1,000 three-line tickets POSTed over HTTP to gunicorn + PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/ingest.py [--batches 20]

Starts gunicorn (2 workers) on a free 127.0.0.1 port, creates a throw-away merchant and API key, posts the
batches from a few client threads, then COPYs the same rows straight into the same tables (rolled back) to
put the figure next to PostgreSQL's own speed. Cleans up its rows. Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

LINES = [
    {"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO DE COLA 600 ML", "quantity": "2",
     "unit_price": "22.00", "tax_object": "02", "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]},
    {"product_code": "50181900", "unit_code": "H87", "description": "PAN BLANCO CAJA", "quantity": "1",
     "unit_price": "48.50", "tax_object": "02", "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.000000"}]},
    {"product_code": "14111514", "unit_code": "H87", "description": "CUADERNO PROFESIONAL", "quantity": "1",
     "unit_price": "71.00", "tax_object": "02", "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_batch(run: str, b: int, size: int, sold_at: dt.datetime) -> bytes:
    tickets = []
    for i in range(size):
        # Vary prices a little so the engine's cache does not see one line only.
        lines = [dict(LINES[0], quantity=str(1 + i % 5)), dict(LINES[1]), dict(LINES[2], unit_price=f"{71 + i % 7}.00")]
        total = 22 * (1 + i % 5) + 48.5 + 71 + i % 7
        tickets.append({"branch": "BENCH", "number": f"{run}-{b}-{i}", "payment_form": "01",
                        "sold_at": (sold_at - dt.timedelta(seconds=i)).isoformat(), "total": f"{total:.2f}",
                        "lines": lines})
    return json.dumps({"batch_id": f"{run}-{b}", "tickets": tickets}).encode()


def wait_ready(port: int, proc, timeout=30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def post_all(port: int, key: str, bodies: list[bytes], threads: int) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            with lock:
                if not queue:
                    return
                _, body = queue.pop(0)
            t0 = time.perf_counter()
            conn.request("POST", "/api/v1/tickets/batch", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                statuses.append(response.status)
            if response.status != 200:
                print(data[:500], file=sys.stderr)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - start, latencies, statuses


def copy_same_rows(merchant, branch, count: int, run: str, sold_at) -> float:
    """COPY of equivalent rows (ticket, 3 lines, event) into the same tables, rolled back: PostgreSQL's ceiling.

    The COPY text is built before the clock starts, so this measures the database alone.
    """
    from django.db import connection, transaction

    from infra.models import Event
    from tickets.ingest.store import EVENT_COLUMNS, LINE_COLUMNS, TICKET_COLUMNS, _columns
    from tickets.models import Ticket, TicketLine

    now = dt.datetime.now(dt.UTC).isoformat()
    sold = sold_at.isoformat()
    taxes16 = json.dumps([{"tax": "002", "factor": "Tasa", "rate": "0.160000"}])
    taxes0 = json.dumps([{"tax": "002", "factor": "Tasa", "rate": "0.000000"}])
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                           [Ticket._meta.db_table, count])
            ids = [r[0] for r in cursor.fetchall()]
            tickets = "".join(
                f"{pk}\t{merchant.pk}\t{branch.pk}\t{run}-copy-{i}\t{sold}\tMXN\t\\N\t01\t163.07\t0\t13.93\t0\t"
                f"163.50\t{secrets.token_urlsafe(12)}\t{now}\topen\tbatch\t\\N\t{'f' * 64}\t\\N\t{now}\t{now}\n"
                for i, pk in enumerate(ids))
            lines = "".join(
                f"{pk}\t1\t50202306\tH87\t\tREFRESCO DE COLA 600 ML\t2\t22.00\tt\t0\t02\t{taxes16}\t44.00\n"
                f"{pk}\t2\t50181900\tH87\t\tPAN BLANCO CAJA\t1\t48.50\tt\t0\t02\t{taxes0}\t48.50\n"
                f"{pk}\t3\t14111514\tH87\t\tCUADERNO PROFESIONAL\t1\t71.00\tt\t0\t02\t{taxes16}\t71.00\n"
                for pk in ids)
            events = "".join(f"{merchant.pk}\tticket\t{pk}\t\topen\tbench\tregistrado (batch)\t{{}}\t{now}\n"
                             for pk in ids)
            raw = cursor.cursor
            t0 = time.perf_counter()
            for model, columns, data in ((Ticket, TICKET_COLUMNS, tickets), (TicketLine, LINE_COLUMNS, lines),
                                         (Event, EVENT_COLUMNS, events)):
                with raw.copy(f"COPY {model._meta.db_table} ({_columns(model, columns)}) FROM STDIN") as cp:
                    cp.write(data)
            elapsed = time.perf_counter() - t0
            raise _Rollback(elapsed)
    except _Rollback as done:
        return done.elapsed


class _Rollback(Exception):
    def __init__(self, elapsed):
        self.elapsed = elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/test")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from tickets.models import Branch, Merchant
    from tickets.services import api_key_create

    call_command("migrate", verbosity=0)
    run = secrets.token_hex(4)
    merchant = Merchant.objects.create(slug=f"bench-{run}", legal_name="BENCH", rfc="EKU9003173C9")
    branch = Branch.objects.create(merchant=merchant, code="BENCH", name="Bench", postal_code="06600")
    _, key = api_key_create(merchant=merchant, name="bench", scopes=["tickets"])
    sold_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    bodies = [make_batch(run, b, args.size, sold_at) for b in range(args.batches + 1)]

    port = free_port()
    env = dict(os.environ, DEBUG="0", SECRET_KEY=settings.SECRET_KEY,
               FIELD_ENCRYPTION_KEY=settings.FIELD_ENCRYPTION_KEY, API_RATE_LIMIT="", LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "-w", str(args.workers), "-b",
         f"127.0.0.1:{port}", "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        wait_ready(port, proc)
        post_all(port, key, bodies[:1], 1)  # warm-up: imports, connections, caches
        elapsed, latencies, statuses = post_all(port, key, bodies[1:], args.threads)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    tickets = args.batches * args.size
    copy_elapsed = copy_same_rows(merchant, branch, tickets, run, sold_at)
    copy_rows = tickets * 5
    with connection.cursor() as cursor:  # clean up without the ORM's cascade (seconds → milliseconds)
        cursor.execute("DELETE FROM tickets_ticketline WHERE ticket_id IN "
                       "(SELECT id FROM tickets_ticket WHERE merchant_id = %s)", [merchant.pk])
        cursor.execute("DELETE FROM tickets_ticket WHERE merchant_id = %s", [merchant.pk])
        cursor.execute("DELETE FROM tickets_event WHERE merchant_id = %s", [merchant.pk])
    merchant.delete()
    ok = sum(1 for s in statuses if s == 200)
    print(json.dumps({
        "tickets_per_s": round(tickets / elapsed),
        "copy_rows_per_s": round(copy_rows / copy_elapsed),
        "copy_tickets_per_s": round(tickets / copy_elapsed),
        "ratio_to_copy": round((tickets / elapsed) / (tickets / copy_elapsed), 3),
        "tickets": tickets,
        "rows_per_ticket": 5,  # ticket + 3 lines + creation event
        "batches_ok": ok,
        "batches": len(statuses),
        "batch_size": args.size,
        "batch_latency_p50_ms": round(statistics.median(latencies) * 1000),
        "batch_latency_max_ms": round(max(latencies) * 1000),
        "gunicorn_workers": args.workers,
        "client_threads": args.threads,
        "seconds": round(elapsed, 2),
    }))


if __name__ == "__main__":
    main()
