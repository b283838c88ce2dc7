"""Load SAT's big catalogs (postal codes, product keys, unit keys) from the pinned satcfdi package.

Idempotent: each catalog is replaced in one transaction (delete + bulk insert; COPY on PostgreSQL), so
running it twice leaves the same rows, and a newer satcfdi pin refreshes them.
"""

from __future__ import annotations

import pickle
import sqlite3
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from invoicing.cfdi.resources import catalogs_db_path
from tickets.catalogs import PostalCode, ProductKey, UnitKey, iana_time_zone

CATALOGS = {
    "postal_codes": ("C756_c_CodigoPostal", PostalCode),
    "product_keys": ("C756_c_ClaveProdServ", ProductKey),
    "unit_keys": ("C756_c_ClaveUnidad", UnitKey),
}


def _rows(source: sqlite3.Connection, table: str):
    # satcfdi stores pickled keys and values (its own format); the file ships inside the pinned package.
    for key, value in source.execute(f"SELECT key, value FROM {table}"):  # noqa: S608 - fixed table names
        yield pickle.loads(key), pickle.loads(value)  # noqa: S301 - trusted file from the pinned package


def _postal_code(code: str, value: list) -> tuple:
    state, municipality, locality, border, tz_name = (list(value) + [""] * 5)[:5]
    return (code, state, municipality, locality, border, tz_name, iana_time_zone(tz_name, state))


def _product_key(code: str, value) -> tuple:
    return (code, str(value)[:300])


def _unit_key(code: str, value) -> tuple:
    return (code, str(value)[:200])


_BUILDERS = {"postal_codes": _postal_code, "product_keys": _product_key, "unit_keys": _unit_key}


class Command(BaseCommand):
    help = "Carga los catálogos grandes del SAT (códigos postales, claves de producto y de unidad)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            default="",
            help="Catálogos a cargar, separados por comas: " + ", ".join(CATALOGS) + " (por omisión, todos).",
        )

    def handle(self, *args, only: str = "", **options):
        names = [n.strip() for n in only.split(",") if n.strip()] or list(CATALOGS)
        unknown = [n for n in names if n not in CATALOGS]
        if unknown:
            raise CommandError(f"Catálogo desconocido: {', '.join(unknown)}. Opciones: {', '.join(CATALOGS)}.")
        path = catalogs_db_path()
        if not path.is_file():
            raise CommandError(f"No se encontró {path}: reinstala el paquete satcfdi.")
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for name in names:
                table, model = CATALOGS[name]
                started = time.monotonic()
                rows = [_BUILDERS[name](k, v) for k, v in _rows(source, table)]
                _replace(model, rows)
                self.stdout.write(f"{name}: {len(rows)} filas en {time.monotonic() - started:.1f} s")
        finally:
            source.close()


@transaction.atomic
def _replace(model, rows: list[tuple]) -> None:
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = ", ".join(qn(f.column) for f in model._meta.concrete_fields)
    model.objects.all().delete()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY is several times faster than INSERT for the 95k postal codes.
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            # executemany skips the ORM's per-object work (bulk_create takes ~6 s for the postal codes).
            marks = ", ".join(["%s"] * len(model._meta.concrete_fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608
