"""Merchant admin PAC section: write-only credentials, "Probar conexión", and isolation between merchants."""

import pytest
from fakes import FINKOK_PASSWORD, FINKOK_USER

from tickets.models import Merchant

URL = "/admin/tickets/merchant/"




@pytest.fixture
def staff_client(client, merchant, make_staff):
    client.force_login(make_staff(merchant, "staff-a"))
    return client


def _form_data(client, merchant, **changes):
    """The change form as the browser would post it (inline management forms included)."""
    response = client.get(f"{URL}{merchant.pk}/change/")
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False or hasattr(value, "field"):  # skip empty values and file fields
            continue
        data[name] = value
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management.initial.get(name, 0)
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_staff_sets_pac_credentials_and_the_password_is_never_shown_back(staff_client, merchant):
    data = _form_data(staff_client, merchant, pac="finkok", pac_environment="production",
                      pac_username=FINKOK_USER, pac_password_new="sup3r-s3cret")
    response = staff_client.post(f"{URL}{merchant.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    merchant.refresh_from_db()
    assert (merchant.pac, merchant.pac_environment, merchant.pac_password) == ("finkok", "production", "sup3r-s3cret")
    page = staff_client.get(f"{URL}{merchant.pk}/change/").content.decode()
    assert "sup3r-s3cret" not in page
    assert "Timbrado (PAC)" in page

    # Saving again with the password left empty keeps it.
    response = staff_client.post(f"{URL}{merchant.pk}/change/", _form_data(staff_client, merchant, legal_name="KEMPER SA"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    merchant.refresh_from_db()
    assert merchant.pac_password == "sup3r-s3cret" and merchant.legal_name == "KEMPER SA"


def test_real_pac_without_password_is_explained_next_to_the_field(staff_client, merchant):
    data = _form_data(staff_client, merchant, pac="finkok", pac_username="")
    response = staff_client.post(f"{URL}{merchant.pk}/change/", data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "contraseña" in errors["pac_password_new"][0] and "usuario" in errors["pac_username"][0]
    merchant.refresh_from_db()
    assert merchant.pac == "sandbox"


def test_probar_conexion_with_the_sandbox(staff_client, merchant):
    response = staff_client.post(URL, {"action": "probar_conexion", "_selected_action": [merchant.pk]}, follow=True)

    texts = [str(m) for m in response.context["messages"]]
    assert any("PAC sandbox listo" in t for t in texts)


def test_probar_conexion_with_finkok_reports_bad_credentials_in_spanish(staff_client, merchant, finkok_server,
                                                                      monkeypatch):
    monkeypatch.setitem(__import__("invoicing.pac.finkok", fromlist=["URLS"]).URLS, "test", finkok_server.url)
    Merchant.objects.filter(pk=merchant.pk).update(pac="finkok", pac_username=FINKOK_USER)
    merchant.refresh_from_db()
    merchant.pac_password = "wrong"
    merchant.save()

    response = staff_client.post(URL, {"action": "probar_conexion", "_selected_action": [merchant.pk]}, follow=True)
    texts = [str(m) for m in response.context["messages"]]
    assert any("contraseña de Finkok son inválidos" in t for t in texts), texts

    merchant.pac_password = FINKOK_PASSWORD
    merchant.save()
    response = staff_client.post(URL, {"action": "probar_conexion", "_selected_action": [merchant.pk]}, follow=True)
    assert any("Conexión correcta con Finkok" in str(m) for m in response.context["messages"])


def test_other_merchant_staff_cannot_see_or_test_the_pac_settings(client, merchant, other_merchant, monkeypatch, make_staff):
    merchant.pac, merchant.pac_username, merchant.pac_password = "sw", "kemper@sw.mx", "kemper-secret"
    merchant.save()
    client.force_login(make_staff(other_merchant, "staff-b"))
    pinged = []
    monkeypatch.setattr("invoicing.admin_pac.get_pac", lambda m: pinged.append(m.pk))

    listing = client.get(URL).content.decode()
    assert "kemper" not in listing.lower() and other_merchant.legal_name in listing
    assert client.get(f"{URL}{merchant.pk}/change/").status_code in (302, 404)
    response = client.post(URL, {"action": "probar_conexion", "_selected_action": [merchant.pk]}, follow=True)
    assert merchant.pk not in pinged
    assert "kemper-secret" not in response.content.decode()
    post = client.post(f"{URL}{merchant.pk}/change/", {"pac": "sandbox", "pac_password_new": "hijack"})
    assert post.status_code in (302, 403, 404)
    merchant.refresh_from_db()
    assert (merchant.pac, merchant.pac_password) == ("sw", "kemper-secret")
