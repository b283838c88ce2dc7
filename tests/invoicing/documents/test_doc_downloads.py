"""Shoppers' downloads by random code, and the admin's by id (scoped to the staff user's merchant)."""

import io
import zipfile

import pytest
from django.core import mail
from django.urls import reverse

from invoicing.models import Invoice


@pytest.fixture
def invoice(branch, make_stamped_invoice, media_root):
    return make_stamped_invoice(branch)


def _name(invoice):
    return f"EKU9003173C9_{invoice.serie}{invoice.folio}_{str(invoice.uuid).upper()}"


@pytest.mark.parametrize(("fmt", "content_type", "magic"), [
    ("xml", "application/xml", b"<?xml"),
    ("pdf", "application/pdf", b"%PDF"),
    ("zip", "application/zip", b"PK"),
])
def test_doc_shopper_downloads_by_public_code(client, invoice, fmt, content_type, magic):
    url = reverse("invoice-public-download", args=(invoice.public_code, fmt))
    assert url == f"/f/{invoice.public_code}/{fmt}"
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{_name(invoice)}.{fmt}"'
    assert response.content.startswith(magic)


def test_doc_shopper_pdf_is_rendered_on_the_fly_and_kept(client, invoice):
    assert not invoice.pdf
    response = client.get(f"/f/{invoice.public_code}/pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    invoice.refresh_from_db()
    assert invoice.pdf.name.endswith(".pdf")


def test_doc_shopper_zip_holds_both_files(client, invoice):
    response = client.get(f"/f/{invoice.public_code}/zip")
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert sorted(names) == [f"{_name(invoice)}.pdf", f"{_name(invoice)}.xml"]


@pytest.mark.parametrize("path", ["/f/no-existe-este-codigo/xml", "/f/{code}/docx", "/f/{id}/xml"])
def test_doc_shopper_unknown_code_or_format_is_404(client, invoice, path):
    assert client.get(path.format(code=invoice.public_code, id=invoice.pk)).status_code == 404


@pytest.mark.parametrize("status", [Invoice.Status.PENDING, Invoice.Status.SEALED, Invoice.Status.FAILED])
def test_doc_shopper_unstamped_invoice_is_404(client, invoice, status):
    Invoice.objects.filter(pk=invoice.pk).update(status=status)
    for fmt in ("xml", "pdf", "zip"):
        assert client.get(f"/f/{invoice.public_code}/{fmt}").status_code == 404


def _admin_url(invoice, fmt):
    return reverse("admin:invoicing_invoice_document", args=(invoice.pk, fmt))


def test_doc_admin_staff_downloads_their_merchant_invoice(staff_client, invoice):
    client = staff_client(invoice.merchant)
    for fmt, content_type in (("xml", "application/xml"), ("pdf", "application/pdf"), ("zip", "application/zip")):
        response = client.get(_admin_url(invoice, fmt))
        assert response.status_code == 200
        assert response["Content-Type"] == content_type
        assert f'filename="{_name(invoice)}.{fmt}"' in response["Content-Disposition"]


def test_doc_admin_change_page_links_the_downloads(staff_client, invoice):
    client = staff_client(invoice.merchant)
    page = client.get(reverse("admin:invoicing_invoice_change", args=(invoice.pk,))).content.decode()
    for fmt in ("xml", "pdf", "zip"):
        assert _admin_url(invoice, fmt) in page
    assert "Descargar PDF" in page


def test_doc_admin_other_merchant_staff_gets_404(staff_client, invoice, other_merchant):
    client = staff_client(other_merchant, username="otro")
    for fmt in ("xml", "pdf", "zip"):
        assert client.get(_admin_url(invoice, fmt)).status_code == 404


def test_doc_admin_anonymous_is_sent_to_login(client, invoice):
    response = client.get(_admin_url(invoice, "xml"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_doc_admin_resend_action_emails_the_receptor(staff_client, invoice):
    client = staff_client(invoice.merchant)
    response = client.post(reverse("admin:invoicing_invoice_changelist"),
                           {"action": "resend_email", "_selected_action": [invoice.pk]}, follow=True)
    assert response.status_code == 200
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["cliente@example.com"]
    assert "Se reenviaron 1 factura(s)" in response.content.decode()


def test_doc_admin_resend_action_cannot_reach_another_merchant(staff_client, invoice, other_merchant):
    client = staff_client(other_merchant, username="otro")
    client.post(reverse("admin:invoicing_invoice_changelist"),
                {"action": "resend_email", "_selected_action": [invoice.pk]}, follow=True)
    assert mail.outbox == []
