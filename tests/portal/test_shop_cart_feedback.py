"""Cart and done-page fixes: feedback when a ticket is added (or added twice), a UsoCFDI hint the régimen allows,
masks that keep two addresses apart, "te la reenviamos" once, and the resend on the queue."""

from decimal import Decimal

import pytest
from django.core.cache import cache

from invoicing.cfdi.catalogs import USOS_CFDI, receptor_matrix, usos_for
from portal.forms import FiscalDataForm, catalog_matrix
from portal.shopper.lookup import mask_emails


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


def lookup(client, merchant, ticket, total="116.00"):
    sold_on = ticket.sold_at.astimezone(merchant.tzinfo).date().isoformat()
    return client.post(f"/{merchant.slug}/", {"number": ticket.number, "total": total, "sold_on": sold_on})


def test_adding_a_ticket_says_so_and_adding_it_twice_too(client, merchant, branch, make_ticket):
    ticket = make_ticket(branch, number="A-1", total=Decimal("116.00"))
    cart = lookup(client, merchant, ticket).url
    assert "Agregamos el ticket A-1 a tu factura." in client.get(cart).content.decode()
    assert "Agregamos el ticket" not in client.get(cart).content.decode()  # once
    assert lookup(client, merchant, ticket).url == cart
    html = client.get(cart).content.decode()
    assert "El ticket A-1 ya estaba en tu factura: no lo agregamos dos veces." in html
    assert html.count("<td>A-1<br>") == 1
    # The receipt's QR link gives the same feedback.
    assert "ya estaba en tu factura" in client.get(client.get(f"/t/{ticket.public_code}").url).content.decode()


def test_a_notice_for_one_merchant_never_shows_on_anothers_pages(client, merchant, other_branch, make_ticket):
    theirs = make_ticket(other_branch, number="Z-1", total=Decimal("1.00"))
    client.get(f"/t/{theirs.public_code}")  # not followed
    assert "Z-1" not in client.get(f"/{merchant.slug}/carrito/").content.decode()
    assert "Agregamos el ticket Z-1" in client.get(f"/{other_branch.merchant.slug}/carrito/").content.decode()


@pytest.mark.parametrize(("rfc", "regimen", "suggested"), [
    ("XIQB891116QE4", "605", "S01"),  # salaried: no G03
    ("XIQB891116QE4", "612", "G03"),
    ("XIQB891116QE4", "616", "S01"),
    ("EKU9003173C9", "601", "G03"),
])
def test_the_uso_hint_only_suggests_what_the_regimen_allows(rfc, regimen, suggested):
    form = FiscalDataForm(initial={"rfc": rfc, "tax_regime": regimen})
    hint = form.fields["cfdi_use"].help_text
    assert f"elige {suggested} «{USOS_CFDI[suggested].description}»" in hint
    assert suggested in {u.code for u in usos_for(rfc, regimen)}
    other = {"G03": "S01", "S01": "G03"}[suggested]
    assert other not in hint


def test_the_scripts_hint_comes_from_the_same_rule():
    matrix = receptor_matrix()["matrix"]
    for persona, lists in matrix.items():
        for regimen, code in lists["sugerido"].items():
            assert code in lists["usos"][regimen], (persona, regimen)
    assert matrix["fisica"]["sugerido"]["605"] == "S01"
    assert "{code}" in catalog_matrix()["uso_hint"]
    assert "Elige primero tu régimen" in FiscalDataForm().fields["cfdi_use"].help_text


def test_masks_keep_different_addresses_apart():
    assert mask_emails(["karla@example.com"]) == ["ka***@example.com"]
    two = mask_emails(["karla@example.com", "kathy@example.com"])
    assert len(set(two)) == 2 and all(m.endswith("***@example.com") for m in two)
    assert len(set(mask_emails(["karla@example.com", "karlo@example.com", "ab@x.mx", "ac@x.mx"]))) == 4
    assert mask_emails(["juan@a.com", "juan@a.com"]) == ["ju***@a.com"]
    assert all("karla" not in m for m in mask_emails(["karla@example.com", "karlo@example.com"]))
