"""A slow PAC (the sandbox's SANDBOX_PAC_LATENCY_MS, in this module's own worker): after a few seconds the
progress page says what is happening and that the invoice will arrive by email; then it turns into the invoice."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from invoicing.services.issue import ReceptorData, invoice_issue
from tickets.services import LineInput, ticket_create

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_ENV = {"SANDBOX_PAC_LATENCY_MS": "6000"}


def test_a_slow_pac_is_explained_and_the_email_promised(live_server, shop, page, shot, settings):
    settings.PORTAL_SLOW_STAMP_SECONDS = 2
    line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                     unit_price=Decimal("116.00"))
    ticket = ticket_create(merchant=shop, branch=shop.branches.get(), number="S1", lines=[line],
                           sold_at=timezone.now() - dt.timedelta(hours=1))
    receptor = ReceptorData(rfc="FUNK671228PH6", name="KARLA FUENTE NOLASCO", tax_regime="605", postal_code="01160",
                            cfdi_use="S01", emails=("karla@example.com",))
    invoice = invoice_issue(merchant=shop, ticket_ids=[ticket.pk], receptor=receptor)
    page.goto(f"{live_server.url}/{shop.slug}/factura/{invoice.public_code}/")
    page.locator("#lento").wait_for(state="visible", timeout=10_000)
    text = page.locator("#lento").inner_text()
    assert "te la enviaremos a ka***@example.com" in text and "Puedes cerrar esta página" in text
    assert page.locator("#progreso-lento").is_visible() and page.locator("#progreso-normal").is_hidden()
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"slow-pac-{width}")
    page.get_by_role("heading", name="¡Tu factura está lista!").wait_for(timeout=60_000)
