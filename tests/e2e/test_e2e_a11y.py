"""Accessibility and languages of the shoppers' site in a real browser: an axe-core audit of every shopper page
at 390 px and 1280 px (no serious or critical violation), the whole journey by keyboard alone, the pages in
English, and "Mis facturas" opened from the link in the captured email. Screenshots go to ARTIFACTS_DIR/e2e.

axe-core comes from the axe-playwright-python wheel (its axe.min.js, injected into each page): nothing is
downloaded while the suite runs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from invoicing.models import Invoice
from invoicing.services.issue import ReceptorData, invoice_issue
from tickets.models import Branch, Merchant
from tickets.services import LineInput, ticket_create

pytestmark = pytest.mark.django_db(transaction=True)

RECEPTOR = ReceptorData(rfc="XIQB891116QE4", name="KARLA FUENTE NOLASCO", tax_regime="605", postal_code="01160",
                        cfdi_use="S01", emails=("karla@example.com",))
VIEWPORTS = {"mobile": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
BLOCKING = ("serious", "critical")
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "e2e"  # as tests/e2e/conftest.py


def axe_js() -> Path:
    axe_playwright_python = pytest.importorskip("axe_playwright_python", reason="pip install -e '.[dev]'")
    return Path(axe_playwright_python.__file__).parent / "axe.min.js"


def make_ticket(merchant, number, total="116.00", **kwargs):
    line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                     unit_price=Decimal(total))
    return ticket_create(merchant=merchant, branch=merchant.branches.get(), number=number, lines=[line],
                         sold_at=kwargs.pop("sold_at", timezone.now() - dt.timedelta(hours=1)), **kwargs)


def day(ticket):
    return timezone.localtime(ticket.sold_at, ticket.merchant.tzinfo).date().isoformat()


class Auditor:
    """Runs axe on the current page, keeps what is serious or critical, and screenshots it."""

    def __init__(self, page, viewport: str):
        self.page, self.viewport, self.found, self.pages = page, viewport, {}, []

    def blocking(self) -> list[str]:
        self.page.wait_for_load_state("load")
        if not self.page.evaluate("typeof axe !== 'undefined'"):
            self.page.add_script_tag(path=str(axe_js()))
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
                for v in result["violations"] if v["impact"] in BLOCKING]

    def __call__(self, name: str) -> None:
        page = self.page
        bad = self.blocking()
        if bad:
            self.found[name] = bad
        self.pages.append(name)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"a11y-{self.viewport}-{len(self.pages):02d}-{name}.png"),
                        full_page=True)


@pytest.fixture
def unstamped(shop):
    """A second merchant of the same shopper without a CSD: its invoices fail (the failure page)."""
    merchant = Merchant.objects.create(slug="sin-sello", legal_name="XOCHILT CASAS CHAVEZ", rfc="CACX7605101P8",
                                       tax_regime="612", pac="sandbox")
    Branch.objects.create(merchant=merchant, code="CENTRO", name="Centro", postal_code="64000")
    return merchant


def lookup(page, number, total, date):
    page.get_by_label("Número de ticket").fill(number)
    page.get_by_label("Total pagado").fill(total)
    page.get_by_label("Fecha de compra").fill(date)
    page.get_by_role("button", name="Buscar mi ticket").click()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_axe_finds_nothing_serious_on_any_shopper_page(live_server, shop, unstamped, browser, viewport, wait_for,
                                                       mailbox):
    base, slug = live_server.url, shop.slug
    context = browser.new_context(locale="es-MX", viewport=VIEWPORTS[viewport], accept_downloads=True,
                                  is_mobile=viewport == "mobile", has_touch=viewport == "mobile")
    page = context.new_page()
    page.set_default_timeout(15_000)
    audit = Auditor(page, viewport)
    try:
        ticket = make_ticket(shop, f"AX{viewport[0].upper()}1")
        page.goto(f"{base}/{slug}/")
        audit("landing")
        page.get_by_role("button", name="Buscar mi ticket").click()
        audit("lookup-errors")
        lookup(page, "NOPE", "1.00", day(ticket))
        audit("lookup-not-found")
        lookup(page, ticket.number, "116.00", day(ticket))
        page.wait_for_url("**/carrito/")
        audit("cart")
        page.get_by_role("link", name="Continuar con mis datos fiscales").click()
        audit("fiscal-data")
        page.get_by_role("button", name="Revisar y confirmar").click()
        audit("fiscal-data-errors")
        page.get_by_label("RFC", exact=True).fill(RECEPTOR.rfc)
        page.get_by_label("Nombre o razón social").fill(RECEPTOR.name)
        page.get_by_label("Régimen fiscal").select_option("605")
        page.get_by_label("Uso de la factura (uso del CFDI)").select_option("S01")
        page.get_by_label("Código postal de tu domicilio fiscal").fill("01160")
        page.get_by_label("Correo electrónico").fill("karla@example.com")
        page.get_by_role("button", name="Revisar y confirmar").click()
        page.wait_for_url("**/confirmar/")
        audit("confirm")
        page.get_by_role("button", name="Generar mi factura").click()
        page.get_by_role("heading", name="¡Tu factura está lista!").wait_for(timeout=30_000)
        audit("done")
        invoice = Invoice.objects.get(merchant=shop, tickets=ticket)

        # In progress: an invoice held back from the queue, as a slow PAC would leave it.
        with transaction.atomic():  # not due for an hour: the worker leaves it pending
            held = invoice_issue(merchant=unstamped, ticket_ids=[make_ticket(unstamped, f"AXP{viewport[0].upper()}1").pk],
                                 receptor=RECEPTOR)
            Invoice.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now() + dt.timedelta(hours=1))
        page.goto(f"{base}/{unstamped.slug}/factura/{held.public_code}/")
        audit("progress")
        Invoice.objects.filter(pk=held.pk).update(status=Invoice.Status.FAILED, last_error_code="CFDI40147",
                                                  last_error_message="El código postal no coincide con el SAT.")
        page.goto(f"{base}/{unstamped.slug}/factura/{held.public_code}/")
        audit("failed")

        page.goto(f"{base}/{slug}/")
        lookup(page, ticket.number, "116.00", day(ticket))
        page.get_by_role("heading", name="Este ticket ya fue facturado").wait_for()
        audit("already-invoiced")
        page.goto(f"{base}/t/no-such-code")
        audit("code-not-found")
        page.goto(f"{base}/{slug}/no/existe/")
        audit("error-404")

        page.goto(f"{base}/{slug}/mis-facturas/")
        audit("my-invoices")
        page.get_by_label("RFC", exact=True).fill(RECEPTOR.rfc)
        page.get_by_label("Correo electrónico").fill("karla@example.com")
        page.get_by_role("button", name="Enviarme el enlace").click()
        page.locator("#enviado").wait_for()
        audit("my-invoices-sent")
        link = wait_for(lambda: re.search(r"https?://\S+/mis-facturas/acceso/\S+", mailbox()))
        page.goto(base + "/" + link.group(0).split("/", 3)[3])
        audit("my-invoices-open")
        page.get_by_role("button", name="Ver mis facturas").click()
        page.locator("#mis-facturas").wait_for()
        assert invoice.public_code in page.content() and held.public_code not in page.content()
        audit("my-invoices-list")
        page.goto(f"{base}/{slug}/mis-facturas/acceso/{uuid.uuid4().hex}/")
        audit("my-invoices-expired")

        page.goto(f"{base}/{slug}/privacidad/")
        audit("privacy")
        page.goto(f"{base}/{slug}/")
        page.get_by_role("button", name="Switch the language to English").click()
        page.get_by_role("heading", name="Get an invoice for your purchase").wait_for()
        audit("landing-en")
        page.goto(f"{base}/{slug}/mis-facturas/")
        audit("my-invoices-en")
        page.goto(f"{base}/{slug}/privacidad/")
        audit("privacy-en")
        # The audit sees what it should: an input without a label is a critical violation.
        page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input id=\"planted\">')")
        assert any(v.startswith("label (critical)") for v in audit.blocking())
    finally:
        context.close()
    assert len(audit.pages) >= 22
    assert not audit.found, "\n".join(f"{name}: {v}" for name, vs in audit.found.items() for v in vs)


def test_the_whole_journey_by_keyboard_alone(live_server, shop, browser):
    """Tab, Shift+Tab, typing, Space and Enter: no click from the landing page to the stamped invoice."""
    context = browser.new_context(locale="es-MX", viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    ticket = make_ticket(shop, "KB-1", "58.00")
    sold = timezone.localtime(ticket.sold_at, shop.tzinfo).date()

    def focused(selector: str) -> bool:
        return page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector)

    def tab_to(selector: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if focused(selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    def type_into(selector: str, text: str) -> None:
        tab_to(selector)
        page.keyboard.type(text)

    try:
        # The date field takes its segments in the browser's own order (day or month first): whichever fills it.
        for order in ("%d%m%Y", "%m%d%Y"):
            page.goto(f"{live_server.url}/{shop.slug}/")
            page.keyboard.press("Tab")
            assert focused("a.skip") and page.locator("a.skip").bounding_box()["x"] >= 0  # visible when focused
            page.keyboard.press("Enter")
            type_into("#id_number", "KB-1")
            type_into("#id_total", "58")
            tab_to("#id_sold_on")
            page.keyboard.type(sold.strftime(order))
            if page.locator("#id_sold_on").input_value() == sold.isoformat():
                break
        page.keyboard.press("Enter")
        page.wait_for_url("**/carrito/")
        tab_to("a[href$='/datos/']")
        page.keyboard.press("Enter")
        page.wait_for_url("**/datos/")
        type_into("#id_rfc", RECEPTOR.rfc)
        type_into("#id_name", "Karla Fuente Nolasco")
        tab_to("#id_tax_regime")
        page.keyboard.type("605")
        tab_to("#id_cfdi_use")
        page.keyboard.type("S01")
        type_into("#id_postal_code", "01160")
        type_into("#id_emails", "karla@example.com")
        tab_to("#id_remember")
        page.keyboard.press("Space")
        assert page.locator("#id_remember").is_checked()
        tab_to("#fiscal button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_url("**/confirmar/")
        tab_to("form[action$='/confirmar/'] button")
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="¡Tu factura está lista!").wait_for(timeout=30_000)
        tab_to("a[href$='/xml']")
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        invoice = Invoice.objects.get()
        assert invoice.status == "stamped" and invoice.receptor_tax_regime == "605" and invoice.total == Decimal("58")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "keyboard-journey-done.png"), full_page=True)
    finally:
        context.close()
