"""Stored PDF, email with XML + PDF, and the ZIP."""

import io
import zipfile

import pytest
from django.core import mail

from infra.models import Event
from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services.documents import (
    document_basename,
    invoice_email_send,
    invoice_pdf_render,
    invoice_zip,
)


@pytest.fixture
def invoice(branch, make_stamped_invoice, media_root):
    return make_stamped_invoice(branch, emails=["cliente@example.com", "compras@example.com"])


def _name(invoice):
    return f"EKU9003173C9_{invoice.serie}{invoice.folio}_{str(invoice.uuid).upper()}"


def test_doc_pdf_render_stores_the_pdf_once(invoice):
    invoice_pdf_render(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    first = invoice.pdf.name
    assert first.endswith(f"{_name(invoice)}.pdf")
    assert invoice.pdf.storage.open(first).read().startswith(b"%PDF")
    invoice_pdf_render(invoice_id=invoice.pk)  # already there: nothing happens
    invoice.refresh_from_db()
    assert invoice.pdf.name == first


def test_doc_pdf_render_with_force_replaces_the_file(invoice):
    invoice_pdf_render(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    old = invoice.pdf.name
    invoice_pdf_render(invoice_id=invoice.pk, force=True)
    invoice.refresh_from_db()
    assert invoice.pdf.storage.exists(invoice.pdf.name)
    if invoice.pdf.name != old:
        assert not invoice.pdf.storage.exists(old)


def test_doc_pdf_render_again_when_the_stored_file_was_lost(invoice):
    invoice_pdf_render(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    invoice.pdf.storage.delete(invoice.pdf.name)
    invoice_pdf_render(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    assert invoice.pdf.storage.exists(invoice.pdf.name)


def test_doc_pdf_render_refuses_an_unstamped_invoice(branch, media_root):
    pending = Invoice.objects.create(merchant=branch.merchant, branch=branch, serie="F", receptor_rfc="XAXX010101000",
                                     receptor_name="X", receptor_tax_regime="616", receptor_postal_code="06600",
                                     receptor_cfdi_use="S01")
    with pytest.raises(InvoicingError) as exc:
        invoice_pdf_render(invoice_id=pending.pk)
    assert exc.value.code == "invoice_not_stamped"


def test_doc_zip_holds_the_xml_and_the_pdf_named_after_rfc_folio_and_uuid(invoice):
    with zipfile.ZipFile(io.BytesIO(invoice_zip(invoice))) as zf:
        names = sorted(zf.namelist())
        assert names == [f"{_name(invoice)}.pdf", f"{_name(invoice)}.xml"]
        assert zf.read(f"{_name(invoice)}.xml") == bytes(invoice.stamped_xml)
        assert zf.read(f"{_name(invoice)}.pdf").startswith(b"%PDF")
    assert document_basename(invoice) == _name(invoice)


def test_doc_email_goes_to_the_receptor_in_spanish_with_xml_and_pdf(invoice):
    sent = invoice_email_send(invoice_id=invoice.pk)
    assert sent == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["cliente@example.com", "compras@example.com"]
    assert message.subject == f"Tu factura F-{invoice.folio} de ESCUELA KEMPER URGATE"
    assert "Te enviamos tu factura" in message.body and str(invoice.uuid).upper() in message.body
    assert "sin validez fiscal" in message.body  # sandbox stamp says so
    html, mime = message.alternatives[0]
    assert mime == "text/html" and "Descargar PDF" in html and "#0B5FFF" in html
    attachments = {name: (body, kind) for name, body, kind in message.attachments}
    assert attachments[f"{_name(invoice)}.xml"] == (bytes(invoice.stamped_xml), "application/xml")
    assert attachments[f"{_name(invoice)}.pdf"][0].startswith(b"%PDF")
    assert f"/f/{invoice.public_code}/pdf" in message.body
    event = Event.objects.get(entity="invoice", object_id=invoice.pk, data__kind="email_sent")
    assert event.from_status == event.to_status == "stamped"
    assert "cliente@example.com" in event.reason


def test_doc_email_resend_to_another_address(invoice):
    invoice_email_send(invoice_id=invoice.pk)
    sent = invoice_email_send(invoice_id=invoice.pk, to=["contador@example.com"], actor="staff")
    assert sent == 1
    assert mail.outbox[-1].to == ["contador@example.com"]
    assert Event.objects.filter(entity="invoice", object_id=invoice.pk, data__kind="email_sent").count() == 2


def test_doc_automatic_email_is_not_sent_twice_when_the_task_retries(invoice):
    assert invoice_email_send(invoice_id=invoice.pk, skip_if_sent=True) == 1
    assert invoice_email_send(invoice_id=invoice.pk, skip_if_sent=True) == 0
    assert len(mail.outbox) == 1


def test_doc_email_without_receptor_addresses_sends_nothing(branch, make_stamped_invoice, media_root):
    invoice = make_stamped_invoice(branch, emails=[])
    assert invoice_email_send(invoice_id=invoice.pk) == 0
    assert mail.outbox == []


@pytest.mark.parametrize("to", [["no-es-correo"], []])
def test_doc_email_resend_refuses_bad_addresses(invoice, to):
    with pytest.raises(InvoicingError) as exc:
        invoice_email_send(invoice_id=invoice.pk, to=to)
    assert exc.value.status == 400
    assert mail.outbox == []
