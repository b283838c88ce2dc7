""""Mis facturas": one-time emailed links, the same answer for any pair, per-merchant scope, rate limits."""

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from invoicing.models import Invoice
from invoicing.services.issue import ReceptorData, invoice_issue
from portal.models import InvoiceAccessRequest
from portal.shopper.my_invoices import token_hash

RFC = "XIQB891116QE4"
RECEPTOR = ReceptorData(rfc=RFC, name="KARLA FUENTE NOLASCO", tax_regime="605", postal_code="01160",
                        cfdi_use="S01", emails=("karla@example.com",))


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


def stamped(merchant, branch, make_ticket, number, receptor=RECEPTOR):
    ticket = make_ticket(branch, number=number, total=Decimal("116.00"))
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.STAMPED, uuid=uuid.uuid4(),
                                                 stamped_at=timezone.now(), stamped_xml=b"<cfdi/>")
    return Invoice.objects.get(pk=invoice.pk)


@pytest.fixture
def mine(merchant, branch, make_ticket):
    return stamped(merchant, branch, make_ticket, "M1")


@pytest.fixture
def elsewhere(other_merchant, other_branch, make_ticket):
    """The same shopper's invoice at another merchant."""
    return stamped(other_merchant, other_branch, make_ticket, "O1")


def ask(client, merchant, rfc=RFC, email="karla@example.com", **extra):
    return client.post(f"/{merchant.slug}/mis-facturas/", {"rfc": rfc, "email": email}, **extra)


def link_from(message) -> str:
    return re.search(r"http\S+/mis-facturas/acceso/\S+", message.body).group(0)


def open_link(client, url):
    path = url.split("://", 1)[1].split("/", 1)[1]
    return client.post("/" + path)


def request_link(client, merchant, queued_tasks, capture, **kwargs) -> str | None:
    with capture(execute=True):
        response = ask(client, merchant, **kwargs)
    assert response.status_code == 302
    sent_before = len(mail.outbox)
    queued_tasks.run(len(queued_tasks) - 1)
    return link_from(mail.outbox[-1]) if len(mail.outbox) > sent_before else None


def test_the_link_opens_the_list_once_with_downloads_checked_against_it(client, merchant, mine, elsewhere,
                                                                         queued_tasks, django_capture_on_commit_callbacks):
    url = request_link(client, merchant, queued_tasks, django_capture_on_commit_callbacks)
    assert url is not None and [t[0] for t in queued_tasks] == ["deliver"]
    token = url.rstrip("/").rsplit("/", 1)[1]
    row = InvoiceAccessRequest.objects.get()
    assert row.token_hash == token_hash(token) and token not in str(row.__dict__)  # only the hash is stored
    assert row.email == ""  # the address is forgotten once the link is out

    # GET shows a button (mail scanners do not use the link up); POST opens the list.
    assert client.get("/" + url.split("/", 3)[3]).status_code == 200
    response = open_link(client, url)
    assert response.status_code == 302 and response.url == f"/{merchant.slug}/mis-facturas/lista/"
    html = client.get(response.url).content.decode()
    assert mine.public_code in html and str(mine.uuid).upper() in html
    assert elsewhere.public_code not in html  # the other merchant's invoice of the same RFC is never listed
    download = client.get(f"/{merchant.slug}/mis-facturas/{mine.public_code}/xml")
    assert download.status_code == 200 and download["Content-Disposition"].endswith('.xml"')
    # Downloads are checked against the scope: not another merchant's invoice, not through another slug.
    assert client.get(f"/{merchant.slug}/mis-facturas/{elsewhere.public_code}/xml").status_code == 404
    assert client.get(f"/{elsewhere.merchant.slug}/mis-facturas/{elsewhere.public_code}/xml").status_code == 404
    assert client.get(f"/{elsewhere.merchant.slug}/mis-facturas/lista/").status_code == 302

    # Single use: a second browser (or the same one) cannot open it again.
    other = client.__class__()
    assert open_link(other, url).status_code == 410
    assert other.get(f"/{merchant.slug}/mis-facturas/lista/").status_code == 302
    assert other.get(f"/{merchant.slug}/mis-facturas/{mine.public_code}/xml").status_code == 404


def test_the_link_expires(client, merchant, mine, queued_tasks, django_capture_on_commit_callbacks):
    url = request_link(client, merchant, queued_tasks, django_capture_on_commit_callbacks)
    InvoiceAccessRequest.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client.get("/" + url.split("/", 3)[3]).status_code == 410
    assert open_link(client, url).status_code == 410
    assert client.get(f"/{merchant.slug}/mis-facturas/lista/").status_code == 302


def test_the_list_closes_when_its_session_scope_runs_out(client, merchant, mine, queued_tasks, settings,
                                                        django_capture_on_commit_callbacks):
    url = request_link(client, merchant, queued_tasks, django_capture_on_commit_callbacks)
    open_link(client, url)
    assert client.get(f"/{merchant.slug}/mis-facturas/lista/").status_code == 200
    session = client.session
    scope = session["portal_my_invoices"]
    scope[str(merchant.pk)]["until"] = timezone.now().timestamp() - 1
    session["portal_my_invoices"] = scope
    session.save()
    assert client.get(f"/{merchant.slug}/mis-facturas/lista/").status_code == 302
    assert client.get(f"/{merchant.slug}/mis-facturas/{mine.public_code}/pdf").status_code == 404


def test_a_second_merchants_link_cannot_open_the_first_merchants_page(client, merchant, mine, elsewhere,
                                                                      queued_tasks,
                                                                      django_capture_on_commit_callbacks):
    url = request_link(client, elsewhere.merchant, queued_tasks, django_capture_on_commit_callbacks)
    assert f"/{elsewhere.merchant.slug}/mis-facturas/acceso/" in url
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert client.get(f"/{merchant.slug}/mis-facturas/acceso/{token}/").status_code == 410
    assert client.post(f"/{merchant.slug}/mis-facturas/acceso/{token}/").status_code == 410
    assert client.get(f"/{merchant.slug}/mis-facturas/lista/").status_code == 302
    # …and it is still good where it belongs.
    assert open_link(client, url).status_code == 302
    html = client.get(f"/{elsewhere.merchant.slug}/mis-facturas/lista/").content.decode()
    assert elsewhere.public_code in html and mine.public_code not in html


@pytest.mark.parametrize("rfc, email", [
    ("CACX7605101P8", "karla@example.com"),  # an RFC without invoices here
    (RFC, "nobody@example.com"),             # an address that never received one
])
def test_an_unknown_pair_gets_the_same_answer_and_the_same_work(client, merchant, mine, queued_tasks, rfc, email,
                                                              django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        known = ask(client, merchant)
    with django_capture_on_commit_callbacks(execute=True):
        unknown = ask(client, merchant, rfc=rfc, email=email)
    assert (unknown.status_code, unknown.url) == (known.status_code, known.url)
    def page(url):  # but for the form's CSRF token, which changes on every render
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", client.get(url).content.decode())

    assert page(unknown.url) == page(known.url)
    # The same work in the request: one row and one task on the deliver queue each; the check is the worker's.
    assert [t[:2] for t in queued_tasks] == [("deliver", "portal.tasks.send_my_invoices_link")] * 2
    assert InvoiceAccessRequest.objects.count() == 2
    queued_tasks.run(0)
    queued_tasks.run(1)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["karla@example.com"]
    assert InvoiceAccessRequest.objects.count() == 1  # the unknown pair is not kept


def test_asking_is_rate_limited_per_address_and_per_rfc(client, merchant, mine, settings, queued_tasks,
                                                        still_clock):
    settings.PORTAL_RATE_LIMITS = {"my_invoices_ip": (4, 600), "my_invoices_rfc": (2, 3600)}
    assert ask(client, merchant).status_code == 302
    assert ask(client, merchant, email="otra@example.com").status_code == 302
    blocked = ask(client, merchant, email="tercera@example.com")
    assert blocked.status_code == 429 and "demasiados intentos" in blocked.content.decode()
    # Another RFC from the same address is still served until the address's own limit.
    assert ask(client, merchant, rfc="CACX7605101P8").status_code == 302
    assert ask(client, merchant, rfc="CACX7605101P8", REMOTE_ADDR="10.0.0.9").status_code == 302
    assert ask(client, merchant, rfc="CACX7605101P8").status_code == 429


def test_bad_input_is_refused_on_the_page_without_queuing(client, merchant, queued_tasks):
    response = ask(client, merchant, rfc="ABC", email="no-es-correo")
    html = response.content.decode()
    assert response.status_code == 400 and 'aria-invalid="true"' in html
    assert "Un RFC tiene 12 caracteres" in html and "Escribe un correo válido" in html
    assert not queued_tasks and not InvoiceAccessRequest.objects.exists()


def test_the_email_goes_in_the_language_the_shopper_used(client, merchant, mine, queued_tasks,
                                                        django_capture_on_commit_callbacks):
    client.post("/idioma/", {"language": "en", "next": f"/{merchant.slug}/mis-facturas/"})
    url = request_link(client, merchant, queued_tasks, django_capture_on_commit_callbacks)
    message = mail.outbox[-1]
    assert message.subject == f"Your invoices at {merchant.legal_name}"
    assert "The link works once and expires in 30 minutes." in message.body and url.endswith("?lang=en")
