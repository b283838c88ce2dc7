""""Corregir mis datos" from the invoice's page: RFC re-entered, the merchant's window, the reissue flow, both
documents emailed, rate-limited, refused while a cancellation is pending."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from invoicing.models import Cancellation, Invoice
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoices_stamp_queued

CORRECT = {"current_rfc": "cacx7605101p8", "rfc": "XIQB891116QE4", "name": "Berenice Ximo Quezada",
           "tax_regime": "612", "cfdi_use": "G03", "postal_code": "26015", "emails": "berenice@example.com"}


@pytest.fixture(autouse=True)
def fresh(settings, tmp_path):
    cache.clear()
    settings.INVOICE_STAMP_LINGER_MS = 0
    settings.MEDIA_ROOT = str(tmp_path / "media")
    yield
    cache.clear()


@pytest.fixture
def invoice(merchant, branch, make_ticket, certificate, receptor):
    issued = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, total=Decimal("116.00")).pk],
                           receptor=receptor)
    invoices_stamp_queued()
    issued.refresh_from_db()
    assert issued.status == "stamped"
    return issued


def page(invoice):
    return f"/{invoice.merchant.slug}/factura/{invoice.public_code}/"


def correction(invoice):
    return f"/{invoice.merchant.slug}/factura/{invoice.public_code}/correccion/"


def follow_up():
    from invoicing.tasks_cancel import follow_up_cancellations

    Cancellation.objects.update(next_check_at=None)
    follow_up_cancellations()


def test_the_invoice_page_offers_the_correction_within_the_month(client, invoice):
    html = client.get(page(invoice)).content.decode()
    assert "Corregir mis datos" in html and correction(invoice) in html
    last_day = (timezone.localtime(invoice.issued_at).date().replace(day=1) + dt.timedelta(days=32)).replace(day=1) \
        - dt.timedelta(days=1)
    assert f"hasta el {last_day.day} de " in html


def test_no_correction_when_the_merchant_does_not_allow_it_or_the_window_closed(client, invoice, merchant):
    merchant.self_correction_window = "off"
    merchant.save()
    assert "Corregir mis datos" not in client.get(page(invoice)).content.decode()
    assert "no permite corregir" in client.post(correction(invoice), CORRECT).content.decode()
    merchant.self_correction_window, merchant.self_correction_days = "days", 3
    merchant.save()
    Invoice.objects.filter(pk=invoice.pk).update(stamped_at=timezone.now() - dt.timedelta(days=4))
    assert "Corregir mis datos" not in client.get(page(invoice)).content.decode()
    response = client.post(correction(invoice), CORRECT)
    assert response.status_code == 409 and "El plazo para corregir tus datos terminó" in response.content.decode()
    assert not Cancellation.objects.exists()


def test_the_wrong_rfc_is_refused_and_nothing_is_issued(client, invoice):
    response = client.post(correction(invoice), {**CORRECT, "current_rfc": "XAXX010101000"})
    assert response.status_code == 400
    assert "Ese RFC no es el de esta factura" in response.content.decode()
    assert Invoice.objects.count() == 1 and not Cancellation.objects.exists()


def test_bad_new_data_is_explained_in_spanish(client, invoice):
    response = client.post(correction(invoice), {**CORRECT, "cfdi_use": "D01", "rfc": "EKU9003173C9",
                                                 "name": "ESCUELA KEMPER URGATE", "tax_regime": "601"})
    assert response.status_code == 400 and "no es para una persona moral" in response.content.decode()
    assert Invoice.objects.count() == 1


def test_a_correction_replaces_the_invoice_and_both_documents_are_emailed(client, invoice):
    from invoicing.tasks import deliver_documents
    from invoicing.tasks_cancel import cancelled_documents

    response = client.post(correction(invoice), CORRECT)
    c = Cancellation.objects.get()
    assert (c.status, c.source, c.motive) == ("waiting", "portal", "01")
    replacement = c.replacement
    assert response.status_code == 302 and response.url == page(replacement) + "?corregida=1"
    assert "Corregiste tus datos" in client.get(page(invoice)).content.decode()
    invoices_stamp_queued()
    replacement.refresh_from_db()
    assert replacement.status == "stamped" and replacement.receptor_rfc == "XIQB891116QE4"
    deliver_documents(False)  # what the deliver queue's worker does after stamping
    follow_up()
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    cancelled_documents(c.pk)  # the task the cancellation queued
    to_replacement = [m for m in mail.outbox if "berenice@example.com" in m.to and "cancelada" not in m.subject]
    notice = [m for m in mail.outbox if "cancelada y sustituida" in m.subject]
    assert len(to_replacement) == 1 and str(replacement.uuid).upper() in to_replacement[0].body
    assert len(notice) == 1 and set(notice[0].to) == {"xochilt@example.com", "berenice@example.com"}
    uuid = str(invoice.uuid).upper()
    assert {name.rsplit("_", 1)[-1] for name, _, _ in notice[0].attachments} == {f"{uuid}.xml", "CANCELADA.pdf"}
    html = client.get(page(invoice)).content.decode()
    assert "Factura cancelada" in html and "la sustituye la factura" in html and page(replacement) in html
    assert "Descargar PDF (cancelada)" in html


def test_a_correction_while_a_cancellation_is_pending_is_refused(client, invoice, settings):
    from invoicing.services.cancel import cancellation_request

    cancellation_request(merchant=invoice.merchant, invoice_id=invoice.pk, motive="02")
    response = client.post(correction(invoice), CORRECT)
    # The invoice is "cancelling" now: the page says why nothing can be corrected.
    assert response.status_code == 409
    assert "tiene una cancelación en proceso" in response.content.decode()
    assert Invoice.objects.count() == 1 and Cancellation.objects.count() == 1


def test_corrections_are_rate_limited(client, invoice, settings, still_clock):
    settings.PORTAL_RATE_LIMITS = {"correction_ip": (2, 3600)}
    for rfc in ("AAAA000101AA1", "AAAA000101AA2"):
        assert client.post(correction(invoice), {**CORRECT, "current_rfc": rfc}).status_code == 400
    response = client.post(correction(invoice), CORRECT)
    assert response.status_code == 429 and not Cancellation.objects.exists()


def test_another_merchants_page_does_not_open_it(client, invoice, other_merchant):
    url = f"/{other_merchant.slug}/factura/{invoice.public_code}/correccion/"
    assert client.get(url).status_code == 404
    assert client.post(url, CORRECT).status_code == 404
    assert not Cancellation.objects.exists()
