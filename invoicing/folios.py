"""Gap-free folios per (merchant, serie).

The counter row is locked (by its UPDATE) inside the transaction that creates the invoice, so a rolled-back
invoice gives its folio back and concurrent issuers queue on the row instead of colliding. The unique
constraint on Invoice(merchant, serie, folio) is the backstop.

Every issuer of a serie waits on that one row until the holder commits, so the lock is best taken last: a
shopper's invoice takes its folio in the statement that ends its transaction (services/issue_write.py).
"""

from django.db import IntegrityError, connection, transaction

from invoicing.models import FolioCounter


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

