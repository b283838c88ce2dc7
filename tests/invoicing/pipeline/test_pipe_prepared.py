"""Server-side prepared statements on and off (DB_PREPARED_STATEMENTS; off behind a PgBouncer older than 1.21 in
transaction mode, docs/operations.md): both give the same invoices, and off leaves nothing prepared on the server
connection, which a transaction pooler could hand to another client."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from infra.db.prepared import prepared_executemany, prepared_fetchall
from invoicing.models import Invoice
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoices_stamp_queued
from tickets.models import Ticket

ROOT = Path(__file__).resolve().parents[3]
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                   reason="prepared statements are PostgreSQL's (SQLite runs them as usual)")


@pytest.fixture(params=["prepared", "unprepared"])
def prepare_mode(request, db):
    """The connection as portal/settings.py opens it with DB_PREPARED_STATEMENTS on (psycopg's prepare_threshold 5)
    or off (None): the same attribute, set on the live connection (the test's transaction wraps it)."""
    connection.ensure_connection()
    raw = connection.connection
    saved = raw.prepare_threshold
    raw.prepare_threshold = 5 if request.param == "prepared" else None
    yield request.param
    raw.prepare_threshold = saved


def _prepared_on_server() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


@postgres_only
def test_prepared_helpers_answer_the_same_either_way(prepare_mode, merchant):
    rows = [prepared_fetchall("SELECT %s::int + 1, %s::text", [i, merchant.slug]) for i in range(8)]
    assert rows == [[(i + 1, "kemper")] for i in range(8)]
    returned = prepared_executemany("SELECT %s::int * 2", [(i,) for i in range(5)], returning=True)
    assert returned == [(i * 2,) for i in range(5)]
    assert (_prepared_on_server() > 0) is (prepare_mode == "prepared")


@postgres_only
def test_issuing_and_stamping_give_the_same_invoices_either_way(prepare_mode, settings, merchant, branch,
                                                                 certificate, make_ticket, receptor):
    """The issue statement, the queue's claim and the stamping updates all go through infra/db/prepared.py."""
    settings.INVOICE_STAMP_LINGER_MS = 0
    ids = [invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"P{i}").pk],
                         receptor=receptor).pk for i in range(3)]
    assert invoices_stamp_queued() == 3
    invoices = Invoice.objects.filter(pk__in=ids).order_by("pk")
    assert [(i.status, i.serie, i.folio, bool(i.uuid), i.total) for i in invoices] == [
        ("stamped", branch.invoice_serie, n, True, Ticket.objects.get(number=f"P{n - 1}").total) for n in (1, 2, 3)]
    assert set(Ticket.objects.filter(number__startswith="P").values_list("status", flat=True)) == {"invoiced"}
    assert (_prepared_on_server() > 0) is (prepare_mode == "prepared")


@pytest.mark.parametrize(("env", "threshold", "no_server_cursors"), [
    ({}, 5, False),
    ({"DB_PREPARED_STATEMENTS": "0"}, None, False),
    ({"DB_PREPARED_STATEMENTS": "0", "DB_SERVER_SIDE_CURSORS": "0"}, None, True),
])
def test_the_environment_sets_the_connection_options(tmp_path, env, threshold, no_server_cursors):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    clean.update({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "VAR_DIR": str(tmp_path), **env})
    code = ("import portal.settings as s; d = s.DATABASES['default']; "
            "print(d['OPTIONS']['prepare_threshold'], d['DISABLE_SERVER_SIDE_CURSORS'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == [str(threshold), str(no_server_cursors)]
