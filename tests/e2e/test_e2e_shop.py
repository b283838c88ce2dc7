"""The shoppers' site in a real browser, with a real django-q2 worker and the sandbox PAC."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from infra.models import Event
from invoicing.cfdi.catalogs import regimenes_for, usos_for
from invoicing.cfdi.verify import verify
from invoicing.models import Invoice
from invoicing.pac.sandbox import sandbox_certificate_row
from invoicing.services.issue import ReceptorData, invoice_issue
from tickets.services import LineInput, ticket_create

pytestmark = pytest.mark.django_db(transaction=True)

PERSONA = {"rfc": "XIQB891116QE4", "name": "Karla Fuente Nolasco", "regimen": "605", "uso": "S01",
           "cp": "01160", "email": "karla@example.com"}


def make_ticket(merchant, number, total, sold_at=None):
    line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                     unit_price=Decimal(total))
    return ticket_create(merchant=merchant, branch=merchant.branches.get(), number=number, lines=[line],
                         sold_at=sold_at or timezone.now() - dt.timedelta(hours=1))


def day(ticket):
    return timezone.localtime(ticket.sold_at, ticket.merchant.tzinfo).date().isoformat()


def lookup(page, number, total, date):
    page.get_by_label("Número de ticket").fill(number)
    page.get_by_label("Total pagado").fill(total)
    page.get_by_label("Fecha de compra").fill(date)
    page.get_by_role("button", name="Buscar mi ticket").click()


def fill_fiscal(page, data=PERSONA):
    page.get_by_label("RFC", exact=True).fill(data["rfc"])
    page.get_by_label("Nombre o razón social").fill(data["name"])
    page.get_by_label("Régimen fiscal").select_option(data["regimen"])
    page.get_by_label("Uso de la factura (uso del CFDI)").select_option(data["uso"])
    page.get_by_label("Código postal de tu domicilio fiscal").fill(data["cp"])
    page.get_by_label("Correo electrónico").fill(data["email"])


def download(page, label):
    with page.expect_download() as info:
        page.get_by_role("link", name=label).click()
    return open(info.value.path(), "rb").read()  # noqa: SIM115


def test_lookup_fiscal_data_stamped_downloads_and_email(live_server, shop, page, shot, mailbox):
    ticket = make_ticket(shop, "A1", "116.00")
    page.goto(f"{live_server.url}/{shop.slug}/")
    shot(page, "landing")
    lookup(page, "A1", "116.00", day(ticket))
    page.wait_for_url("**/carrito/")
    shot(page, "cart")
    page.get_by_role("link", name="Continuar con mis datos fiscales").click()
    fill_fiscal(page, {**PERSONA, "name": "Karla Fuente Nolasco S.A. de C.V."})
    assert "Quitaremos «S.A. DE C.V.»" in page.locator("#name-capital").inner_text()
    shot(page, "fiscal-data")
    page.get_by_role("button", name="Revisar y confirmar").click()
    page.wait_for_url("**/confirmar/")
    assert "KARLA FUENTE NOLASCO" in page.content()
    shot(page, "confirm")
    page.get_by_role("button", name="Generar mi factura").click()
    page.wait_for_url("**/factura/**")
    shot(page, "progress")
    page.get_by_role("heading", name="¡Tu factura está lista!").wait_for(timeout=30_000)
    assert "Te la enviamos a ka***@example.com" in page.content()
    shot(page, "stamped")

    xml = download(page, "Descargar XML")
    result = verify(xml, sat_cert=bytes(sandbox_certificate_row().cer_der))
    assert result.ok, result.summary()
    invoice = Invoice.objects.get()
    assert invoice.status == "stamped" and str(invoice.uuid).upper() in xml.decode().upper()
    assert download(page, "Descargar PDF").startswith(b"%PDF")
    assert download(page, "Descargar ZIP (XML y PDF)").startswith(b"PK")

    message = mailbox()
    assert "karla@example.com" in message and str(invoice.uuid).upper() in message.upper()


def test_wrong_total_says_it_does_not_match(live_server, shop, page, shot):
    ticket = make_ticket(shop, "W1", "50.00")
    page.goto(f"{live_server.url}/{shop.slug}/")
    lookup(page, "W1", "49.00", day(ticket))
    assert "El total no coincide con el ticket" in page.locator("#resultado").inner_text()
    shot(page, "wrong-total")


def test_expired_ticket_shows_the_date(live_server, shop, page, shot):
    ticket = make_ticket(shop, "E1", "20.00", sold_at=timezone.now() - dt.timedelta(days=75))
    page.goto(f"{live_server.url}/{shop.slug}/")
    lookup(page, "E1", "20.00", day(ticket))
    expired = timezone.localtime(ticket.expires_at, shop.tzinfo).strftime("%d/%m/%Y")
    assert f"venció el {expired}" in page.locator("#resultado").inner_text()
    shot(page, "expired")


def test_already_invoiced_shows_the_files_after_the_rfc(live_server, shop, page, shot, wait_for):
    ticket = make_ticket(shop, "I1", "30.00")
    receptor = ReceptorData(rfc=PERSONA["rfc"], name="KARLA FUENTE NOLASCO", tax_regime="605",
                            postal_code="01160", cfdi_use="S01", emails=("karla@example.com",))
    invoice = invoice_issue(merchant=shop, ticket_ids=[ticket.pk], receptor=receptor)
    wait_for(lambda: Invoice.objects.get(pk=invoice.pk).status == "stamped")
    page.goto(f"{live_server.url}/{shop.slug}/")
    lookup(page, "I1", "30.00", day(ticket))
    page.get_by_role("heading", name="Este ticket ya fue facturado").wait_for()
    assert "ka***@example.com" in page.content() and "karla@example.com" not in page.content()
    shot(page, "already-invoiced")
    page.get_by_label("RFC con el que facturaste").fill("EKU9003173C9")
    page.get_by_role("button", name="Ver mi factura").click()
    assert "Ese RFC no es el de la factura" in page.content()
    page.get_by_label("RFC con el que facturaste").fill(PERSONA["rfc"].lower())
    page.get_by_role("button", name="Ver mi factura").click()
    page.get_by_role("heading", name="¡Tu factura está lista!").wait_for()
    shot(page, "invoice-after-rfc")
    page.get_by_role("button", name="¿No te llegó? Reenviar por correo").click()
    assert "te la reenviamos a ka***@example.com" in page.content()
    # Queued on the deliver queue (never sent inside the request): the worker sends it.
    resent = Event.objects.filter(entity="invoice", object_id=invoice.pk, data__kind="email_sent", actor="portal")
    assert wait_for(lambda: resent.first()).data["to"] == ["karla@example.com"]


def test_lookups_are_rate_limited(live_server, shop, page, shot, settings):
    settings.PORTAL_RATE_LIMITS = {"lookup_ip": (3, 600)}
    page.goto(f"{live_server.url}/{shop.slug}/")
    for i in range(3):
        lookup(page, f"NOPE{i}", "1.00", "2026-01-01")
        assert "No encontramos un ticket" in page.content()
    lookup(page, "NOPE9", "1.00", "2026-01-01")
    assert "demasiados intentos" in page.content()
    shot(page, "rate-limited")


def test_persona_fisica_605_cannot_pick_g03(live_server, shop, page, shot):
    ticket = make_ticket(shop, "G1", "10.00")
    page.goto(f"{live_server.url}/t/{ticket.public_code}")
    page.get_by_role("link", name="Continuar con mis datos fiscales").click()
    page.get_by_label("RFC", exact=True).fill(PERSONA["rfc"])
    regimenes = page.locator("#id_tax_regime option").evaluate_all("os => os.map(o => o.value)")
    assert "605" in regimenes and "601" not in regimenes  # persona física: no régimen of personas morales
    page.get_by_label("Régimen fiscal").select_option("605")
    usos = page.locator("#id_cfdi_use option").evaluate_all("os => os.map(o => o.value)")
    assert "G03" not in usos and "S01" in usos and "D01" in usos
    shot(page, "605-usos")
    # Without the live filter (a stale page, or a crafted request) the server refuses it next to the field.
    page.evaluate("document.getElementById('id_cfdi_use').add(new Option('G03', 'G03', true, true))")
    fill = {**PERSONA, "uso": "G03"}
    page.get_by_label("Nombre o razón social").fill(fill["name"])
    page.get_by_label("Código postal de tu domicilio fiscal").fill(fill["cp"])
    page.get_by_label("Correo electrónico").fill(fill["email"])
    page.get_by_role("button", name="Revisar y confirmar").click()
    assert "El uso G03 «Gastos en general» no se permite con el régimen 605" in page.locator("#id_cfdi_use-error").inner_text()
    assert page.locator("#errores a[href='#id_cfdi_use']").count() == 1
    shot(page, "605-g03-refused")


def test_the_scripts_lists_are_the_servers_matrix(live_server, shop, page):
    """fiscal.js only looks up what the server sends: for every persona and régimen its lists are the rule's."""
    ticket = make_ticket(shop, "M1", "10.00")
    page.goto(f"{live_server.url}/t/{ticket.public_code}")
    page.get_by_role("link", name="Continuar con mis datos fiscales").click()
    options = "os => os.map(o => o.value).filter(v => v)"
    for typed, rfc in (("eku-900317-3c9", "EKU9003173C9"), ("XIQB891116QE4", "XIQB891116QE4"), ("XIQB", "")):
        page.get_by_label("RFC", exact=True).fill(typed)
        regimenes = page.locator("#id_tax_regime option").evaluate_all(options)
        assert regimenes == [r.code for r in regimenes_for(rfc)]
        for regimen in regimenes:
            page.get_by_label("Régimen fiscal").select_option(regimen)
            usos = page.locator("#id_cfdi_use option").evaluate_all(options)
            assert usos == [u.code for u in usos_for(rfc, regimen)], (rfc, regimen)


def test_two_tickets_in_one_invoice(live_server, shop, page, shot, wait_for):
    first, second = make_ticket(shop, "D1", "116.00"), make_ticket(shop, "D2", "58.00")
    page.goto(f"{live_server.url}/{shop.slug}/")
    lookup(page, "D1", "116.00", day(first))
    page.wait_for_url("**/carrito/")
    lookup_btn = page.get_by_role("button", name="Agregar ticket")
    page.get_by_label("Número de ticket").fill("D2")
    page.get_by_label("Total pagado").fill("58")
    page.get_by_label("Fecha de compra").fill(day(second))
    lookup_btn.click()
    page.wait_for_url("**/carrito/")
    assert "174.00" in page.content()
    shot(page, "cart-two")
    page.get_by_role("link", name="Continuar con mis datos fiscales").click()
    fill_fiscal(page)
    page.get_by_role("button", name="Revisar y confirmar").click()
    page.get_by_role("button", name="Generar mi factura").click()
    page.get_by_role("heading", name="¡Tu factura está lista!").wait_for(timeout=30_000)
    shot(page, "two-stamped")
    invoice = Invoice.objects.get()
    assert invoice.total == Decimal("174.00") and invoice.tickets.count() == 2
    assert bytes(invoice.stamped_xml).count(b"<cfdi:Concepto ") == 2


def test_phone_viewport_360px(live_server, shop, browser, shot):
    ticket = make_ticket(shop, "M1", "12.50")
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                  locale="es-MX")
    page = context.new_page()
    try:
        for url in (f"/{shop.slug}/", f"/t/{ticket.public_code}", f"/{shop.slug}/datos/"):
            page.goto(live_server.url + url)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{url} scrolls sideways ({width}px)"
            shot(page, "phone" + url.replace("/", "-"))
        size = len(page.request.get(f"{live_server.url}/{shop.slug}/").body())
        assert size < 50_000
    finally:
        context.close()
