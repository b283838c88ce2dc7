"""Cancellations in a real browser with a real worker and the sandbox PAC: a shopper corrects her RFC from the
invoice page and receives the replacement; a merchant cancels with motivo 02 from the admin."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from invoicing.models import Cancellation, Invoice
from invoicing.services.issue import ReceptorData, invoice_issue
from tickets.models import Ticket
from tickets.services import LineInput, ticket_create

pytestmark = pytest.mark.django_db(transaction=True)

# Her registered postal code: the sandbox PAC refuses this RFC with another one (CFDI40147), as SAT would.
BEFORE = ReceptorData(rfc="CACX7605101P8", name="XOCHILT CASAS CHAVEZ", tax_regime="612", postal_code="36257",
                      cfdi_use="G03", emails=("xochilt@example.com",))


def stamped_invoice(shop, wait_for, number="C1", total="116.00"):
    line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                     unit_price=Decimal(total))
    ticket = ticket_create(merchant=shop, branch=shop.branches.get(), number=number, lines=[line],
                           sold_at=timezone.now() - dt.timedelta(hours=1))
    invoice = invoice_issue(merchant=shop, ticket_ids=[ticket.pk], receptor=BEFORE)
    wait_for(lambda: Invoice.objects.get(pk=invoice.pk).status == "stamped")
    return Invoice.objects.get(pk=invoice.pk)


def follow_up_until(wait_for, invoice, status):
    """The worker's periodic follow-up runs every minute; here it is asked as often as the test needs."""
    from invoicing.tasks_cancel import follow_up_cancellations

    def done():
        Cancellation.objects.filter(status__in=Cancellation.ACTIVE).update(next_check_at=None)
        follow_up_cancellations()
        return Invoice.objects.get(pk=invoice.pk).status == status

    wait_for(done, timeout=40, every=0.5)


def test_a_shopper_corrects_her_rfc_and_receives_the_replacement(live_server, shop, page, shot, mailbox, wait_for):
    original = stamped_invoice(shop, wait_for)
    page.goto(f"{live_server.url}/{shop.slug}/factura/{original.public_code}/")
    page.get_by_role("heading", name="¡Tu factura está lista!").wait_for()
    shot(page, "invoice")
    page.get_by_role("link", name="Corregir mis datos").click()
    page.wait_for_url("**/correccion/")
    page.get_by_label("RFC con el que facturaste").fill("cacx7605101p8")
    page.get_by_label("RFC correcto").fill("XIQB891116QE4")
    page.get_by_label("Nombre o razón social").fill("Berenice Ximo Quezada")
    page.get_by_label("Régimen fiscal").select_option("612")
    page.get_by_label("Uso de la factura (uso del CFDI)").select_option("G03")
    page.get_by_label("Código postal de tu domicilio fiscal").fill("64000")
    page.get_by_label("Correo electrónico").fill("berenice@example.com")
    shot(page, "correction-form")
    page.get_by_role("button", name="Corregir y emitir la factura nueva").click()
    page.wait_for_url("**?corregida=1")
    page.get_by_role("heading", name="¡Tu factura está lista!").wait_for(timeout=30_000)
    assert "Corregimos tus datos" in page.content()
    shot(page, "replacement")
    replacement = Cancellation.objects.get().replacement
    replacement.refresh_from_db()
    assert replacement.receptor_rfc == "XIQB891116QE4" and replacement.status == "stamped"

    follow_up_until(wait_for, original, "cancelled")
    mails = wait_for(lambda: (text := mailbox()) and "cancelada y sustituida" in text
                     and str(replacement.uuid).upper() in text and text, timeout=30)
    assert "berenice@example.com" in mails
    page.goto(f"{live_server.url}/{shop.slug}/factura/{original.public_code}/")
    assert "la sustituye la factura" in page.content()
    shot(page, "original-cancelled")
    assert Ticket.objects.get().status == "invoiced"


def test_a_merchant_cancels_with_motivo_02_from_the_admin(live_server, shop, page, shot, wait_for, browser):
    from django.contrib.auth.models import Permission, User

    from tickets.models import MerchantMembership

    invoice = stamped_invoice(shop, wait_for, number="C2")
    user = User.objects.create_user("ana", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["invoicing", "tickets"]))
    MerchantMembership.objects.create(user=user, merchant=shop)
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/invoicing/invoice/")
    page.locator(f'input[name="_selected_action"][value="{invoice.pk}"]').check()
    page.locator('select[name="action"]').select_option("cancel_invoices")
    page.locator('button[name="index"]').click()
    page.get_by_role("heading", name="Cancelar facturas ante el SAT").wait_for()
    assert "No requiere aceptación del receptor" in page.content()
    shot(page, "admin-review")
    page.get_by_label("02 · Comprobante emitido con errores sin relación").check()
    page.get_by_role("button", name="Revisar").click()
    page.get_by_role("heading", name="Confirmar la cancelación").wait_for()
    content = page.content()
    assert "Se puede cancelar hasta el 31 de marzo de" in content and "El ticket de la factura queda libre" in content
    assert not Cancellation.objects.exists()  # nothing sent before confirming
    shot(page, "admin-confirm")
    page.get_by_role("button", name="Confirmar y enviar 1 cancelación(es) al SAT").click()
    page.wait_for_url("**/admin/invoicing/invoice/")
    assert "solicitud(es) de cancelación enviadas al SAT" in page.content()
    wait_for(lambda: Invoice.objects.get(pk=invoice.pk).status == "cancelled", timeout=40)  # the worker's task
    assert Ticket.objects.get().status == "open"
    page.goto(f"{live_server.url}/admin/invoicing/invoice/{invoice.pk}/change/")
    assert "Cancelada" in page.content()
    shot(page, "admin-cancelled")
