"""Which database the code runs on: the one place that reads ``connection.vendor`` (tests/test_architecture.py).

PostgreSQL gets fast paths (COPY, prepared statements, one-statement writes); every other database takes the
ORM path, which is the reference each fast path is tested against (they must write the same rows). The fast
paths live in infra/db/ when they are generic (bulk.py, prepared.py) and next to their ORM twin in the app
that owns the tables otherwise; either way they ask here.
"""

from __future__ import annotations

from django.db import connections

POSTGRESQL = "postgresql"


def is_postgresql(using: str = "default") -> bool:
    return connections[using].vendor == POSTGRESQL
