"""The stamping pipeline's counters (invoicing/models_metrics.py): written by the stamping transaction, read by
/metrics (portal/metrics.py).

- ``stamp_latency_seconds`` (histogram, by kind): from the invoice's creation to its stamp being stored: what a
  shopper waits, queue and retries included;
- ``pac_errors_total`` (by PAC and error code): every refusal or failure a PAC answered, transient or permanent.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from invoicing.models_metrics import SHARDS, MetricCounter

log = logging.getLogger(__name__)

# Seconds. A sandbox stamp takes ~0.1-1 s from "Facturar"; a PAC outage's retries take minutes to hours.
STAMP_LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
STAMP_LATENCY = "stamp_latency_seconds"
PAC_ERRORS = "pac_errors_total"


def labels_key(**labels: str) -> str:
    return json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))


def labels_of(key: str) -> dict[str, str]:
    return dict(json.loads(key)) if key else {}


def _bucket(seconds: float) -> str:
    return next((repr(le) for le in STAMP_LATENCY_BUCKETS if seconds <= le), "+Inf")


def stamping_record(*, pac: str, stamped: Iterable, errors: Iterable[str]) -> None:
    """Count a batch's outcomes: ``stamped`` invoices (with ``kind`` and ``created_at``), ``errors`` the codes
    the PAC answered. Inside the stamping transaction; a failure here is logged and never undoes the stamps."""
    now = timezone.now()
    increments: Counter = Counter()
    for invoice in stamped:
        seconds = max((now - invoice.created_at).total_seconds(), 0.0)
        kind = str(invoice.kind)
        increments[(f"{STAMP_LATENCY}_bucket", labels_key(kind=kind, le=_bucket(seconds)))] += 1
        increments[(f"{STAMP_LATENCY}_sum", labels_key(kind=kind))] += seconds
        increments[(f"{STAMP_LATENCY}_count", labels_key(kind=kind))] += 1
    for code in errors:
        increments[(PAC_ERRORS, labels_key(pac=pac, code=str(code)[:40]))] += 1
    if not increments:
        return
    table = MetricCounter._meta.db_table
    shard = os.getpid() % SHARDS
    # Sorted: two transactions touching the same rows take their locks in one order (no deadlock).
    rows = [(name, labels, shard, value) for (name, labels), value in sorted(increments.items())]
    sql = (f"INSERT INTO {table} (name, labels, shard, value) VALUES (%s, %s, %s, %s) "  # noqa: S608
           f"ON CONFLICT (name, labels, shard) DO UPDATE SET value = {table}.value + excluded.value")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    except Exception:  # noqa: BLE001 - a lost count must not cost a stamp
        log.exception("stamping metrics not recorded")


def counter_totals() -> dict[tuple[str, str], float]:
    """(name, labels) → the sum over shards."""
    from django.db.models import Sum

    return {(row["name"], row["labels"]): row["total"] or 0.0
            for row in MetricCounter.objects.values("name", "labels").annotate(total=Sum("value")).order_by()}
