"""Gap-free folios per (merchant, serie).

The counter row is locked (SELECT … FOR UPDATE) inside the transaction that creates the invoice, so a
rolled-back invoice gives its folio back and concurrent issuers queue on the row instead of colliding.
The unique constraint on Invoice(merchant, serie, folio) is the backstop.
"""

from django.db import IntegrityError, transaction
from django.db.models import F

from invoicing.models import FolioCounter


def folio_next(*, merchant_id: int, serie: str) -> int:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("folio_next must run inside the transaction that stores the invoice")
    counter = FolioCounter.objects.select_for_update().filter(merchant_id=merchant_id, serie=serie).first()
    if counter is None:
        try:
            with transaction.atomic():
                counter = FolioCounter.objects.create(merchant_id=merchant_id, serie=serie, next_folio=1)
        except IntegrityError:
            pass  # another transaction created it first; lock theirs
        counter = FolioCounter.objects.select_for_update().get(merchant_id=merchant_id, serie=serie)
    folio = counter.next_folio
    FolioCounter.objects.filter(pk=counter.pk).update(next_folio=F("next_folio") + 1)
    return folio
