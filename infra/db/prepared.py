"""Statements PostgreSQL parses and plans once per connection.

Django's psycopg cursors bind parameters on the client: every execution is a new query text, parsed and
planned anew. For the few statements every invoice runs (the issue statement, the stamping updates, the queue's
wake-up) planning cost as much as executing, so they go through a psycopg cursor with server-side binding on
Django's connection (inside its transaction) and are prepared. Django does not log them. Elsewhere (SQLite)
Django's cursor runs them as usual.

Behind PgBouncer in transaction mode this needs PgBouncer ≥ 1.21 with ``max_prepared_statements`` set.
"""

from collections.abc import Iterable, Sequence

from django.db import connection

from infra.db.vendor import is_postgresql


def prepared_fetchall(sql: str, params: Sequence) -> list[tuple]:
    if not is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    import psycopg

    connection.ensure_connection()
    # Django's exceptions (IntegrityError…), as its own cursors raise them: callers catch those.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


def prepared_executemany(sql: str, params_seq: Iterable[Sequence], *, returning: bool = False) -> list[tuple]:
    """Run ``sql`` once per parameter set; with ``returning``, the rows each execution returned (PostgreSQL)."""
    if not is_postgresql():
        if returning:
            raise NotImplementedError("RETURNING rows of executemany need PostgreSQL")
        with connection.cursor() as cursor:
            cursor.executemany(sql, params_seq)
        return []
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.executemany(sql, params_seq, returning=returning)  # prepared once, pipelined
        rows = []
        if returning:
            while True:
                rows.extend(cursor.fetchall())
                if not cursor.nextset():
                    break
        return rows
