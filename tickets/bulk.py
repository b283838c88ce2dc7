"""Insert many rows at once: COPY on PostgreSQL (no model instances, no per-row SQL), bulk_create elsewhere.

For rows nobody reads back in the same request: the links and event rows of a 10,000-ticket global invoice,
say. Values are plain Python (str, int, Decimal, aware datetime, JSON already dumped to a string).
"""

from collections.abc import Iterable, Sequence

from django.db import connection, models


def bulk_insert(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    if connection.vendor != "postgresql":
        model.objects.bulk_create((model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=2000)
        return
    by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
    quoted = ", ".join(connection.ops.quote_name(by_attname[c]) for c in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
