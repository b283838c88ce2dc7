"""Admin: cancel (02/03) and reissue (01) actions with a confirmation page that says, before anything is sent,
whether acceptance is needed, until when, and what happens to the tickets; stamped invoices are never deleted or
edited, not even by a superuser."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import ProtectedError
from django.test import Client

from invoicing.models import Cancellation, Invoice
from invoicing.pac.models import SandboxStamp

CHANGELIST = "/admin/invoicing/invoice/"


@pytest.fixture
def staff(merchant, make_staff):
    client = Client()
    client.force_login(make_staff(merchant, "ana"))
    return client


@pytest.fixture
def superuser_client(db):
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x"))
    return client


def action(client, action_name, invoices, /, **data):
    return client.post(CHANGELIST, {"action": action_name, ACTION_CHECKBOX_NAME: [i.pk for i in invoices], **data})


def test_cancel_shows_acceptance_deadline_and_tickets_before_sending(staff, stamped, age, settings):
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 3600
    small, large = stamped("116.00"), age(stamped("5800.00"), days=10)
    page = action(staff, "cancel_invoices", [small, large])
    assert page.status_code == 200
    html = page.content.decode()
    assert "No requiere aceptación del receptor: su total es de hasta $1,000.00" in html
    assert "El receptor debe aceptar la cancelación" in html
    assert "Se puede cancelar hasta el 31 de marzo de" in html
    review = action(staff, "cancel_invoices", [small, large], step="review", motive="03", tickets="")
    html = review.content.decode()
    assert "El ticket de la factura se cancela cuando el SAT confirme la cancelación" in html and "Confirmar y enviar 2" in html
    assert not Cancellation.objects.exists()  # nothing sent on the way
    assert not SandboxStamp.objects.exclude(cancel_status="").exists()
    done = action(staff, "cancel_invoices", [small, large], step="confirm", motive="03", tickets="")
    assert done.status_code == 302
    assert sorted(Cancellation.objects.values_list("invoice_id", "motive", "tickets_action", "source")) == [
        (small.pk, "03", "void", "admin"), (large.pk, "03", "void", "admin")]
    assert set(Invoice.objects.filter(pk__in=[small.pk, large.pk]).values_list("status", flat=True)) == {"cancelling"}


def test_the_review_page_says_which_cannot_be_cancelled_and_why(staff, stamped):
    invoice = stamped("116.00")
    Invoice.objects.filter(pk=invoice.pk).update(issued_at=invoice.issued_at.replace(year=invoice.issued_at.year - 2))
    html = action(staff, "cancel_invoices", [invoice], step="review", motive="02").content.decode()
    assert "No se puede cancelar:" in html and "el plazo terminó el 31 de marzo de" in html
    assert "Ninguna de estas facturas se puede cancelar" in html


def test_staff_of_another_merchant_cannot_cancel_it(stamped, other_merchant, make_staff):
    invoice = stamped("116.00")
    intruder = Client()
    intruder.force_login(make_staff(other_merchant, "intruso"))
    for step in ("", "review", "confirm"):
        response = action(intruder, "cancel_invoices", [invoice], step=step, motive="02")
        assert invoice.receptor_rfc not in response.content.decode()
    response = action(intruder, "reissue_invoice", [invoice], step="confirm", rfc="XIQB891116QE4",
                      name="BERENICE XIMO QUEZADA", tax_regime="612", postal_code="26015", cfdi_use="G03")
    assert invoice.receptor_rfc not in response.content.decode()
    assert not Cancellation.objects.exists() and Invoice.objects.count() == 1
    assert Invoice.objects.get(pk=invoice.pk).status == "stamped"


def test_reissue_from_the_admin(staff, stamped):
    invoice = stamped("116.00")
    page = action(staff, "reissue_invoice", [invoice])
    html = page.content.decode()
    assert "No requiere aceptación" in html and "Se puede cancelar hasta el" in html
    assert 'value="CACX7605101P8"' in html  # the current data to correct
    bad = action(staff, "reissue_invoice", [invoice], step="confirm", rfc="CACX7605101P8", name="XOCHILT CASAS CHAVEZ",
                 tax_regime="612", postal_code="36257", cfdi_use="G03")
    assert "no hay nada que corregir" in bad.content.decode()
    done = action(staff, "reissue_invoice", [invoice], step="confirm", rfc="XIQB891116QE4",
                  name="BERENICE XIMO QUEZADA", tax_regime="612", postal_code="26015", cfdi_use="G03",
                  emails="b@example.com")
    assert done.status_code == 302
    c = Cancellation.objects.get()
    assert (c.status, c.motive, c.source, c.replacement.receptor_rfc) == ("waiting", "01", "admin", "XIQB891116QE4")


def test_a_superuser_can_neither_delete_nor_edit_a_stamped_invoice(superuser_client, stamped):
    invoice = stamped("116.00")
    delete_url = f"{CHANGELIST}{invoice.pk}/delete/"
    assert superuser_client.get(delete_url).status_code == 403
    assert superuser_client.post(delete_url, {"post": "yes"}).status_code == 403
    response = action(superuser_client, "delete_selected", [invoice], post="yes")
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    change = superuser_client.get(f"{CHANGELIST}{invoice.pk}/change/").content.decode()
    assert 'name="receptor_rfc"' not in change and "cancelaciones" in change.lower()
    response = superuser_client.post(f"{CHANGELIST}{invoice.pk}/change/", {
        "receptor_rfc": "XAXX010101000", "receptor_name": "OTRO", "total": "1.00", "status": "pending",
        "ticket_links-TOTAL_FORMS": "0", "ticket_links-INITIAL_FORMS": "0",
        "relations-TOTAL_FORMS": "0", "relations-INITIAL_FORMS": "0",
        "cancellations-TOTAL_FORMS": "0", "cancellations-INITIAL_FORMS": "0"})
    assert response.status_code in (302, 200, 403)
    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.receptor_rfc, stored.receptor_name, stored.total, stored.status) == (
        invoice.receptor_rfc, invoice.receptor_name, invoice.total, "stamped")


def test_no_code_path_deletes_a_stamped_invoice(stamped):
    invoice = stamped("116.00")
    with pytest.raises(ProtectedError), transaction.atomic():
        invoice.delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).delete()
    assert Invoice.objects.filter(pk=invoice.pk).exists()
