"""The shopper's finished journey in a real browser (issue 20): a CFDI40147 rejection fixed on its page, the late
request explained, the aviso de privacidad and the merchant's contact, the Constancia as a first step. Each step
is photographed at 390 and 1280 px (ARTIFACTS_DIR/e2e)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from invoicing.models import Invoice
from tickets.models import Ticket
from tickets.services import LineInput, ticket_create

pytestmark = pytest.mark.django_db(transaction=True)

URE = {"rfc": "URE180429TM6", "name": "Universidad Robotica Española", "regimen": "601", "uso": "G03",
       "cp": "64000", "email": "compras@ure.example"}
CONSTANCIA = """CONSTANCIA DE SITUACIÓN FISCAL
RFC: FUNK671228PH6
Nombre (s): KARLA
Primer Apellido: FUENTE Segundo Apellido: NOLASCO
Código Postal:01160 Tipo de Vialidad: CALLE
Regímenes:
Régimen de Sueldos y Salarios e Ingresos Asimilados a Salarios 01/01/2015
Régimen de Arrendamiento 01/03/2020
"""


def shots(page, shot, step):
    """The same step at a phone's width and a desktop's, back to the phone's after."""
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"{step}-{width}")


def make_ticket(merchant, number, total="116.00"):
    line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                     unit_price=Decimal(total))
    return ticket_create(merchant=merchant, branch=merchant.branches.get(), number=number, lines=[line],
                         sold_at=timezone.now() - dt.timedelta(hours=1))


def open_cart(page, live_server, ticket):
    page.goto(f"{live_server.url}/t/{ticket.public_code}")
    page.wait_for_url("**/carrito/")


@pytest.fixture
def reachable(shop):
    shop.customer_email, shop.customer_phone = "ayuda@kemper.example", "55 1234 5678"
    shop.save()
    return shop


def test_a_postal_code_sat_does_not_know_is_fixed_on_the_same_page(live_server, reachable, page, shot):
    open_cart(page, live_server, make_ticket(reachable, "R1"))
    page.get_by_role("link", name="Continuar con mis datos fiscales").click()
    page.get_by_label("RFC", exact=True).fill(URE["rfc"])
    page.get_by_label("Nombre o razón social").fill(URE["name"])
    page.get_by_label("Régimen fiscal").select_option(URE["regimen"])
    page.get_by_label("Uso de la factura (uso del CFDI)").select_option(URE["uso"])
    page.get_by_label("Código postal de tu domicilio fiscal").fill(URE["cp"])
    page.get_by_label("Correo electrónico").fill(URE["email"])
    page.get_by_role("button", name="Revisar y confirmar").click()
    page.get_by_role("button", name="Generar mi factura").click()
    page.get_by_role("heading", name="No pudimos generar tu factura").wait_for(timeout=60_000)
    invoice = Invoice.objects.get()
    assert invoice.last_error_code == "CFDI40147"
    assert "El SAT no reconoce ese código postal para tu RFC" in page.content()
    field = page.get_by_label("Código postal de tu domicilio fiscal")
    assert field.get_attribute("aria-invalid") == "true" and field.input_value() == "64000"
    assert "como aparece en tu Constancia" in page.locator("#id_postal_code-error").inner_text()
    assert page.locator("a[href='mailto:ayuda@kemper.example']").count() >= 1
    shots(page, shot, "rejected")

    field.fill("65000")
    page.get_by_role("button", name="Corregir y volver a enviar mi factura").click()
    page.get_by_role("heading", name="¡Tu factura está lista!").wait_for(timeout=60_000)
    shots(page, shot, "fixed-and-stamped")
    fixed = Invoice.objects.get()  # the same invoice, the same folio
    assert (fixed.pk, fixed.folio, fixed.status, fixed.receptor_postal_code) == (invoice.pk, invoice.folio,
                                                                                 "stamped", "65000")


def test_a_ticket_in_a_global_is_explained_before_confirming(live_server, shop, page, shot):
    ticket = make_ticket(shop, "G1")
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.GLOBALIZED)  # as a stamped global leaves it
    open_cart(page, live_server, ticket)
    notice = page.locator("#tardia")
    assert "primero emitiremos una nota de crédito" in notice.inner_text()
    assert "Agregamos el ticket G1" in page.locator(".flash").inner_text()
    shots(page, shot, "late-cart")
    page.get_by_role("link", name="Continuar con mis datos fiscales").click()
    page.get_by_label("RFC", exact=True).fill("FUNK671228PH6")
    page.get_by_label("Nombre o razón social").fill("Karla Fuente Nolasco")
    page.get_by_label("Régimen fiscal").select_option("605")
    page.get_by_label("Uso de la factura (uso del CFDI)").select_option("S01")
    page.get_by_label("Código postal de tu domicilio fiscal").fill("01160")
    page.get_by_label("Correo electrónico").fill("karla@example.com")
    page.get_by_role("button", name="Revisar y confirmar").click()
    page.wait_for_url("**/confirmar/")
    assert "nota de crédito" in page.locator("#tardia").inner_text()
    shots(page, shot, "late-confirm")


def test_the_privacy_notice_is_linked_from_the_forms_with_the_contact(live_server, reachable, page, shot):
    page.goto(f"{live_server.url}/{reachable.slug}/")
    assert page.locator("#contacto a[href='mailto:ayuda@kemper.example']").count() == 1
    shots(page, shot, "landing-contact")
    page.locator(".privacy-note").get_by_role("link", name="aviso de privacidad").click()
    page.get_by_role("heading", name="Aviso de privacidad").wait_for()
    assert "derechos ARCO" in page.content() and "ESCUELA KEMPER URGATE (RFC EKU9003173C9)" in page.content()
    shots(page, shot, "privacy")


def test_the_constancia_comes_first_and_asks_which_regimen(live_server, shop, page, shot, tmp_path):
    from weasyprint import HTML

    pdf = tmp_path / "constancia.pdf"
    pdf.write_bytes(HTML(string="<pre>" + CONSTANCIA + "</pre>").write_pdf())
    open_cart(page, live_server, make_ticket(shop, "K1"))
    page.get_by_role("link", name="Continuar con mis datos fiscales").click()
    heading = page.get_by_role("heading", name="¿Tienes tu Constancia? Súbela y llenamos el formulario")
    assert heading.bounding_box()["y"] < page.get_by_label("RFC", exact=True).bounding_box()["y"]
    shots(page, shot, "constancia-first")
    page.get_by_label("Constancia de Situación Fiscal (PDF, opcional)").set_input_files(str(pdf))
    page.get_by_role("button", name="Leer mi Constancia").click()
    page.get_by_role("heading", name="Tu Constancia tiene varios regímenes").wait_for()
    shots(page, shot, "constancia-regimenes")
    page.get_by_label("606 · Arrendamiento").check()
    page.get_by_role("button", name="Usar este régimen").click()
    page.wait_for_url("**/datos/**")
    assert page.get_by_label("RFC", exact=True).input_value() == "FUNK671228PH6"
    assert page.get_by_label("Régimen fiscal").input_value() == "606"
    page.reload()  # GET after the redirect: nothing is posted again
    assert page.get_by_label("Régimen fiscal").input_value() == "606"
    shots(page, shot, "constancia-filled")
