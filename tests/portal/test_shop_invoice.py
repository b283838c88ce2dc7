"""Progress page, status endpoint, downloads, failure and retry, already-invoiced access, resend, isolation."""

import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from invoicing.models import Invoice
from invoicing.services.issue import ReceptorData, invoice_issue
from tickets.models import Ticket

RECEPTOR = ReceptorData(rfc="XIQB891116QE4", name="KARLA FUENTE NOLASCO", tax_regime="605",
                        postal_code="01160", cfdi_use="S01", emails=("karla@example.com",))


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


@pytest.fixture
def invoice(merchant, branch, make_ticket):
    ticket = make_ticket(branch, number="P1", total=Decimal("116.00"))
    return invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=RECEPTOR)


def stamp(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.STAMPED, uuid=uuid.uuid4(),
                                                 stamped_at=timezone.now())


def test_pending_invoice_page_refreshes_itself_with_and_without_javascript(client, merchant, invoice):
    html = client.get(f"/{merchant.slug}/factura/{invoice.public_code}/").content.decode()
    assert "Estamos generando tu factura" in html
    assert '<noscript><meta http-equiv="refresh"' in html and "progress.js" in html
    assert f'data-poll="/{merchant.slug}/factura/{invoice.public_code}/estado"' in html


def test_status_endpoint_answers_json(client, merchant, invoice):
    url = f"/{merchant.slug}/factura/{invoice.public_code}/estado"
    assert client.get(url).json() | {"message": ""} == {"status": "pending", "done": False, "slow": False,
                                                         "message": ""}
    stamp(invoice)
    assert client.get(url).json() == {"status": "stamped", "done": True, "slow": False, "message": ""}


def test_stamped_invoice_offers_downloads_and_says_where_it_was_sent(client, merchant, invoice):
    stamp(invoice)
    html = client.get(f"/{merchant.slug}/factura/{invoice.public_code}/").content.decode()
    assert "¡Tu factura está lista!" in html and "Te la enviamos a ka***@example.com" in html
    assert "progress.js" not in html and "refresh" not in html
    try:
        from django.urls import reverse

        xml = reverse("invoice-public-download", args=(invoice.public_code, "xml"))
    except Exception:  # the download URLs land with the documents work
        pytest.skip("invoice-public-download is not routed yet")
    assert xml in html


def test_failed_invoice_explains_and_the_fix_keeps_what_was_typed(client, merchant, invoice):
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.FAILED, last_error_code="CFDI40145", last_error_permanent=True,
        last_error_message="El nombre del receptor no coincide con el registrado en el SAT para ese RFC.")
    Ticket.objects.filter(invoices=invoice).update(status=Ticket.Status.OPEN)  # released by the pipeline
    html = client.get(f"/{merchant.slug}/factura/{invoice.public_code}/").content.decode()
    assert "No pudimos generar tu factura" in html and "no coincide con el registrado" in html
    assert "exactamente como aparece en tu Constancia" in html
    response = client.post(f"/{merchant.slug}/factura/{invoice.public_code}/corregir")
    assert response.url == f"/{merchant.slug}/datos/"
    page = client.get(response.url).content.decode()
    assert 'value="KARLA FUENTE NOLASCO"' in page and 'value="XIQB891116QE4"' in page and "P1" in page


def test_already_invoiced_shows_the_invoice_after_the_right_rfc(client, merchant, invoice):
    ticket = invoice.tickets.get()
    url = f"/{merchant.slug}/facturado/{ticket.public_code}/"
    page = client.get(url).content.decode()
    assert invoice.public_code not in page
    wrong = client.post(url, {"rfc": "EKU9003173C9"})
    assert wrong.status_code == 400 and "Ese RFC no es el de la factura" in wrong.content.decode()
    assert invoice.public_code not in wrong.content.decode()
    right = client.post(url, {"rfc": "xiqb891116qe4"})
    assert right.url == f"/{merchant.slug}/factura/{invoice.public_code}/"


def test_rfc_attempts_are_rate_limited(client, merchant, invoice, settings):
    settings.PORTAL_RATE_LIMITS = {"rfc_ip": (2, 600)}
    url = f"/{merchant.slug}/facturado/{invoice.tickets.get().public_code}/"
    client.post(url, {"rfc": "AAAA000101AA1"})
    client.post(url, {"rfc": "AAAA000101AA2"})
    assert client.post(url, {"rfc": "XIQB891116QE4"}).status_code == 429


def test_resend_goes_to_the_email_on_file(client, merchant, invoice, queued_tasks,
                                          django_capture_on_commit_callbacks):
    stamp(invoice)
    queued_tasks.clear()
    ticket = invoice.tickets.get()
    page = client.get(f"/{merchant.slug}/facturado/{ticket.public_code}/").content.decode()
    assert "ka***@example.com" in page and "karla@example.com" not in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/{merchant.slug}/facturado/{ticket.public_code}/reenviar", {"to": "evil@x.com"})
    # Queued, not sent inside the request (the PDF may have to be rendered first).
    # to None: the worker sends it to the receptor's addresses on file, never to one typed here.
    assert queued_tasks == [("deliver", "invoicing.tasks.send_invoice_email", (invoice.pk, None, "portal"))]
    assert invoice.public_code not in response.url
    assert "te la reenviamos a ka***@example.com" in client.get(response.url).content.decode()
    assert "te la reenviamos a" not in client.get(response.url).content.decode()  # once, not on every reload


def test_merchant_a_pages_never_show_merchant_b_invoices(client, merchant, other_merchant, other_branch,
                                                          make_ticket):
    theirs_ticket = make_ticket(other_branch, number="Q1", total=Decimal("5.00"))
    theirs = invoice_issue(merchant=other_merchant, ticket_ids=[theirs_ticket.pk], receptor=RECEPTOR)
    stamp(theirs)
    code = theirs.public_code
    for url in (f"/{merchant.slug}/factura/{code}/", f"/{merchant.slug}/factura/{code}/estado",
                f"/{merchant.slug}/facturado/{theirs_ticket.public_code}/"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/{merchant.slug}/factura/{code}/reenviar").status_code == 404
    assert client.post(f"/{merchant.slug}/factura/{code}/corregir").status_code == 404
    assert client.get(f"/{other_merchant.slug}/factura/{code}/").status_code == 200
