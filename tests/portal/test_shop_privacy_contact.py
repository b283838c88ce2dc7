"""The merchant's aviso de privacidad (a default the merchant can edit in the back office), linked from every
shopper form; the merchant's contact on the landing and on every error page and message."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from tickets.models import Merchant
from tickets.privacy import default_privacy_notice


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


@pytest.fixture
def reachable(merchant):
    merchant.customer_email, merchant.customer_phone = "ayuda@kemper.example", "(55) 1234-5678 ext. 2"
    merchant.address = "Calle Uno 1, Col. Centro, 06600 CDMX"
    merchant.save()
    return merchant


def test_the_default_notice_names_the_merchant_its_data_and_the_arco_rights(client, reachable):
    html = client.get(f"/{reachable.slug}/privacidad/").content.decode()
    assert "<h1>Aviso de privacidad</h1>" in html
    for text in ("ESCUELA KEMPER URGATE (RFC EKU9003173C9)", "Calle Uno 1, Col. Centro, 06600 CDMX",
                 "Tu RFC, tu nombre o razón social", "Servicio de Administración Tributaria", "derechos ARCO",
                 "ayuda@kemper.example", "20 días hábiles", "subirla es opcional"):
        assert text in html, text
    assert "Ley Federal de Protección de Datos Personales" in default_privacy_notice(reachable)


def test_the_merchants_own_text_replaces_it_and_each_merchant_has_its_own(client, reachable, other_merchant):
    reachable.privacy_notice = "Nuestro aviso.\n\nSegundo párrafo <b>sin HTML</b>."
    reachable.save()
    html = client.get(f"/{reachable.slug}/privacidad/").content.decode()
    assert "<p>Nuestro aviso.</p>" in html and "&lt;b&gt;sin HTML&lt;/b&gt;" in html and "derechos ARCO" not in html
    theirs = client.get(f"/{other_merchant.slug}/privacidad/").content.decode()
    assert "XOCHILT CASAS CHAVEZ (RFC CACX7605101P8)" in theirs and "Nuestro aviso" not in theirs
    Merchant.objects.filter(pk=other_merchant.pk).update(is_active=False)
    assert client.get(f"/{other_merchant.slug}/privacidad/").status_code == 404


def test_every_shopper_form_links_the_notice(client, reachable, branch, make_ticket):
    link = f'href="/{reachable.slug}/privacidad/"'
    ticket = make_ticket(branch, number="PV-1", total=Decimal("10.00"))
    assert client.get(f"/t/{ticket.public_code}").status_code == 302
    pages = [f"/{reachable.slug}/", f"/{reachable.slug}/carrito/", f"/{reachable.slug}/datos/"]
    client.post(f"/{reachable.slug}/datos/", {"rfc": "XIQB891116QE4", "name": "KARLA FUENTE NOLASCO",
                                              "tax_regime": "605", "postal_code": "01160", "cfdi_use": "S01",
                                              "emails": "karla@example.com"})
    pages += [f"/{reachable.slug}/confirmar/"]
    for url in pages:
        html = client.get(url).content.decode()
        assert "Consulta el <a " + link in html, url  # next to the form, not only in the footer
        assert html.count(link) >= 2, url


def test_the_landing_shows_the_contact_and_errors_name_it(client, reachable, branch, make_ticket):
    html = client.get(f"/{reachable.slug}/").content.decode()
    assert 'href="mailto:ayuda@kemper.example"' in html and 'href="tel:5512345678"' in html
    expired = make_ticket(branch, number="EX-1", total=Decimal("10.00"),
                          sold_at=timezone.now() - dt.timedelta(days=90))
    sold_on = expired.sold_at.astimezone(reachable.tzinfo).date().isoformat()
    page = client.post(f"/{reachable.slug}/", {"number": "EX-1", "total": "10.00", "sold_on": sold_on})
    message = page.content.decode()
    assert "comunícate con ESCUELA KEMPER URGATE (ayuda@kemper.example o (55) 1234-5678 ext. 2)" in message
    assert "comunícate con el comercio" not in message


def test_a_merchant_without_a_contact_keeps_the_generic_words(client, merchant, branch, make_ticket):
    expired = make_ticket(branch, number="EX-2", total=Decimal("10.00"), sold_at=timezone.now() - dt.timedelta(days=90))
    sold_on = expired.sold_at.astimezone(merchant.tzinfo).date().isoformat()
    page = client.post(f"/{merchant.slug}/", {"number": "EX-2", "total": "10.00", "sold_on": sold_on})
    assert "comunícate con el comercio" in page.content.decode()
    assert "mailto:" not in client.get(f"/{merchant.slug}/").content.decode()


def test_error_pages_under_a_merchant_show_its_contact(client, reachable):
    response = client.get(f"/{reachable.slug}/factura/no-existe/")
    html = response.content.decode()
    assert response.status_code == 404 and "Página no encontrada" in html
    assert "Comunícate con ESCUELA KEMPER URGATE" in html and "ayuda@kemper.example" in html
    assert f'href="/{reachable.slug}/"' in html and f'href="/{reachable.slug}/privacidad/"' in html
    elsewhere = client.get("/admin-no/existe/").content.decode()
    assert "ayuda@kemper.example" not in elsewhere
    assert "ayuda@kemper.example" not in client.get("/t/no-existe").content.decode()


def _change_form(client, merchant, **changes):
    """The merchant's change form as the back office shows it, posted back with ``changes``."""
    response = client.get(f"/admin/tickets/merchant/{merchant.pk}/change/")
    form = response.context["adminform"].form
    data = {name: value for name, field in form.fields.items()
            if (value := form.initial.get(name, field.initial)) not in (None, False) and not hasattr(value, "field")}
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({f"{management.prefix}-{name}": management.initial.get(name, 0) for name in management.fields})
    return response, {**data, **changes}


def test_the_back_office_shows_the_default_to_edit_and_keeps_it_default_when_untouched(reachable, make_staff):
    from django.test import Client

    from infra.roles import Role
    from tickets.models import MerchantMembership

    owner = make_staff(reachable, "duena", permissions=[])
    MerchantMembership.objects.filter(user=owner).update(role=Role.OWNER)
    client = Client()
    client.force_login(owner)
    page, data = _change_form(client, reachable)
    html = page.content.decode()
    assert "aviso de privacidad" in html.lower() and "derechos ARCO" in html  # the default, ready to edit
    assert client.post(f"/admin/tickets/merchant/{reachable.pk}/change/", data).status_code == 302
    reachable.refresh_from_db()
    assert reachable.privacy_notice == ""  # untouched: still the default, which follows the merchant's data
    _, data = _change_form(client, reachable, privacy_notice="Aviso propio de la escuela.",
                           customer_phone="800 000 0000")
    assert client.post(f"/admin/tickets/merchant/{reachable.pk}/change/", data).status_code == 302
    reachable.refresh_from_db()
    assert (reachable.privacy_notice, reachable.customer_phone) == ("Aviso propio de la escuela.", "800 000 0000")
    _, data = _change_form(client, reachable, customer_phone="<script>")
    assert client.post(f"/admin/tickets/merchant/{reachable.pk}/change/", data).status_code == 200  # refused
