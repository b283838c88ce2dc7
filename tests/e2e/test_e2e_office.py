"""The back office in a real browser, one test per role, with screenshots (ARTIFACTS_DIR/e2e):

- the owner uploads SAT's test CSD (../shared/sat/csd when present, else a generated one), chooses the PAC,
  creates an API key and invites a cashier;
- the cashier finds an invoice by typing "F-1" and resends it to a new address;
- the accountant exports last month; the real django-q2 worker builds it, and the CSV's totals equal the sums read
  back from the XMLs in the ZIP.
"""

import csv
import datetime as dt
import io
import time
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone
from lxml import etree

from infra.roles import Role
from invoicing.models import AccountingExport, Certificate, Invoice
from invoicing.services.issue import ReceptorData, invoice_issue
from invoicing.services.stamping import invoices_stamp_queued
from tickets.models import ApiKey, Branch, Merchant, MerchantMembership
from tickets.services import LineInput, ticket_create

pytestmark = pytest.mark.django_db(transaction=True)

SHARED_CSD = Path(__file__).resolve().parents[2].parent / "shared" / "sat" / "csd" / "EKU9003173C9"
PASSWORD = "Oficina-2026-segura"
RECEPTOR = ReceptorData(rfc="CACX7605101P8", name="XOCHILT CASAS CHAVEZ", tax_regime="612", postal_code="36257",
                        cfdi_use="G03", emails=("xochilt@example.com",))


@pytest.fixture
def desk(browser):
    """A desktop window (1280 px): the width the back office is laid out for."""
    context = browser.new_context(locale="es-MX", viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def office(transactional_db, worker, settings, tmp_path):
    settings.INVOICE_STAMP_LINGER_MS = 0
    merchant = Merchant.objects.create(slug="oficina", legal_name="ESCUELA KEMPER URGATE", rfc="EKU9003173C9",
                                       tax_regime="601", brand_color="#7A1FA2", pac="sandbox")
    Branch.objects.create(merchant=merchant, code="CENTRO", name="Centro", postal_code="06600")
    return merchant


def person(merchant, role, username):
    user = User.objects.create_user(username, email=username, password=PASSWORD, is_staff=True)
    MerchantMembership.objects.create(user=user, merchant=merchant, role=role)
    return user


def log_in(page, base, username):
    page.goto(f"{base}/admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{base}/admin/")


def csd_files(merchant) -> tuple[bytes, bytes, str, str]:
    if SHARED_CSD.is_dir():
        cer = sorted(SHARED_CSD.glob("*.cer"))[-1]
        return cer.read_bytes(), cer.with_suffix(".key").read_bytes(), "12345678a", "CSD de pruebas del SAT"
    from invoicing.cfdi.testcsd import generate_test_csd

    cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
    return cer, key, password, "CSD generado (../shared/sat no está)"


def stamped_invoice(merchant, number, total) -> Invoice:
    branch = merchant.branches.get()
    ticket = ticket_create(merchant=merchant, branch=branch, number=number, sold_at=timezone.now(), lines=[
        LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                  unit_price=Decimal(total))])
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=RECEPTOR)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # this process or the worker stamps it, whichever claims it first
        invoices_stamp_queued()
        invoice.refresh_from_db()
        if invoice.status == "stamped":
            return invoice
        time.sleep(0.3)
    raise AssertionError(f"{number} not stamped: {invoice.status} {invoice.last_error_message}")


def install_generated_csd(merchant):
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.services.certificates import certificate_install

    cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
    certificate_install(merchant=merchant, cer=cer, key=key, password=password)


def test_owner_uploads_the_csd_chooses_the_pac_creates_an_api_key_and_invites_a_cashier(live_server, office, desk,
                                                                                         shot, tmp_path):
    person(office, Role.OWNER, "duena@example.com")
    log_in(desk, live_server.url, "duena@example.com")
    assert desk.locator("#dashboard").is_visible()
    shot(desk, "owner-dashboard")

    cer, key, password, which = csd_files(office)
    (tmp_path / "csd.cer").write_bytes(cer)
    (tmp_path / "csd.key").write_bytes(key)
    desk.goto(f"{live_server.url}/admin/invoicing/certificate/add/")
    desk.get_by_label("Certificado (.cer)").set_input_files(str(tmp_path / "csd.cer"))
    desk.get_by_label("Llave privada (.key)").set_input_files(str(tmp_path / "csd.key"))
    desk.get_by_label("Contraseña de la llave privada").fill(password)
    shot(desk, "owner-csd-form")
    desk.get_by_role("button", name="Guardar", exact=True).click()
    desk.wait_for_url("**/admin/invoicing/certificate/")
    certificate = Certificate.objects.get(merchant=office)
    assert certificate.is_active and certificate.rfc == "EKU9003173C9", which
    shot(desk, "owner-csd-uploaded")

    desk.goto(f"{live_server.url}/admin/tickets/merchant/{office.pk}/change/")
    assert desk.locator("#branding-preview").is_visible()
    desk.locator("#id_pac").select_option("sandbox")
    desk.locator("#id_pac_environment").select_option("test")
    shot(desk, "owner-pac")
    desk.get_by_role("button", name="Guardar", exact=True).click()
    desk.wait_for_url("**/admin/tickets/merchant/")
    desk.locator("select[name=action]").select_option("probar_conexion")
    desk.locator(f"input[name=_selected_action][value='{office.pk}']").check()
    desk.locator(".actions button[name=index]").first.click()
    desk.get_by_text("PAC sandbox listo").wait_for()
    shot(desk, "owner-pac-tested")

    desk.goto(f"{live_server.url}/admin/tickets/apikey/add/")
    desk.get_by_label("Nombre").fill("Caja principal")
    desk.get_by_label("Facturas").check()
    desk.get_by_role("button", name="Guardar", exact=True).click()
    desk.wait_for_url("**/admin/tickets/apikey/")
    assert "Cópiala ahora" in desk.content() and ApiKey.objects.get(merchant=office).name == "Caja principal"
    shot(desk, "owner-api-key")

    desk.goto(f"{live_server.url}/admin/tickets/staffmember/add/")
    desk.get_by_label("Correo").fill("cajero.nuevo@example.com")
    desk.get_by_label("Nombre").fill("Cajero Nuevo")
    desk.get_by_label("Rol").select_option("cashier")
    shot(desk, "owner-invite")
    desk.get_by_role("button", name="Guardar", exact=True).click()
    desk.wait_for_url("**/admin/tickets/staffmember/")
    assert "cajero.nuevo@example.com" in desk.content()
    shot(desk, "owner-team")
    member = MerchantMembership.objects.get(user__email="cajero.nuevo@example.com")
    assert member.merchant_id == office.pk and member.role == Role.CASHIER
    assert any("cajero.nuevo@example.com" in m.to and "/admin/clave/" in m.body for m in mail.outbox)


def test_cashier_finds_f1_by_typing_it_and_resends_it_to_a_new_address(live_server, office, desk, shot):
    install_generated_csd(office)
    invoice = stamped_invoice(office, "CAJA-1", "116.00")
    stamped_invoice(office, "CAJA-2", "58.00")
    assert (invoice.serie, invoice.folio) == ("F", 1)
    person(office, Role.CASHIER, "cajera@example.com")
    log_in(desk, live_server.url, "cajera@example.com")
    shot(desk, "cashier-dashboard")
    desk.goto(f"{live_server.url}/admin/invoicing/invoice/")
    desk.locator("#searchbar").fill("F-1")
    desk.locator("#searchbar").press("Enter")
    desk.wait_for_url("**q=F-1**")
    rows = desk.locator("#result_list tbody tr")
    assert rows.count() == 1 and "F-1" in rows.first.inner_text()
    shot(desk, "cashier-found-f1")
    rows.first.locator("input.action-select").check()
    desk.locator("select[name=action]").select_option("resend_to")
    desk.locator(".actions button[name=index]").first.click()
    desk.get_by_label("Enviar a").fill("nueva.direccion@example.com")
    shot(desk, "cashier-resend-form")
    mail.outbox.clear()
    desk.get_by_role("button", name="Enviar").click()
    desk.get_by_text("Se enviaron 1 factura(s) a nueva.direccion@example.com").wait_for()
    shot(desk, "cashier-resent")
    [message] = [m for m in mail.outbox if m.to == ["nueva.direccion@example.com"]]
    assert "F-1" in message.subject
    for listing in ("invoicing/invoice", "tickets/ticket"):  # every column fits at 1280 px
        desk.goto(f"{live_server.url}/admin/{listing}/")
        headers = desk.locator("#result_list thead th")
        last = headers.nth(headers.count() - 1).bounding_box()
        assert last["x"] + last["width"] <= 1280, listing
        assert desk.evaluate("document.documentElement.scrollWidth") <= 1280, listing
        shot(desk, f"cashier-{listing.split('/')[1]}-list")
    desk.goto(f"{live_server.url}/admin/tickets/merchant/{office.pk}/change/")
    desk.get_by_text("Sin permiso").wait_for()  # no settings for a cashier
    shot(desk, "cashier-no-settings")


def test_accountant_exports_last_month_and_the_csv_adds_up_to_the_xmls(live_server, office, desk, shot, wait_for):
    install_generated_csd(office)
    invoices = [stamped_invoice(office, f"MES-{n}", total) for n, total in enumerate(("116.00", "58.00", "99.99"))]
    now = timezone.now()
    last_month = (timezone.localtime(now, office.tzinfo).replace(day=1) - dt.timedelta(days=3))
    # Issued last month: the CFDI date the export selects by (the XML keeps the date it was sealed with).
    Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(issued_at=last_month, created_at=last_month)
    stamped_invoice(office, "ESTE-MES", "500.00")  # this month: not in the export
    person(office, Role.ACCOUNTANT, "contadora@example.com")
    log_in(desk, live_server.url, "contadora@example.com")
    shot(desk, "accountant-dashboard")
    desk.goto(f"{live_server.url}/admin/invoicing/accountingexport/add/")
    assert desk.get_by_label("Mes").input_value() == f"{last_month:%Y-%m}"
    shot(desk, "accountant-export-form")
    desk.get_by_role("button", name="Guardar", exact=True).click()
    desk.wait_for_url("**/admin/invoicing/accountingexport/")

    def ready():
        desk.reload()
        return desk.get_by_role("link", name="Descargar ZIP").count() > 0

    wait_for(ready, timeout=60, every=1)  # the django-q2 worker (a separate process) builds it
    assert AccountingExport.objects.get().status == "done"
    shot(desk, "accountant-export-ready")
    with desk.expect_download() as info:
        desk.get_by_role("link", name="Descargar ZIP").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes()))
    rows = list(csv.DictReader(io.StringIO(archive.read("facturas.csv").decode("utf-8-sig"))))
    xml_totals = [Decimal(etree.fromstring(archive.read(n)).get("Total")) for n in archive.namelist()
                  if n.endswith(".xml")]
    assert len(rows) == len(xml_totals) == 3
    assert sum(Decimal(r["Total"]) for r in rows) == sum(xml_totals) == Decimal("273.99")
    assert "facturas.xlsx" in archive.namelist()
