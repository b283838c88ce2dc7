"""A double click on «Generar mi factura»: every confirmation POST lands on the one invoice's page.

Two POSTs of one session race in two ways: the second one loaded the session before the first saved it (it
still holds the cart and the fiscal data: it must replay the same invoice through its idempotency key), or
after (cart and data are gone: the session remembers which invoice that confirmation made).
"""

import threading
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from django.test import Client

from invoicing.models import Invoice, LateRequest
from portal.views import PENDING_KEY
from tickets.models import Merchant, Ticket

VALID = {"rfc": "XIQB891116QE4", "name": "Karla Fuente Nolasco", "tax_regime": "605", "postal_code": "01160",
         "cfdi_use": "S01", "emails": "karla@example.com"}


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


@pytest.fixture
def confirming(client, merchant, branch, make_ticket):
    """A shopper on the confirmation page with two tickets in the cart."""
    tickets = [make_ticket(branch, number=f"D-{i}", total=Decimal("116.00")) for i in (1, 2)]
    for t in tickets:
        assert client.get(f"/t/{t.public_code}").status_code == 302
    assert client.post(f"/{merchant.slug}/datos/", VALID).status_code == 302
    assert client.get(f"/{merchant.slug}/confirmar/").status_code == 200
    return tickets


def _confirm(client, merchant):
    return client.post(f"/{merchant.slug}/confirmar/")


def _invoice_url(merchant, invoice):
    return f"/{merchant.slug}/factura/{invoice.public_code}/"


def test_second_click_that_read_the_session_before_the_first_saved_it_gets_the_same_invoice(
        client, merchant, confirming):
    before = dict(client.session.items())  # what the second POST read: cart and fiscal data still there
    first = _confirm(client, merchant)
    invoice = Invoice.objects.get()
    session = client.session
    session.clear()
    session.update(before)
    session.save()
    second = _confirm(client, merchant)
    assert (first.status_code, second.status_code) == (302, 302)
    assert first.url == second.url == _invoice_url(merchant, invoice)
    assert Invoice.objects.count() == 1
    assert PENDING_KEY not in client.session  # the replay finishes the confirmation like the first did


def test_second_click_that_read_the_session_after_the_first_saved_it_gets_the_same_invoice(
        client, merchant, confirming):
    first = _confirm(client, merchant)
    second = _confirm(client, merchant)
    invoice = Invoice.objects.get()
    assert first.url == second.url == _invoice_url(merchant, invoice)


def test_a_new_confirmation_after_a_finished_one_is_a_new_invoice(client, merchant, branch, make_ticket, confirming):
    first = _confirm(client, merchant)
    more = make_ticket(branch, number="D-3")
    client.get(f"/t/{more.public_code}")
    client.post(f"/{merchant.slug}/datos/", VALID)
    second = _confirm(client, merchant)
    assert Invoice.objects.count() == 2 and first.url != second.url
    assert second.url == _invoice_url(merchant, Invoice.objects.latest("pk"))


def test_someone_elses_invoice_of_a_cart_ticket_is_still_the_409_page(client, merchant, confirming):
    from invoicing.services.issue import ReceptorData, invoice_issue

    invoice_issue(merchant=merchant, ticket_ids=[confirming[0].pk], actor="otra caja",
                  receptor=ReceptorData("CACX7605101P8", "XOCHILT CASAS CHAVEZ", "612", "36257", "G03"))
    response = _confirm(client, merchant)
    assert response.status_code == 409
    assert "El ticket D-1 ya fue facturado." in response.content.decode()
    assert Invoice.objects.count() == 1


def test_another_session_never_gets_this_confirmations_invoice(client, merchant, confirming):
    before = dict(client.session.items())
    _confirm(client, merchant)
    stranger = Client()
    stranger.get("/")
    session = stranger.session
    session.update(before)  # the same cart and data, even the same pending key, in another session
    session.save()
    stranger.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    response = _confirm(stranger, merchant)
    assert response.status_code == 409 and Invoice.objects.count() == 1


def test_double_click_on_a_late_request_makes_one_request_and_lands_on_its_invoice(client, merchant, confirming):
    Merchant.objects.filter(pk=merchant.pk).update(late_request_policy=Merchant.LatePolicy.CREDIT_NOTE)
    Ticket.objects.filter(pk__in=[t.pk for t in confirming]).update(status=Ticket.Status.GLOBALIZED)
    before = dict(client.session.items())
    first = _confirm(client, merchant)
    session = client.session
    session.clear()
    session.update(before)
    session.save()
    second = _confirm(client, merchant)
    invoice = Invoice.objects.get()
    assert first.url == second.url == _invoice_url(merchant, invoice)
    assert LateRequest.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_five_concurrent_confirmations_of_one_session_all_land_on_the_one_invoice(client, merchant, confirming):
    assert connection.vendor == "postgresql"
    session_key = client.session.session_key
    barrier = threading.Barrier(5)
    answers, errors = [None] * 5, []

    def click(i):
        browser = Client()
        browser.cookies[settings.SESSION_COOKIE_NAME] = session_key
        try:
            barrier.wait()
            response = _confirm(browser, merchant)
            answers[i] = (response.status_code, response.get("Location"))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    invoice = Invoice.objects.get()
    assert answers == [(302, _invoice_url(merchant, invoice))] * 5
    assert set(Ticket.objects.values_list("status", flat=True)) == {"invoiced"}
