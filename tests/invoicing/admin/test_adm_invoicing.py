"""Back office: CSD upload through the engine's checks, and merchant isolation of invoicing admin pages."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.models import Certificate, Invoice
from invoicing.services import invoice_issue


@pytest.fixture
def staff_client(client, merchant, make_staff):
    client.force_login(make_staff(merchant, "staff-a"))
    return client


@pytest.fixture
def other_staff_client(client, other_merchant, make_staff):
    client.force_login(make_staff(other_merchant, "staff-b"))
    return client


def _upload(client, cer, key, password):
    return client.post("/admin/invoicing/certificate/add/", {
        "cer_file": SimpleUploadedFile("a.cer", cer), "key_file": SimpleUploadedFile("a.key", key),
        "key_password": password,
    })


def test_staff_uploads_a_csd_for_their_own_merchant(staff_client, merchant):
    cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
    response = _upload(staff_client, cer, key, password)
    assert response.status_code == 302, response.content.decode()[:2000]
    certificate = Certificate.objects.get()
    assert certificate.merchant == merchant and certificate.is_active and bytes(certificate.key_der) == key


def test_wrong_password_is_explained_in_spanish_and_nothing_is_stored(staff_client, merchant):
    cer, key, _ = generate_test_csd(merchant.rfc, merchant.legal_name)
    response = _upload(staff_client, cer, key, "otra-cosa")
    assert response.status_code == 200
    assert "contraseña" in response.content.decode().lower()
    assert not Certificate.objects.exists()


def test_a_csd_of_another_rfc_is_refused(staff_client, merchant):
    cer, key, password = generate_test_csd("CACX7605101P8", "XOCHILT CASAS CHAVEZ")
    response = _upload(staff_client, cer, key, password)
    assert response.status_code == 200 and "CACX7605101P8" in response.content.decode()
    assert not Certificate.objects.exists()


def test_staff_of_another_merchant_sees_no_invoices_nor_certificates(other_staff_client, merchant, certificate,
                                                                     ticket, receptor):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    listing = other_staff_client.get("/admin/invoicing/invoice/")
    assert listing.status_code == 200 and receptor.name not in listing.content.decode()
    assert other_staff_client.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").status_code == 302
    assert other_staff_client.get(f"/admin/invoicing/certificate/{certificate.pk}/change/").status_code == 302
    certificates = other_staff_client.get("/admin/invoicing/certificate/")
    assert certificate.number not in certificates.content.decode()
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_staff_sees_their_own_invoice(staff_client, certificate, merchant, ticket, receptor):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert staff_client.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").status_code == 200
