"""The progress page while the PAC is slow or away: after PORTAL_SLOW_STAMP_SECONDS it says what is happening and
that the invoice will be emailed to the (masked) address, with and without JavaScript."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from infra.models import Event
from invoicing.models import Invoice
from invoicing.services.issue import ReceptorData, invoice_issue

RECEPTOR = ReceptorData(rfc="XIQB891116QE4", name="KARLA FUENTE NOLASCO", tax_regime="605", postal_code="01160",
                        cfdi_use="S01", emails=("karla@example.com", "kathy@example.com"))


@pytest.fixture
def invoice(merchant, branch, make_ticket):
    ticket = make_ticket(branch, number="P1", total=Decimal("116.00"))
    return invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=RECEPTOR)


def age(invoice, seconds):
    Invoice.objects.filter(pk=invoice.pk).update(created_at=timezone.now() - dt.timedelta(seconds=seconds))


def urls(merchant, invoice):
    page = f"/{merchant.slug}/factura/{invoice.public_code}/"
    return page, page + "estado"


def test_the_first_seconds_only_a_spinner(client, merchant, invoice, settings):
    settings.PORTAL_SLOW_STAMP_SECONDS = 6
    page, status = urls(merchant, invoice)
    html = client.get(page).content.decode()
    assert "esto suele tardar unos segundos" in html
    assert '<div class="notice" id="lento" role="status" aria-live="polite" hidden>' in html
    assert client.get(status).json()["slow"] is False


def test_after_a_few_seconds_it_explains_and_promises_the_email(client, merchant, invoice, settings):
    settings.PORTAL_SLOW_STAMP_SECONDS = 6
    age(invoice, 7)
    page, status = urls(merchant, invoice)
    html = client.get(page).content.decode()
    assert 'id="lento" role="status" aria-live="polite">' in html  # shown, not hidden
    assert "Está tardando más de lo normal" in html and "Hay varias facturas en fila" in html
    # Two addresses sharing their first letters still read differently.
    assert "te la enviaremos a kar***@example.com, kat***@example.com" in html and "Puedes cerrar esta página" in html
    assert '<noscript><meta http-equiv="refresh"' in html  # without JavaScript the page reloads into the same text
    body = client.get(status).json()
    assert body["slow"] is True and body["done"] is False and "en fila" in body["message"]


def test_a_pac_that_does_not_answer_is_said_with_the_retry(client, merchant, invoice):
    Invoice.objects.filter(pk=invoice.pk).update(status="sealed", attempts=2, last_error_code="timeout",
                                                 last_error_message="El PAC no respondió.")
    body = client.get(urls(merchant, invoice)[1]).json()
    assert body["slow"] is True and "no está respondiendo" in body["message"] and "intento 2" in body["message"]


def test_a_corrected_invoice_counts_from_the_correction(client, merchant, invoice, settings):
    settings.PORTAL_SLOW_STAMP_SECONDS = 6
    age(invoice, 600)
    Event.objects.create(merchant=merchant, entity="invoice", object_id=invoice.pk, from_status="failed",
                         to_status="pending")
    assert client.get(urls(merchant, invoice)[1]).json()["slow"] is False


def test_a_late_request_on_hold_polls_and_says_the_global_goes_first(client, merchant, invoice):
    Invoice.objects.filter(pk=invoice.pk).update(status="on_hold")
    page, status = urls(merchant, invoice)
    html = client.get(page).content.decode()
    assert "progress.js" in html and "nota de crédito" in html  # not a dead end: it keeps polling
    body = client.get(status).json()
    assert body == {**body, "status": "on_hold", "done": False, "slow": True}
    assert "El ticket P1 ya está en la factura global" in body["message"]


def test_other_merchants_cannot_read_the_progress(client, other_merchant, invoice):
    assert client.get(f"/{other_merchant.slug}/factura/{invoice.public_code}/estado").status_code == 404
