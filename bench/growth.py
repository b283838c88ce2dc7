"""How cost grows with data: the same measurements on a small and on a large tickets table.

    createdb -h 127.0.0.1 -U postgres bench_growth
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_growth .venv/bin/python bench/growth.py [--large 5000000]

Runs the other benchmarks as they ship (each in its own process, each printing its JSON) at two sizes:

- ingest (bench/ingest.py: batches of 1,000 tickets over HTTP) into an empty table, then into one holding
  ``--large`` tickets;
- the shoppers' lookup at a fixed arrival rate (bench/portal.py's open loop, 150/s) with ``--small`` and with
  ``--large`` tickets stored, the filler belonging to the very merchant the lookups go to;
- a factura global (bench/global_invoice.py) of 10,000 tickets on the small table and of 100,000 on the large
  one: seconds per ticket.

The filler is written with one INSERT … SELECT per table (old sales over 400 days, mostly invoiced or already in
a global, as a store's history is), then VACUUM ANALYZE, so each measurement sees a table in the state
production's would be. Prints ONE JSON object with each pair and its ratio (`lookup_p99_ratio`,
`global_per_ticket_ratio`, `ingest_ratio`). Targets: ≤ 1.5, ≤ 1.3, ≥ 0.7. Use a database of its own: the
filler stays (drop the database after).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

SLUG = "bench-portal"  # bench/portal.py's merchant: the filler is its history


def run_bench(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=3600)
    line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith("{")), None)
    if out.returncode or line is None:
        raise SystemExit(f"{script} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(line)


def fill(target: int) -> dict:
    """Bring the merchant's history to ``target`` tickets (one line each) in SQL; returns what it took."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tickets.models import Branch, Merchant, Ticket, TicketLine

    call_command("migrate", verbosity=0)
    merchant, _ = Merchant.objects.get_or_create(slug=SLUG, defaults={
        "legal_name": "BENCH", "rfc": "EKU9003173C9", "self_invoice_window": "days", "self_invoice_days": 3650})
    branch, _ = Branch.objects.get_or_create(merchant=merchant, code="B1",
                                             defaults={"name": "Bench", "postal_code": "06600"})
    have = Ticket.objects.filter(merchant=merchant, number__startswith="H").count()
    started = time.perf_counter()
    if have < target:
        t, ln = Ticket._meta.db_table, TicketLine._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"""
                INSERT INTO {t} (merchant_id, branch_id, number, sold_at, currency, payment_form, subtotal, discount,
                                 tax_total, withheld_total, total, public_code, expires_at, status, source,
                                 fingerprint, created_at, updated_at)
                SELECT %s, %s, 'H' || i, s, 'MXN', '01', 100.00, 0, 16.00, 0, 116.00,
                       substr(md5('growth' || i), 1, 20), s + interval '30 days',
                       CASE WHEN i %% 10 < 7 THEN 'globalized' WHEN i %% 10 < 9 THEN 'invoiced' ELSE 'open' END,
                       'batch', md5(i::text), now(), now()
                FROM generate_series(%s, %s) AS i,
                     LATERAL (SELECT now() - interval '1 day' - (i %% 400) * interval '1 day'
                                     - (i %% 86400) * interval '1 second' AS s) AS sold""",
                           [merchant.pk, branch.pk, have + 1, target])
            cursor.execute(f"""
                INSERT INTO {ln} (ticket_id, position, product_code, unit_code, sku, description, quantity,
                                  unit_price, prices_include_tax, discount, tax_object, taxes, amount)
                SELECT id, 1, '50202306', 'H87', '', 'REFRESCO', 1, 116.00, true, 0, '02',
                       '[{{"tax": "002", "factor": "Tasa", "rate": "0.160000"}}]', 116.00
                FROM {t} WHERE merchant_id = %s AND number LIKE 'H%%' AND id > %s""",
                           [merchant.pk, _max_line_ticket(cursor, ln, t, merchant.pk)])
            cursor.execute(f"VACUUM ANALYZE {t}")
            cursor.execute(f"VACUUM ANALYZE {ln}")
    rows = Ticket.objects.count()
    connection.close()
    return {"tickets": rows, "fill_seconds": round(time.perf_counter() - started, 1)}


def _max_line_ticket(cursor, lines_table: str, tickets_table: str, merchant_id: int) -> int:
    cursor.execute(f"SELECT coalesce(max(l.ticket_id), 0) FROM {lines_table} l JOIN {tickets_table} t "
                   f"ON t.id = l.ticket_id WHERE t.merchant_id = %s AND t.number LIKE 'H%%'", [merchant_id])
    return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument("--global-small", type=int, default=10_000)
    parser.add_argument("--global-large", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=150)
    parser.add_argument("--ingest-batches", default="10")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/growth.py measures PostgreSQL: set DATABASE_URL to a database of its own")
    fill(0)  # migrations and the merchant, before anything is timed
    ingest_empty = run_bench("ingest.py", "--batches", args.ingest_batches)
    small = fill(args.small)
    lookup_small = run_bench("portal.py", "--rate", str(args.rate))
    global_small = run_bench("global_invoice.py", "--tickets", str(args.global_small))
    large = fill(args.large)
    lookup_large = run_bench("portal.py", "--rate", str(args.rate))
    global_large = run_bench("global_invoice.py", "--tickets", str(args.global_large))
    ingest_large = run_bench("ingest.py", "--batches", args.ingest_batches)

    per_ticket_small = global_small["global_10k_seconds"] / global_small["tickets"]
    per_ticket_large = global_large["global_10k_seconds"] / global_large["tickets"]
    print(json.dumps({
        "small_tickets": small["tickets"], "large_tickets": large["tickets"],
        "fill_seconds": small["fill_seconds"] + large["fill_seconds"],
        "lookup_rate": args.rate,
        "lookup_p99_small_ms": lookup_small["open_loop_p99_ms"], "lookup_p99_large_ms": lookup_large["open_loop_p99_ms"],
        "lookup_p99_ratio": round(lookup_large["open_loop_p99_ms"] / lookup_small["open_loop_p99_ms"], 3),
        "lookup_errors": lookup_small["open_loop_errors"] + lookup_large["open_loop_errors"],
        "global_small_tickets": global_small["tickets"], "global_small_seconds": global_small["global_10k_seconds"],
        "global_large_tickets": global_large["tickets"], "global_large_seconds": global_large["global_10k_seconds"],
        "global_per_ticket_small_ms": round(per_ticket_small * 1000, 4),
        "global_per_ticket_large_ms": round(per_ticket_large * 1000, 4),
        "global_per_ticket_ratio": round(per_ticket_large / per_ticket_small, 3),
        "ingest_empty_tickets_per_s": ingest_empty["tickets_per_s"],
        "ingest_large_tickets_per_s": ingest_large["tickets_per_s"],
        "ingest_ratio": round(ingest_large["tickets_per_s"] / ingest_empty["tickets_per_s"], 3),
    }))


if __name__ == "__main__":
    main()
