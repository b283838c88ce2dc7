"""A ticket already in a global: the lookup says so on the cart (never a silent jump), and the cart and the
confirmation explain what will happen (a credit note to the global, or its cancellation, then the invoice)."""

from decimal import Decimal

import pytest
from django.core.cache import cache

from tickets.models import Merchant, Ticket

DATA = {"rfc": "XIQB891116QE4", "name": "Karla Fuente Nolasco", "tax_regime": "605", "postal_code": "01160",
        "cfdi_use": "S01", "emails": "karla@example.com"}


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


@pytest.fixture
def globalized(branch, make_ticket):
    ticket = make_ticket(branch, number="G-7", total=Decimal("58.00"))
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.GLOBALIZED)  # as the global left it
    return ticket


def lookup(client, merchant, ticket):
    sold_on = ticket.sold_at.astimezone(merchant.tzinfo).date().isoformat()
    return client.post(f"/{merchant.slug}/", {"number": ticket.number, "total": "58.00", "sold_on": sold_on})


def test_the_lookup_lands_on_the_cart_with_the_explanation(client, merchant, globalized):
    response = lookup(client, merchant, globalized)
    assert response.url == f"/{merchant.slug}/carrito/"
    html = client.get(response.url).content.decode()
    assert "Agregamos el ticket G-7 a tu factura" in html and "abajo te explicamos" in html
    assert "El ticket G-7 ya está en la factura global que ESCUELA KEMPER URGATE emite" in html
    assert "primero emitiremos una nota de crédito" in html and "enseguida tu factura" in html
    again = client.get(response.url).content.decode()
    assert "Agregamos el ticket" not in again and "nota de crédito" in again  # the notice once; the explanation stays


def test_the_confirmation_explains_it_too(client, merchant, globalized):
    lookup(client, merchant, globalized)
    client.post(f"/{merchant.slug}/datos/", DATA)
    html = client.get(f"/{merchant.slug}/confirmar/").content.decode()
    assert "Tu ticket ya estaba en la factura global" in html and "nota de crédito" in html


def test_cancel_and_reissue_merchants_explain_their_way(client, merchant, globalized):
    merchant.late_request_policy = Merchant.LatePolicy.CANCEL_REISSUE
    merchant.save()
    lookup(client, merchant, globalized)
    html = client.get(f"/{merchant.slug}/carrito/").content.decode()
    assert "cancelaremos esa factura global ante el SAT y la volveremos a emitir sin tu compra" in html


def test_an_open_ticket_gets_no_explanation(client, merchant, branch, make_ticket):
    ticket = make_ticket(branch, number="O-1", total=Decimal("58.00"))
    lookup(client, merchant, ticket)
    html = client.get(f"/{merchant.slug}/carrito/").content.decode()
    assert "Agregamos el ticket O-1" in html and "factura global" not in html
