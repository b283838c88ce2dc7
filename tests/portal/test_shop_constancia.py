"""The Constancia as an optional first step: before the form, POST/redirect/GET after an upload, a choice when it
lists several regímenes, and never required (CFF art. 83 IX since 2026)."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from portal.shopper.csf import constancia_regimenes, parse_constancia

TWO_REGIMENES = """CONSTANCIA DE SITUACIÓN FISCAL
RFC: FUNK671228PH6
Nombre (s): KARLA
Primer Apellido: FUENTE Segundo Apellido: NOLASCO
Código Postal:01160 Tipo de Vialidad: CALLE
Regímenes:
Régimen Fecha Inicio Fecha Fin
Régimen de Sueldos y Salarios e Ingresos Asimilados a Salarios 01/01/2015
Régimen de Arrendamiento 01/03/2020
"""


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


@pytest.fixture
def in_cart(client, merchant, branch, make_ticket):
    ticket = make_ticket(branch, number="C-1", total=Decimal("116.00"))
    assert client.get(f"/t/{ticket.public_code}").status_code == 302
    return ticket


def _pdf(text: str) -> SimpleUploadedFile:
    from weasyprint import HTML

    return SimpleUploadedFile("csf.pdf", HTML(string="<pre>" + text + "</pre>").write_pdf(),
                              content_type="application/pdf")


def test_the_constancia_is_offered_first_and_optional(client, merchant, in_cart):
    html = client.get(f"/{merchant.slug}/datos/").content.decode()
    assert "¿Tienes tu Constancia? Súbela y llenamos el formulario" in html
    assert html.index('id="constancia"') < html.index('id="fiscal"')  # the first step, before the form
    assert "Es opcional" in html and 'href="#datos">Prefiero escribir mis datos' in html
    assert 'name="constancia"' in html and "required" not in html.split('id="constancia"')[1].split("</form>")[0]


def test_several_regimenes_ask_which_one_instead_of_taking_the_first(client, merchant, in_cart):
    assert constancia_regimenes(TWO_REGIMENES) == ["605", "606"]
    assert "tax_regime" not in parse_constancia(TWO_REGIMENES)
    response = client.post(f"/{merchant.slug}/datos/constancia/", {"constancia": _pdf(TWO_REGIMENES)})
    assert response.url == f"/{merchant.slug}/datos/constancia/regimen/"
    choice = client.get(response.url).content.decode()
    assert "Tu Constancia tiene varios regímenes" in choice
    assert 'value="605"' in choice and 'value="606"' in choice and "Arrendamiento" in choice
    assert client.post(response.url, {"tax_regime": "601"}).status_code == 400  # not one of hers
    chosen = client.post(response.url, {"tax_regime": "606"})
    assert chosen.url == f"/{merchant.slug}/datos/#fiscal"
    html = client.get(f"/{merchant.slug}/datos/").content.decode()
    assert 'value="606" selected' in html and 'value="FUNK671228PH6"' in html and "Llenamos el formulario" in html
    # Done: the choice page is not offered again for this upload.
    assert client.get(response.url).url == f"/{merchant.slug}/datos/"


def test_an_unreadable_file_comes_back_once_as_an_error_next_to_the_upload(client, merchant, in_cart):
    bad = SimpleUploadedFile("csf.pdf", b"hello", content_type="application/pdf")
    response = client.post(f"/{merchant.slug}/datos/constancia/", {"constancia": bad})
    assert response.url == f"/{merchant.slug}/datos/#constancia"
    html = client.get(f"/{merchant.slug}/datos/").content.decode()
    assert 'id="errores-constancia"' in html and "no es un PDF" in html
    assert "no es un PDF" not in client.get(f"/{merchant.slug}/datos/").content.decode()


def test_uploads_are_rate_limited_and_need_a_cart(client, merchant, in_cart, settings):
    settings.PORTAL_RATE_LIMITS = {"upload_ip": (1, 600)}
    client.post(f"/{merchant.slug}/datos/constancia/", {"constancia": _pdf(TWO_REGIMENES)})
    client.post(f"/{merchant.slug}/datos/constancia/", {"constancia": _pdf(TWO_REGIMENES)})
    assert "demasiados intentos" in client.get(f"/{merchant.slug}/datos/").content.decode()
    client.post(f"/{merchant.slug}/carrito/", {"ticket": in_cart.public_code})
    assert client.post(f"/{merchant.slug}/datos/constancia/", {}).url == f"/{merchant.slug}/"


def test_the_invoice_never_depends_on_it(client, merchant, in_cart):
    """Typed by hand, without any upload, the data go through to the confirmation."""
    response = client.post(f"/{merchant.slug}/datos/", {
        "rfc": "FUNK671228PH6", "name": "KARLA FUENTE NOLASCO", "tax_regime": "605", "postal_code": "01160",
        "cfdi_use": "S01", "emails": "karla@example.com"})
    assert response.status_code == 302 and response.url == f"/{merchant.slug}/confirmar/"


def test_another_merchants_upload_state_is_not_used(client, merchant, other_merchant, in_cart):
    client.post(f"/{merchant.slug}/datos/constancia/", {"constancia": _pdf(TWO_REGIMENES)})
    assert client.get(f"/{other_merchant.slug}/datos/constancia/regimen/").url == f"/{other_merchant.slug}/datos/"
