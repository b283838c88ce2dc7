"""Two cancellations of one invoice at the same moment make one cancellation (PostgreSQL row locks)."""


import pytest
from django.db import connection

from infra.models import Event
from invoicing.errors import InvoicingError
from invoicing.models import Cancellation, Invoice
from invoicing.services.cancel import cancellation_request
from invoicing.services.reissue import invoice_reissue

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks")]



@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(4))
def test_two_cancels_of_one_invoice_at_once_make_one_cancellation(run_together, stamped, merchant, round_):
    assert connection.vendor == "postgresql"
    invoice = stamped("116.00")
    results, errors = run_together([
        lambda: cancellation_request(merchant=merchant, invoice_id=invoice.pk, motive="02"),
        lambda: cancellation_request(merchant=merchant, invoice_id=invoice.pk, motive="03"),
        lambda: invoice_reissue(merchant=merchant, invoice_id=invoice.pk,
                                changes={"rfc": "XIQB891116QE4", "name": "BERENICE XIMO QUEZADA",
                                         "postal_code": "26015"}),
    ])
    assert Cancellation.objects.filter(invoice=invoice).count() == 1
    assert len(errors) == 2 and all(isinstance(e, InvoicingError) for e in errors)
    assert {e.code for e in errors} == {"cancellation_in_progress"}
    winner = Cancellation.objects.get(invoice=invoice)
    moves = Event.objects.filter(entity="invoice", object_id=invoice.pk, to_status="cancelling").count()
    assert moves == (0 if winner.status == "waiting" else 1)
    assert Invoice.objects.filter(kind="ingreso").count() == (2 if winner.status == "waiting" else 1)
