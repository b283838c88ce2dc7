"""Gap-free folios per (merchant, serie).

The counter row is locked (by its UPDATE) inside the transaction that creates the invoice, so a rolled-back
invoice gives its folio back and concurrent issuers queue on the row instead of colliding. The unique
constraint on Invoice(merchant, serie, folio) is the backstop.

Every issuer of a serie waits on that one row until the holder commits, so the lock is best taken last:
``folio_assign`` numbers an invoice already inserted as the transaction's final statement.
"""

from django.db import IntegrityError, connection, transaction

from invoicing.models import FolioCounter, Invoice


def folio_next(*, merchant_id: int, serie: str) -> int:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("folio_next must run inside the transaction that stores the invoice")
    table = FolioCounter._meta.db_table
    # One round trip: the UPDATE takes the row lock and hands back the folio it consumed.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_folio = next_folio + 1 WHERE merchant_id = %s AND serie = %s "  # noqa: S608
            "RETURNING next_folio - 1",
            [merchant_id, serie],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    try:
        with transaction.atomic():
            FolioCounter.objects.create(merchant_id=merchant_id, serie=serie, next_folio=2)
        return 1
    except IntegrityError:
        return folio_next(merchant_id=merchant_id, serie=serie)  # another transaction created it first


def folio_assign(*, invoice_id: int, merchant_id: int, serie: str) -> int:
    """Give the (already inserted) invoice the next folio; call it last, just before the commit."""
    if connection.vendor != "postgresql":
        folio = folio_next(merchant_id=merchant_id, serie=serie)
        Invoice.objects.filter(pk=invoice_id).update(folio=folio)
        return folio
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("folio_assign must run inside the transaction that stores the invoice")
    counters, invoices = FolioCounter._meta.db_table, Invoice._meta.db_table
    with connection.cursor() as cursor:
        # One round trip: take the counter's lock, consume a folio, write it on the invoice.
        cursor.execute(
            f"WITH f AS (UPDATE {counters} SET next_folio = next_folio + 1 "  # noqa: S608
            "WHERE merchant_id = %s AND serie = %s RETURNING next_folio - 1 AS folio) "
            f"UPDATE {invoices} SET folio = f.folio FROM f WHERE {invoices}.id = %s RETURNING f.folio",
            [merchant_id, serie, invoice_id],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    folio = folio_next(merchant_id=merchant_id, serie=serie)  # the serie's first folio: creates the counter
    Invoice.objects.filter(pk=invoice_id).update(folio=folio)
    return folio
