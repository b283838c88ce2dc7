"""Write many rows at once.

``bulk_insert``: COPY on PostgreSQL (no model instances, no per-row SQL), bulk_create elsewhere. For rows nobody
reads back in the same request: the links and event rows of a 10,000-ticket global invoice, say. Values are
plain Python (str, int, Decimal, aware datetime, JSON already dumped to a string).

``insert_sql``: one row's INSERT as text, for a statement that writes several tables at once.

``bulk_update_fields``: one prepared UPDATE executed for every object (psycopg pipelines them). Django's
bulk_update builds a CASE WHEN per field and row, and resolving those expressions cost more CPU than sealing
the documents of a stamping batch.
"""

import functools
from collections.abc import Iterable, Sequence

from django.db import connection, models

from infra.db.prepared import prepared_executemany
from infra.db.vendor import is_postgresql


def bulk_insert(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    if not is_postgresql():
        model.objects.bulk_create((model(**dict(zip(columns, row, strict=True))) for row in rows), batch_size=2000)
        return
    by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
    quoted = ", ".join(connection.ops.quote_name(by_attname[c]) for c in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def bulk_update_fields(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Save ``fields`` of every object (by primary key). Callers hold the rows' locks and know their status."""
    if not objs:
        return
    meta = type(objs[0])._meta
    qn = connection.ops.quote_name
    targets = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{qn(field.column)} = %s" for field in targets)
    sql = f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {qn(meta.pk.column)} = %s"  # noqa: S608
    params = [[field.get_db_prep_save(getattr(obj, field.attname), connection) for field in targets] + [obj.pk]
              for obj in objs]
    prepared_executemany(sql, params)


def insert_sql(obj: models.Model, *, sql_values: dict[str, str] | None = None,
               select_from: str | None = None) -> tuple[str, list]:
    """``INSERT INTO … (…) VALUES (…)`` for one unsaved object, to embed in a larger statement (a data-modifying
    CTE); the caller adds RETURNING. Defaults and ``auto_now`` apply as in ``save()``. ``sql_values`` gives some
    columns an SQL expression (without parameters) instead of the object's value. With ``select_from``, the row
    is ``SELECT … FROM select_from`` instead, so it is inserted once per row of that relation (none if empty);
    its parameters carry their column's type, as a SELECT list does not take it from the target."""
    sql, fields = _insert_template(type(obj), tuple(sorted((sql_values or {}).items())), select_from,
                                   connection.alias)
    return sql, [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]


@functools.lru_cache(maxsize=64)
def _insert_template(model: type[models.Model], sql_values: tuple[tuple[str, str], ...], select_from: str | None,
                     alias: str) -> tuple[str, list]:
    """The statement's text and the fields its parameters come from: built once (db_type() is not cheap)."""
    meta, expressions = model._meta, dict(sql_values)
    qn = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
    columns = ", ".join(qn(f.column) for f in fields)
    placeholder = (lambda f: f"%s::{f.cast_db_type(connection)}") if select_from else (lambda f: "%s")
    values = ", ".join(expressions.get(f.attname) or placeholder(f) for f in fields)
    table = qn(meta.db_table)
    params_from = [f for f in fields if f.attname not in expressions]
    if select_from:
        return f"INSERT INTO {table} ({columns}) SELECT {values} FROM {select_from}", params_from  # noqa: S608
    return f"INSERT INTO {table} ({columns}) VALUES ({values})", params_from  # noqa: S608

