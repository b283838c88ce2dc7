"""Fiscal data form rules (RFC, régimen/UsoCFDI matrix, postal code, name, emails), the Constancia reader,
"recordar mis datos" and the confirmation that issues the invoice."""

import json
from decimal import Decimal

import pytest
from django.core.cache import cache

from invoicing.cfdi.receptor import strip_regimen_capital
from invoicing.models import Invoice
from portal.forms import FiscalDataForm
from portal.shopper.csf import ConstanciaError, parse_constancia, read_constancia
from tickets.models import Ticket

VALID = {"rfc": "XIQB891116QE4", "name": "Karla Fuente Nolasco", "tax_regime": "605", "postal_code": "01160",
         "cfdi_use": "S01", "emails": "karla@example.com"}


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


@pytest.fixture
def in_cart(client, merchant, branch, make_ticket):
    ticket = make_ticket(branch, number="F-1", total=Decimal("116.00"))
    assert client.get(f"/t/{ticket.public_code}").status_code == 302
    return ticket


def form(**changes):
    f = FiscalDataForm(data={**VALID, **changes})
    f.is_valid()
    return f


def test_valid_data_is_normalised():
    f = form(rfc=" xiqb-891116-qe4 ", emails="Karla@Example.com, otro@example.com;otro@example.com")
    assert f.is_valid(), f.errors
    assert f.cleaned_data["rfc"] == "XIQB891116QE4"
    assert f.cleaned_data["name"] == "KARLA FUENTE NOLASCO"
    assert f.cleaned_data["emails"] == ("karla@example.com", "otro@example.com")


def test_rfc_with_a_bad_shape_is_refused_with_how_to_fix():
    assert "no tiene un formato válido" in form(rfc="ABC123").errors["rfc"][0]


def test_generic_rfc_is_refused():
    assert "RFC genérico" in form(rfc="XAXX010101000").errors["rfc"][0]


def test_persona_fisica_cannot_choose_a_regimen_of_personas_morales():
    assert "no corresponde a una persona física" in form(tax_regime="601").errors["tax_regime"][0]


def test_persona_moral_gets_the_moral_regimen_list():
    f = FiscalDataForm(data={**VALID, "rfc": "EKU9003173C9"})
    codes = [c for c, _ in f.fields["tax_regime"].widget.choices if c]
    assert "601" in codes and "605" not in codes


def test_persona_fisica_in_605_cannot_pick_g03():
    errors = form(cfdi_use="G03").errors
    assert "G03" in errors["cfdi_use"][0] and "605" in errors["cfdi_use"][0]
    codes = [c for c, _ in FiscalDataForm(data={**VALID, "cfdi_use": "G03"}).fields["cfdi_use"].widget.choices if c]
    assert "G03" not in codes and "S01" in codes and "D01" in codes


def test_persona_moral_cannot_pick_a_personal_deduction():
    errors = form(rfc="EKU9003173C9", name="ESCUELA KEMPER URGATE", tax_regime="601", cfdi_use="D01").errors
    assert "no es para una persona moral" in errors["cfdi_use"][0]


def test_postal_code_must_exist_in_sat_catalog():
    assert "no existe en el catálogo del SAT" in form(postal_code="00001").errors["postal_code"][0]
    assert "5 dígitos" in form(postal_code="123").errors["postal_code"][0]


def test_regimen_de_capital_is_removed_and_reported():
    assert strip_regimen_capital("Escuela Kemper Urgate, S.A. de C.V.") == ("ESCUELA KEMPER URGATE", "S.A. DE C.V.")
    assert strip_regimen_capital("Tienda  Sol S. de R.L. de C.V.") == ("TIENDA SOL", "S. DE R.L. DE C.V.")
    assert strip_regimen_capital("Juan Pérez") == ("JUAN PÉREZ", "")


def test_invalid_email_names_the_bad_address():
    assert "«karla@» no es un correo válido" in form(emails="ok@example.com, karla@").errors["emails"][0]


def test_form_page_shows_matrix_for_live_filtering_and_errors_next_to_fields(client, merchant, in_cart):
    page = client.get(f"/{merchant.slug}/datos/").content.decode()
    assert 'id="catalogos"' in page and "fiscal.js" in page
    response = client.post(f"/{merchant.slug}/datos/", {**VALID, "cfdi_use": "G03"})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'href="#id_cfdi_use"' in html and 'id="id_cfdi_use-error"' in html
    assert 'value="KARLA FUENTE NOLASCO"' in html or 'value="Karla Fuente Nolasco"' in html


def test_confirm_issues_one_pending_invoice_and_clears_the_cart(client, merchant, in_cart,
                                                                 django_capture_on_commit_callbacks):
    response = client.post(f"/{merchant.slug}/datos/", {**VALID, "name": "Karla Fuente Nolasco S.A. de C.V."})
    assert response.url == f"/{merchant.slug}/confirmar/"
    page = client.get(response.url).content.decode()
    assert "KARLA FUENTE NOLASCO" in page and "Quitamos «S.A. DE C.V.»" in page
    with django_capture_on_commit_callbacks() as callbacks:
        done = client.post(f"/{merchant.slug}/confirmar/")
    invoice = Invoice.objects.get()
    assert len(callbacks) == 1  # stamping queued after commit
    assert done.url == f"/{merchant.slug}/factura/{invoice.public_code}/"
    assert invoice.receptor_name == "KARLA FUENTE NOLASCO" and invoice.receptor_emails == ["karla@example.com"]
    assert Ticket.objects.get(pk=in_cart.pk).status == Ticket.Status.INVOICED
    assert "F-1" not in client.get(f"/{merchant.slug}/carrito/").content.decode()


def test_double_submit_of_the_confirmation_gives_the_same_invoice(client, merchant, in_cart):
    client.post(f"/{merchant.slug}/datos/", VALID)
    first = client.post(f"/{merchant.slug}/confirmar/")
    assert Invoice.objects.count() == 1
    # The confirmation is done: the replay lands on its invoice, never creating a second one.
    second = client.post(f"/{merchant.slug}/confirmar/")
    assert Invoice.objects.count() == 1 and second.status_code == 302 and first.status_code == 302
    assert second.url == first.url == f"/{merchant.slug}/factura/{Invoice.objects.get().public_code}/"


def test_ticket_invoiced_meanwhile_is_dropped_from_the_cart_with_a_reason(client, merchant, in_cart):
    client.post(f"/{merchant.slug}/datos/", VALID)
    Ticket.objects.filter(pk=in_cart.pk).update(status=Ticket.Status.INVOICED)
    response = client.get(f"/{merchant.slug}/confirmar/")
    assert response.status_code == 302  # nothing left to invoice
    assert Invoice.objects.count() == 0


def test_remember_my_data_prefills_the_form_next_time(client, merchant, branch, make_ticket, in_cart):
    client.post(f"/{merchant.slug}/datos/", {**VALID, "remember": "on"})
    response = client.post(f"/{merchant.slug}/confirmar/")
    cookie = response.cookies["af_datos"]
    assert cookie["httponly"] and "XIQB891116QE4" in cookie.value
    second = make_ticket(branch, number="F2", total=Decimal("1.00"))
    client.get(f"/t/{second.public_code}")
    page = client.get(f"/{merchant.slug}/datos/").content.decode()
    assert 'value="XIQB891116QE4"' in page and 'value="karla@example.com"' in page


def test_tampered_remember_cookie_is_ignored(client, merchant, in_cart):
    client.cookies["af_datos"] = json.dumps({"rfc": "EVIL"})
    assert "EVIL" not in client.get(f"/{merchant.slug}/datos/").content.decode()


CSF_TEXT = """CONSTANCIA DE SITUACIÓN FISCAL
RFC: XIQB891116QE4
CURP: XIQB891116MDFRRR01
Nombre (s): KARLA
Primer Apellido: FUENTE Segundo Apellido: NOLASCO
Datos del domicilio registrado
Código Postal:01160 Tipo de Vialidad: CALLE
Regímenes:
Régimen Fecha Inicio Fecha Fin
Régimen de Sueldos y Salarios e Ingresos Asimilados a Salarios 01/01/2015
"""


def test_constancia_text_is_parsed():
    assert parse_constancia(CSF_TEXT) == {"rfc": "XIQB891116QE4", "name": "KARLA FUENTE NOLASCO",
                                          "postal_code": "01160", "tax_regime": "605"}
    moral = "RFC: EKU9003173C9\nDenominación/Razón Social: ESCUELA KEMPER URGATE\nRégimen Capital: SOCIEDAD " \
            "ANONIMA\nRegímenes:\nRégimen General de Ley Personas Morales 01/01/2010"
    assert parse_constancia(moral)["tax_regime"] == "601"
    assert parse_constancia(moral)["name"] == "ESCUELA KEMPER URGATE"


def _pdf(text: str) -> bytes:
    from weasyprint import HTML

    return HTML(string="<pre>" + text + "</pre>").write_pdf()


def test_uploaded_constancia_prefills_the_form(client, merchant, in_cart):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("csf.pdf", _pdf(CSF_TEXT), content_type="application/pdf")
    response = client.post(f"/{merchant.slug}/datos/constancia/", {"constancia": upload})
    # POST/redirect/GET: reloading the form does not send the file again.
    assert response.status_code == 302 and response.url == f"/{merchant.slug}/datos/#fiscal"
    html = client.get(f"/{merchant.slug}/datos/").content.decode()
    assert 'value="XIQB891116QE4"' in html and 'value="KARLA FUENTE NOLASCO"' in html
    assert 'value="605" selected' in html and "Llenamos el formulario" in html
    reloaded = client.get(f"/{merchant.slug}/datos/").content.decode()
    assert 'value="KARLA FUENTE NOLASCO"' in reloaded and "Llenamos el formulario" not in reloaded  # said once


def test_a_file_that_is_not_a_pdf_is_refused_gently():
    with pytest.raises(ConstanciaError, match="no es un PDF"):
        read_constancia(b"hello")
    with pytest.raises(ConstanciaError, match="No pudimos leer"):
        read_constancia(b"%PDF-1.7 garbage")
