"""A rejection for the receptor's data (CFDI40147 from the sandbox's registry), corrected by the receptor: the same
invoice, with its folio, goes back to the queue and is stamped (invoicing/services/receptor_retry.py)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from infra.models import Event
from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services.issue import ReceptorData, invoice_issue
from invoicing.services.receptor_retry import MAX_RETRIES, invoice_receptor_retry, receptor_retry_blocker
from tickets.models import Ticket

WRONG_CP = ReceptorData(rfc="URE180429TM6", name="UNIVERSIDAD ROBOTICA ESPAÑOLA", tax_regime="601",
                        postal_code="64000", cfdi_use="G03", emails=("compras@ure.example",))
RIGHT = ReceptorData(rfc="URE180429TM6", name="UNIVERSIDAD ROBOTICA ESPAÑOLA", tax_regime="601",
                     postal_code="65000", cfdi_use="G03", emails=("compras@ure.example",))


@pytest.fixture
def drain(settings):
    from invoicing.services.stamping import invoices_stamp_queued

    settings.INVOICE_STAMP_LINGER_MS = 0
    return lambda: invoices_stamp_queued(budget_seconds=30)


@pytest.fixture
def rejected(merchant, branch, certificate, make_ticket, drain):
    ticket = make_ticket(branch, number="R1", total=Decimal("116.00"))
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=WRONG_CP)
    drain()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.last_error_code) == ("failed", "CFDI40147")
    assert Ticket.objects.get(pk=ticket.pk).status == "open"  # released, as for any rejection
    return invoice


def test_the_corrected_receptor_gets_the_same_invoice_and_folio_stamped(merchant, rejected, drain):
    folio, serie, code = rejected.folio, rejected.serie, rejected.public_code
    assert receptor_retry_blocker(rejected) == ""
    invoice_receptor_retry(merchant=merchant, invoice_id=rejected.pk, receptor=RIGHT, actor="portal")
    invoice = Invoice.objects.get(pk=rejected.pk)
    assert (invoice.status, invoice.receptor_postal_code, invoice.last_error_code) == ("pending", "65000", "")
    assert invoice.tickets.get().status == "invoiced"
    event = Event.objects.filter(entity="invoice", object_id=invoice.pk, from_status="failed").get()
    assert (event.to_status, event.actor, event.data["rejected"]) == ("pending", "portal", "CFDI40147")
    assert event.data["before"]["postal_code"] == "64000" and event.data["after"]["postal_code"] == "65000"

    drain()
    invoice.refresh_from_db()
    assert invoice.status == "stamped" and (invoice.serie, invoice.folio, invoice.public_code) == (serie, folio, code)
    xml = bytes(invoice.stamped_xml).decode()
    assert 'DomicilioFiscalReceptor="65000"' in xml and f'Folio="{folio}"' in xml
    assert Invoice.objects.count() == 1  # no second invoice for the sale


def test_the_same_data_again_is_refused_with_what_to_do(merchant, rejected):
    with pytest.raises(InvoicingError) as exc:
        invoice_receptor_retry(merchant=merchant, invoice_id=rejected.pk, receptor=WRONG_CP)
    assert exc.value.code == "receptor_unchanged" and "Constancia" in exc.value.message
    assert exc.value.details == {"field": "postal_code"}
    assert Invoice.objects.get(pk=rejected.pk).status == "failed"


def test_a_ticket_invoiced_meanwhile_stops_the_retry_and_nothing_moves(merchant, rejected, branch, make_ticket):
    ticket = rejected.tickets.get()
    other = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=RIGHT)  # the shopper started over
    with pytest.raises(InvoicingError) as exc:
        invoice_receptor_retry(merchant=merchant, invoice_id=rejected.pk, receptor=RIGHT)
    assert exc.value.code == "ticket_already_invoiced" and exc.value.status == 409
    assert Invoice.objects.get(pk=rejected.pk).status == "failed"
    assert Ticket.objects.get(pk=ticket.pk).status == "invoiced" and other.status == "pending"


def test_a_ticket_whose_window_closed_stops_the_retry(merchant, rejected):
    Ticket.objects.filter(invoice_links__invoice=rejected).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    with pytest.raises(InvoicingError) as exc:
        invoice_receptor_retry(merchant=merchant, invoice_id=rejected.pk, receptor=RIGHT)
    assert exc.value.code == "ticket_expired"
    assert Invoice.objects.get(pk=rejected.pk).status == "failed" and rejected.tickets.get().status == "open"


def test_only_rejections_for_the_receptors_data_and_a_few_times(merchant, other_merchant, rejected):
    Invoice.objects.filter(pk=rejected.pk).update(last_error_code="sin_csd")
    rejected.refresh_from_db()
    assert "no se debe a tus datos" in receptor_retry_blocker(rejected)
    with pytest.raises(InvoicingError) as exc:
        invoice_receptor_retry(merchant=merchant, invoice_id=rejected.pk, receptor=RIGHT)
    assert exc.value.code == "retry_not_possible"
    Invoice.objects.filter(pk=rejected.pk).update(last_error_code="CFDI40147")
    rejected.refresh_from_db()
    for _ in range(MAX_RETRIES):
        Event.objects.create(merchant=merchant, entity="invoice", object_id=rejected.pk, from_status="failed",
                             to_status="pending")
    assert "varias veces" in receptor_retry_blocker(rejected)
    # Another merchant's invoice is not found, whatever its state.
    with pytest.raises(InvoicingError) as exc:
        invoice_receptor_retry(merchant=other_merchant, invoice_id=rejected.pk, receptor=RIGHT)
    assert exc.value.status == 404
