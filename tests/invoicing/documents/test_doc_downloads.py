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


def test_doc_admin_resend_action_emails_the_receptor(staff_client, invoice, queued_tasks,
                                                   django_capture_on_commit_callbacks):
    client = staff_client(invoice.merchant)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:invoicing_invoice_changelist"),
                               {"action": "resend_email", "_selected_action": [invoice.pk]}, follow=True)
    assert response.status_code == 200
    assert "Se reenviarán 1 factura(s)" in response.content.decode()
    assert mail.outbox == []  # queued: the PDF may have to be rendered first, never inside the request
    assert [(q, func) for q, func, _ in queued_tasks] == [("deliver", "invoicing.tasks.send_invoice_email")]
    queued_tasks.run()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["cliente@example.com"]


def test_doc_admin_resend_action_cannot_reach_another_merchant(staff_client, invoice, other_merchant):
    client = staff_client(other_merchant, username="otro")
    client.post(reverse("admin:invoicing_invoice_changelist"),
                {"action": "resend_email", "_selected_action": [invoice.pk]}, follow=True)
    assert mail.outbox == []


# --- large invoices: rendered in the background, never inside the request ---------------------------------


@pytest.fixture
def large(branch, make_stamped_invoice, media_root, settings, monkeypatch):
    """An invoice above INVOICE_PDF_LARGE_CONCEPTS whose PDF is not rendered yet; rendering it in the web
    process fails the test."""
    settings.INVOICE_PDF_LARGE_CONCEPTS = 3
    invoice = make_stamped_invoice(branch, lines=4, folio=500)

    def no_render_here(invoice):
        raise AssertionError("a large PDF was rendered inside the request")

    monkeypatch.setattr("invoicing.services.documents.render_invoice_pdf", no_render_here)
    return invoice


def _allow_render(monkeypatch):
    from invoicing.pdf import render_invoice_pdf

    monkeypatch.setattr("invoicing.services.documents.render_invoice_pdf", render_invoice_pdf)


@pytest.mark.parametrize("fmt", ["pdf", "zip"])
def test_doc_large_pdf_download_answers_202_in_spanish_and_queues_the_render(client, large, fmt, queued_tasks,
                                                                            monkeypatch,
                                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"/f/{large.public_code}/{fmt}")
    assert response.status_code == 202 and response["Retry-After"] == "5"
    page = response.content.decode()
    assert "Estamos generando tu PDF" in page and 'http-equiv="refresh" content="5"' in page
    assert [(q, func, args) for q, func, args in queued_tasks] == [
        ("bulk", "invoicing.tasks.deliver_documents", (True,))]
    _allow_render(monkeypatch)  # the bulk queue's worker renders it
    assert queued_tasks.run() == 1
    response = client.get(f"/f/{large.public_code}/{fmt}")
    assert response.status_code == 200 and response.content[:4] in (b"%PDF", b"PK\x03\x04")
    assert mail.outbox == []  # asked for a PDF: the delivery row was created for it, with no email owed


def test_doc_large_pdf_asked_twice_queues_one_render(client, large, queued_tasks,
                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(f"/f/{large.public_code}/pdf").status_code == 202
        assert client.get(f"/f/{large.public_code}/pdf").status_code == 202
    assert len(queued_tasks) == 1  # the lane's slot stays armed until its task starts


def test_doc_small_pdf_still_renders_inside_the_request(client, invoice, settings, monkeypatch):
    """Up to INVOICE_PDF_LARGE_CONCEPTS concepts the PDF takes about a second or less: rendered and kept."""
    settings.INVOICE_PDF_LARGE_CONCEPTS = 1
    response = client.get(f"/f/{invoice.public_code}/pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


def test_doc_admin_large_pdf_answers_202(staff_client, large, queued_tasks):
    response = staff_client(large.merchant).get(_admin_url(large, "pdf"))
    assert response.status_code == 202 and "Estamos generando tu PDF" in response.content.decode()


def test_doc_api_large_pdf_answers_202_json_with_retry_after(large, queued_tasks):
    from rest_framework.test import APIClient

    from tickets.services import api_key_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + api_key_create(merchant=large.merchant, name="ERP",
                                                                     scopes=["invoices"])[1])
    response = client.get(f"/api/v1/invoices/{large.pk}/pdf")
    assert response.status_code == 202 and response["Retry-After"] == "5"
    assert response.json() == {"status": "generating", "retry_after": 5,
                               "message": "Estamos generando tu PDF; estará listo en unos segundos."}
    assert client.get(f"/api/v1/invoices/{large.pk}/xml").status_code == 200  # the XML is always at hand


def test_doc_large_pdf_whose_stored_file_was_lost_is_rendered_again_in_the_background(
        client, large, queued_tasks, monkeypatch, django_capture_on_commit_callbacks):
    from invoicing.models import InvoiceDelivery
    from invoicing.services.delivery import invoice_deliver

    _allow_render(monkeypatch)
    InvoiceDelivery.objects.create(invoice=large, merchant=large.merchant, large=True, concepts=4,
                                   next_attempt_at=None)
    invoice_deliver(invoice_id=large.pk)  # rendered and stored after stamping
    large.refresh_from_db()
    large.pdf.storage.delete(large.pdf.name)  # the storage lost it
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(f"/f/{large.public_code}/pdf").status_code == 202
    assert InvoiceDelivery.objects.get(pk=large.pk).status == "pending"
    assert queued_tasks.run() == 1
    assert client.get(f"/f/{large.public_code}/pdf").content.startswith(b"%PDF")
