"""A rejection for the receptor's data on the shopper's page: which field to check ("como aparece en tu
Constancia"), the fix on the same page, the same invoice and folio stamped; the merchant's contact on failures."""

from decimal import Decimal

import pytest
from django.core.cache import cache

from invoicing.models import Invoice
from invoicing.services.issue import ReceptorData, invoice_issue

WRONG_CP = ReceptorData(rfc="URE180429TM6", name="UNIVERSIDAD ROBOTICA ESPAÑOLA", tax_regime="601",
                        postal_code="64000", cfdi_use="G03", emails=("compras@ure.example",))
FORM = {"rfc": "URE180429TM6", "name": "UNIVERSIDAD ROBOTICA ESPAÑOLA", "tax_regime": "601", "postal_code": "65000",
        "cfdi_use": "G03", "emails": "compras@ure.example"}


@pytest.fixture(autouse=True)
def _clean_cache(settings):
    cache.clear()
    settings.INVOICE_STAMP_LINGER_MS = 0


def drain():
    from invoicing.services.stamping import invoices_stamp_queued

    invoices_stamp_queued(budget_seconds=30)


@pytest.fixture
def rejected(merchant, branch, certificate, make_ticket):
    merchant.customer_email, merchant.customer_phone = "ayuda@kemper.example", "55 1234 5678"
    merchant.save()
    ticket = make_ticket(branch, number="R1", total=Decimal("116.00"))
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=WRONG_CP)
    drain()
    invoice.refresh_from_db()
    assert invoice.last_error_code == "CFDI40147"
    return invoice


def test_the_page_says_which_field_to_check_and_fixes_it_in_place(client, merchant, rejected):
    url = f"/{merchant.slug}/factura/{rejected.public_code}/"
    html = client.get(url).content.decode()
    assert "No pudimos generar tu factura" in html and "El SAT no reconoce ese código postal para tu RFC" in html
    assert "como aparece en tu Constancia" in html and f"folio {rejected.serie}-{rejected.folio}" in html
    # The refused field is marked, linked from the summary, and holds what was sent.
    assert 'id="id_postal_code-error"' in html and 'href="#id_postal_code"' in html and 'value="64000"' in html
    assert 'aria-invalid="true"' in html
    assert "ayuda@kemper.example" in html and 'href="tel:5512345678"' in html  # the merchant's contact

    response = client.post(f"{url}reintentar", FORM)
    assert response.status_code == 302 and response.url == url
    page = client.get(url).content.decode()
    assert "volvimos a enviar tu factura a timbrar, con el mismo folio" in page and "Estamos generando" in page
    drain()
    invoice = Invoice.objects.get(pk=rejected.pk)
    assert invoice.status == "stamped" and invoice.folio == rejected.folio and invoice.receptor_postal_code == "65000"
    assert "¡Tu factura está lista!" in client.get(url).content.decode()


def test_the_same_data_or_invalid_data_answer_on_the_same_page(client, merchant, rejected):
    url = f"/{merchant.slug}/factura/{rejected.public_code}/reintentar"
    same = client.post(url, {**FORM, "postal_code": "64000"})
    assert same.status_code == 400 and "Son los mismos datos que el SAT rechazó" in same.content.decode()
    bad = client.post(url, {**FORM, "postal_code": "12"})
    assert bad.status_code == 400 and 'id="id_postal_code-error"' in bad.content.decode()
    assert Invoice.objects.get(pk=rejected.pk).status == "failed"


def test_retries_are_rate_limited_and_scoped_to_the_merchant(client, merchant, other_merchant, rejected, settings):
    assert client.post(f"/{other_merchant.slug}/factura/{rejected.public_code}/reintentar", FORM).status_code == 404
    settings.PORTAL_RATE_LIMITS = {"correction_ip": (1, 600)}
    url = f"/{merchant.slug}/factura/{rejected.public_code}/reintentar"
    client.post(url, {**FORM, "postal_code": "64000"})
    assert client.post(url, FORM).status_code == 429
    assert Invoice.objects.get(pk=rejected.pk).status == "failed"


def test_a_failure_the_shopper_cannot_fix_shows_the_merchants_contact(client, merchant, rejected):
    Invoice.objects.filter(pk=rejected.pk).update(last_error_code="sin_csd",
                                                  last_error_message="El comercio no tiene un CSD activo.")
    html = client.get(f"/{merchant.slug}/factura/{rejected.public_code}/").content.decode()
    assert "reintentar" not in html and "El problema no parece estar en tus datos" in html
    assert "Comunícate con ESCUELA KEMPER URGATE" in html and "ayuda@kemper.example" in html
