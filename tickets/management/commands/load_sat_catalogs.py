"""Load SAT's catalogs into our tables: postal codes, product keys, unit keys (from the pinned satcfdi package)
and c_TasaOCuota (from the engine's copy of SAT's current catalog).

Idempotent: each catalog is replaced in one transaction (delete + bulk insert; COPY on PostgreSQL), so
running it twice leaves the same rows, and a newer satcfdi pin refreshes them.

Without a release: ``--file`` takes a newer source instead. For postal_codes, product_keys and unit_keys a
satcfdi ``catalogs.db`` (from a newer satcfdi wheel); for tax_rates SAT's c_TasaOCuota as published by
phpcfdi/resources-sat-catalogs (``cfdi_40_reglas_tasa_cuota.sql``) or a CSV with the same columns
(tipo, minimo, valor, impuesto, factor, traslado, retencion, vigencia_desde, vigencia_hasta).
"""

from __future__ import annotations

import csv
import datetime as dt
import pickle
import re
import sqlite3
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from infra.db.vendor import is_postgresql
from invoicing.cfdi.resources import catalogs_db_path
from tickets.catalogs import (
    PostalCode,
    ProductKey,
    TaxRateRule,
    UnitKey,
    iana_time_zone,
    tax_rate_catalog_clear,
)

CATALOGS = {
    "postal_codes": ("C756_c_CodigoPostal", PostalCode),
    "product_keys": ("C756_c_ClaveProdServ", ProductKey),
    "unit_keys": ("C756_c_ClaveUnidad", UnitKey),
    "tax_rates": (None, TaxRateRule),
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
        parser.add_argument(
            "--file",
            default="",
            help="Fuente más nueva que la del paquete: un catalogs.db de satcfdi (postal_codes, product_keys, "
                 "unit_keys) o, con --only tax_rates, el c_TasaOCuota del SAT en .sql (phpcfdi) o .csv.",
        )

    def handle(self, *args, only: str = "", file: str = "", **options):
        names = [n.strip() for n in only.split(",") if n.strip()] or list(CATALOGS)
        unknown = [n for n in names if n not in CATALOGS]
        if unknown:
            raise CommandError(f"Catálogo desconocido: {', '.join(unknown)}. Opciones: {', '.join(CATALOGS)}.")
        given = Path(file) if file else None
        if given is not None and not given.is_file():
            raise CommandError(f"No existe el archivo {given}.")
        if "tax_rates" in names:
            started = time.monotonic()
            rows = tax_rate_rows(given if given is not None and names == ["tax_rates"] else None)
            _replace_tax_rates(rows)
            tax_rate_catalog_clear()
            self.stdout.write(f"tax_rates: {len(rows)} filas en {time.monotonic() - started:.1f} s")
            names = [n for n in names if n != "tax_rates"]
        if not names:
            return
        path = given or catalogs_db_path()
        if not path.is_file():
            raise CommandError(f"No se encontró {path}: reinstala el paquete satcfdi.")
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for name in names:
                table, model = CATALOGS[name]
                started = time.monotonic()
                try:
                    rows = [_BUILDERS[name](k, v) for k, v in _rows(source, table)]
                except sqlite3.DatabaseError as exc:
                    raise CommandError(f"{path} no es un catalogs.db de satcfdi con {table}: {exc}") from exc
                if not rows:
                    raise CommandError(f"{path} no trae filas de {table}; no se reemplaza el catálogo.")
                _replace(model, rows)
                self.stdout.write(f"{name}: {len(rows)} filas en {time.monotonic() - started:.1f} s")
        finally:
            source.close()
        from tickets.zones import cache_clear

        cache_clear()


_TAX_NAMES = {"ISR": "001", "IVA": "002", "IEPS": "003"}
_SQL_ROW = re.compile(r"VALUES\s*\((.*)\);\s*$", re.IGNORECASE)


def _impuesto(text: str) -> str:
    text = text.strip()
    if text in _TAX_NAMES.values():
        return text
    for name, code in _TAX_NAMES.items():
        # SAT names the border rate «IVA Crédito aplicado del 50%»: still IVA.
        if text.upper().startswith(name):
            return code
    raise CommandError(f"Impuesto desconocido en c_TasaOCuota: «{text}».")


def _sql_values(line: str) -> list[str] | None:
    match = _SQL_ROW.search(line)
    if match is None:
        return None
    return next(csv.reader([match.group(1)], quotechar="'", skipinitialspace=True))


def _date(text: str) -> dt.date | None:
    text = (text or "").strip()
    return dt.date.fromisoformat(text) if text else None


def tax_rate_rows(path: Path | None) -> list[tuple]:
    """c_TasaOCuota rows for TaxRateRule: from ``path`` (SAT's table as SQL or CSV) or the engine's copy."""
    if path is None:
        from invoicing.cfdi.catalogs import SAT_TASAS_O_CUOTAS

        return [(None, "rango" if r.minimo is not None else "fijo", r.impuesto, r.factor, r.minimo, r.valor,
                 r.traslado, r.retencion, None, None) for r in SAT_TASAS_O_CUOTAS.rules]
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        records = list(csv.reader(text.splitlines()))
        if records and not re.match(r"^\s*(Fijo|Rango)\s*$", records[0][0], re.IGNORECASE):
            records = records[1:]  # header
    else:
        records = [v for v in map(_sql_values, text.splitlines()) if v is not None]
    rows = []
    for i, rec in enumerate(records, 1):
        if len(rec) < 9:
            raise CommandError(f"Fila {i} de {path.name}: se esperaban 9 columnas y trae {len(rec)}.")
        kind, minimum, value, tax, factor, transfer, withholding, since, until = (c.strip() for c in rec[:9])
        try:
            rows.append((None, "rango" if kind.lower() == "rango" else "fijo", _impuesto(tax), factor,
                         Decimal(minimum) if kind.lower() == "rango" else None, Decimal(value),
                         transfer in ("1", "true", "True"), withholding in ("1", "true", "True"),
                         _date(since), _date(until)))
        except (InvalidOperation, ValueError) as exc:
            raise CommandError(f"Fila {i} de {path.name}: {exc}") from exc
    if not rows:
        raise CommandError(f"{path} no trae filas de c_TasaOCuota.")
    return rows


@transaction.atomic
def _replace_tax_rates(rows: list[tuple]) -> None:
    fields = ["kind", "tax", "factor", "minimum", "value", "transfer", "withholding", "valid_from", "valid_to"]
    TaxRateRule.objects.all().delete()
    TaxRateRule.objects.bulk_create(TaxRateRule(**dict(zip(fields, row[1:], strict=True))) for row in rows)


@transaction.atomic
def _replace(model, rows: list[tuple]) -> None:
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = ", ".join(qn(f.column) for f in model._meta.concrete_fields)
    model.objects.all().delete()
    with connection.cursor() as cursor:
        if is_postgresql():
            # COPY is several times faster than INSERT for the 95k postal codes.
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            # executemany skips the ORM's per-object work (bulk_create takes ~6 s for the postal codes).
            marks = ", ".join(["%s"] * len(model._meta.concrete_fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608
