"""A cancelled invoice's PDF says so (date, motive, replacement); its downloads keep working."""

import io
import zipfile

import pytest
from pypdf import PdfReader
from rest_framework.test import APIClient

from invoicing.models import Cancellation
from invoicing.services.cancel import cancellation_advance, cancellation_request
from invoicing.services.documents import invoice_pdf_bytes
from invoicing.services.reissue import invoice_reissue
from invoicing.tasks_cancel import cancelled_documents
from tickets.services import api_key_create


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def pdf_text(body: bytes) -> str:
    return " ".join(" ".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(body)).pages)


def test_the_pdf_of_a_replaced_invoice_says_cancelled_with_date_motive_and_replacement(stamped, stamp_all, follow_up,
                                                                                      client):
    original = stamped("116.00")
    before = pdf_text(invoice_pdf_bytes(original))  # stored, as after stamping
    assert "CANCELADO" not in before
    c = invoice_reissue(merchant=original.merchant, invoice_id=original.pk,
                        changes={"rfc": "XIQB891116QE4", "name": "BERENICE XIMO QUEZADA", "postal_code": "26015"})
    stamp_all()
    assert follow_up() == ["cancelled"]
    cancelled_documents(c.pk)  # what the task after the cancellation does
    original.refresh_from_db()
    c.refresh_from_db()
    text = pdf_text(invoice_pdf_bytes(original))
    assert "CFDI CANCELADO ante el SAT el" in text
    assert "Motivo 01" in text and "Comprobante emitido con errores con relación" in text
    assert str(c.replacement.uuid).upper() in text.replace(" ", "")
    assert c.finished_at.astimezone(original.merchant.tzinfo).strftime("%d/%m/%Y") in text
    for fmt, kind in (("pdf", "application/pdf"), ("xml", "application/xml"), ("zip", "application/zip")):
        response = client.get(f"/f/{original.public_code}/{fmt}")
        assert response.status_code == 200, fmt
        assert response["Content-Type"].startswith(kind)
    archive = zipfile.ZipFile(io.BytesIO(body_of(client.get(f"/f/{original.public_code}/zip"))))
    assert "CFDI CANCELADO" in pdf_text(archive.read(next(n for n in archive.namelist() if n.endswith(".pdf"))))


def test_the_api_still_downloads_a_cancelled_invoice(stamped, merchant):
    invoice = stamped("116.00")
    cancellation_advance(cancellation_id=cancellation_request(merchant=merchant, invoice_id=invoice.pk,
                                                              motive="03").pk)
    cancelled_documents(Cancellation.objects.get().pk)
    _, plain = api_key_create(merchant=merchant, name="ERP", scopes=["invoices"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    pdf = api.get(f"/api/v1/invoices/{invoice.pk}/pdf")
    assert pdf.status_code == 200
    text = pdf_text(body_of(pdf))
    assert "CFDI CANCELADO" in text and "Motivo 03" in text and "Sustituido" not in text
    assert api.get(f"/api/v1/invoices/{invoice.pk}/xml").status_code == 200
