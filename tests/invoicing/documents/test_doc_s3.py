"""Stored files in an S3-compatible bucket (moto's S3 server on loopback, configured from STORAGE_S3_* as in
production): invoice PDFs, accounting exports and logos are written to the bucket and read back through the
app's merchant-scoped downloads; nothing lands under MEDIA_ROOT."""

import io
import zipfile

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from rest_framework.test import APIClient

from invoicing.models import Invoice
from invoicing.services.documents import invoice_pdf_render
from portal.storage import default_storage_from_env
from tickets.services import api_key_create


def _api(merchant, scopes=("invoices",)):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + api_key_create(merchant=merchant, name="erp",
                                                                     scopes=list(scopes))[1])
    return client


def _media_files(settings):
    from pathlib import Path

    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_s3_the_pdf_is_stored_in_the_bucket_and_downloaded_through_the_app(s3_storage, settings, branch,
                                                                             make_stamped_invoice, other_merchant):
    invoice = make_stamped_invoice(branch)
    invoice_pdf_render(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    stored = s3_storage.objects()
    assert list(stored) == [invoice.pdf.name] and invoice.pdf.name.startswith("invoices/")
    assert stored[invoice.pdf.name].startswith(b"%PDF")

    api = _api(branch.merchant)
    pdf = api.get(f"/api/v1/invoices/{invoice.pk}/pdf")
    assert pdf.status_code == 200 and pdf.content == stored[invoice.pdf.name]
    xml = api.get(f"/api/v1/invoices/{invoice.pk}/xml")
    assert xml.status_code == 200 and xml.content == bytes(invoice.stamped_xml)  # the XML lives in the row
    shopper = Client().get(f"/f/{invoice.public_code}/zip")
    with zipfile.ZipFile(io.BytesIO(shopper.content)) as zf:
        assert [zf.read(n) for n in sorted(zf.namelist())] == [stored[invoice.pdf.name], bytes(invoice.stamped_xml)]
    # Scoped as ever: another merchant's key does not reach it, and the bucket's URL is never handed out.
    assert _api(other_merchant).get(f"/api/v1/invoices/{invoice.pk}/pdf").status_code == 404
    assert s3_storage.name not in pdf.content.decode("latin-1") and "X-Amz" not in str(pdf.headers)
    assert _media_files(settings) == []


def test_s3_a_pdf_missing_from_the_bucket_is_rendered_again(s3_storage, settings, branch, make_stamped_invoice):
    invoice = make_stamped_invoice(branch)
    invoice_pdf_render(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    lost = invoice.pdf.name
    s3_storage.client.delete_object(Bucket=s3_storage.name, Key=lost)
    response = _api(branch.merchant).get(f"/api/v1/invoices/{invoice.pk}/pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    invoice.refresh_from_db()
    assert list(s3_storage.objects()) == [invoice.pdf.name]
    assert _media_files(settings) == []


def test_s3_two_saves_of_one_name_never_overwrite(s3_storage):
    """The PDF race (two workers render one invoice) relies on it: the loser deletes its own copy, by its name."""
    first = default_storage.save("invoices/2026/12/A.pdf", ContentFile(b"%PDF first"))
    second = default_storage.save("invoices/2026/12/A.pdf", ContentFile(b"%PDF second"))
    assert first != second
    default_storage.delete(second)
    assert s3_storage.objects() == {first: b"%PDF first"}


def test_s3_an_export_is_stored_in_the_bucket_and_streamed_by_the_api(s3_storage, settings, merchant, branch,
                                                                        certificate, make_ticket, receptor,
                                                                        other_merchant):
    from django.utils import timezone

    from invoicing.services import invoice_issue
    from invoicing.services.exports import export_request, export_run
    from invoicing.services.stamping import invoices_stamp_queued

    settings.INVOICE_STAMP_LINGER_MS = 0
    invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="S3-1").pk], receptor=receptor)
    invoices_stamp_queued()
    today = timezone.localdate(timezone.now(), merchant.tzinfo)
    export = export_request(merchant=merchant, first_day=today.replace(day=1), last_day=today, actor="contadora")
    export_run(export_id=export.pk)
    export.refresh_from_db()
    stored = s3_storage.objects()[export.file.name]
    response = _api(merchant).get(f"/api/v1/exports/{export.pk}/download")
    assert response.status_code == 200, response.content
    assert b"".join(response.streaming_content) == stored
    assert _api(other_merchant).get(
        f"/api/v1/exports/{export.pk}/download").status_code == 404
    assert _media_files(settings) == []


def test_s3_a_logo_is_served_by_the_app_not_by_the_bucket(s3_storage, settings, merchant):
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (60, 20), (11, 122, 95)).save(out, format="PNG")
    merchant.logo.save("logos/abc123.png", ContentFile(out.getvalue()))
    assert merchant.logo_url == f"/media/{merchant.logo.name}"
    response = Client().get(merchant.logo_url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content == s3_storage.objects()[merchant.logo.name]
    assert _media_files(settings) == []


def test_s3_settings_refuse_half_a_configuration(monkeypatch):
    monkeypatch.delenv("STORAGE_S3_BUCKET", raising=False)
    monkeypatch.setenv("STORAGE_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    with pytest.raises(ImproperlyConfigured, match="STORAGE_S3_BUCKET"):
        default_storage_from_env()
    monkeypatch.setenv("STORAGE_S3_BUCKET", "facturas")
    monkeypatch.setenv("STORAGE_S3_ACCESS_KEY_ID", "AKIA")
    monkeypatch.delenv("STORAGE_S3_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="STORAGE_S3_SECRET_ACCESS_KEY"):
        default_storage_from_env()


def test_s3_without_a_bucket_files_stay_under_media_root(monkeypatch):
    for key in ("STORAGE_S3_BUCKET", "STORAGE_S3_ENDPOINT_URL", "DEFAULT_FILE_STORAGE"):
        monkeypatch.delenv(key, raising=False)
    assert default_storage_from_env() == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_s3_every_file_field_uses_the_default_storage():
    """So STORAGES["default"] alone decides where every stored file goes."""
    from django.apps import apps
    from django.db import models

    fields = [f for m in apps.get_models() for f in m._meta.get_fields() if isinstance(f, models.FileField)]
    assert Invoice._meta.get_field("pdf") in fields
    assert all(f.storage is default_storage for f in fields)


def test_s3_a_store_that_does_not_answer_is_a_503_not_a_500(s3_storage, settings, monkeypatch, branch,
                                                            make_stamped_invoice):
    invoice = make_stamped_invoice(branch)
    invoice_pdf_render(invoice_id=invoice.pk)
    monkeypatch.setenv("STORAGE_S3_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("STORAGE_S3_CONNECT_TIMEOUT", "1")
    settings.STORAGES = {**settings.STORAGES, "default": default_storage_from_env()}
    response = _api(branch.merchant).get(f"/api/v1/invoices/{invoice.pk}/pdf")
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["error"]["code"] == "service_unavailable"
    page = Client().get(f"/f/{invoice.public_code}/pdf")
    assert page.status_code == 503
    # The XML is in the database: still served.
    assert _api(branch.merchant).get(f"/api/v1/invoices/{invoice.pk}/xml").status_code == 200
