"""The merchant admin's secondary PAC: write-only encrypted credentials, checks, the circuits and the last switch
in the PAC panel, "Probar conexión" for both PACs, and isolation between merchants."""

import pytest
from django.db import connection
from fakes import FINKOK_PASSWORD, FINKOK_USER
from test_pac_admin import URL, _form_data

from invoicing.models import PacCircuit
from invoicing.pac.base import NOT_SENT, PacError
from invoicing.services.failover import route_switch
from invoicing.services.pac_circuit import circuit_record
from tickets.models import Merchant


@pytest.fixture
def staff_client(client, merchant, make_staff):
    client.force_login(make_staff(merchant, "staff-a"))
    return client


def test_staff_sets_a_secondary_pac_and_its_password_is_encrypted_and_never_shown(staff_client, merchant):
    data = _form_data(staff_client, merchant, pac_secondary="sw", pac_secondary_environment="production",
                      pac_secondary_username="kemper@sw.mx", pac_secondary_password_new="sw-s3cret-token")
    response = staff_client.post(f"{URL}{merchant.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    merchant.refresh_from_db()
    assert (merchant.pac_secondary, merchant.pac_secondary_environment, merchant.pac_secondary_password) == (
        "sw", "production", "sw-s3cret-token")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pac_secondary_password FROM tickets_merchant WHERE id = %s", [merchant.pk])
        stored = cursor.fetchone()[0]
    assert stored and "sw-s3cret-token" not in str(stored)
    page = staff_client.get(f"{URL}{merchant.pk}/change/").content.decode()
    assert "sw-s3cret-token" not in page and "PAC secundario (respaldo)" in page
    assert "Ninguno: las facturas se timbran con el PAC principal." in page

    # Saved again with the password left empty, it is kept; cleared on request.
    response = staff_client.post(f"{URL}{merchant.pk}/change/", _form_data(staff_client, merchant))
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.pac_secondary_password == "sw-s3cret-token"


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"pac_secondary": "sandbox"}, "pac_secondary", "distinto del principal"),
    ({"pac": "sw", "pac_username": "a@b.mx", "pac_password_new": "x", "pac_secondary": "sw"}, "pac_secondary",
     "distinto"),
    ({"pac_secondary": "finkok", "pac_secondary_username": ""}, "pac_secondary_password_new", "contraseña"),
    ({"pac_secondary": "finkok", "pac_secondary_password_new": "x"}, "pac_secondary_username", "usuario"),
])
def test_a_secondary_pac_must_be_another_service_with_credentials(staff_client, merchant, changes, field, words):
    response = staff_client.post(f"{URL}{merchant.pk}/change/", _form_data(staff_client, merchant, **changes))

    assert response.status_code == 200
    assert words in response.context["adminform"].form.errors[field][0]
    merchant.refresh_from_db()
    assert merchant.pac_secondary == ""


def test_the_panel_shows_the_circuits_and_the_last_switch(staff_client, merchant, settings):
    from invoicing.pac import get_pac

    settings.PAC_CIRCUIT_FAILURES = 2
    Merchant.objects.filter(pk=merchant.pk).update(pac="finkok", pac_username=FINKOK_USER, pac_secondary="sandbox")
    merchant.refresh_from_db()
    merchant.pac_password = FINKOK_PASSWORD
    merchant.save()
    refused = PacError("connection", "No fue posible conectar con Finkok.", permanent=False, outcome=NOT_SENT)
    circuit_record(get_pac(merchant), [refused, refused])
    route_switch(merchant=merchant, expected=None, to="secondary", from_pac="finkok", to_pac="sandbox",
                 reason="Finkok no responde (connection): las facturas nuevas se timbran con PAC sandbox.")

    page = staff_client.get(f"{URL}{merchant.pk}/change/").content.decode()

    assert PacCircuit.objects.get().state == "open"
    assert "Abierto: el PAC no responde, se usa el secundario" in page and "próxima prueba" in page
    assert "2 falla(s) seguidas" in page and "No fue posible conectar con Finkok." in page
    assert "de Finkok a Sandbox (sin validez fiscal)" in page and "Ahora se timbra con el PAC secundario." in page


def test_probar_conexion_tests_both_pacs(staff_client, merchant, finkok_server, monkeypatch):
    monkeypatch.setitem(__import__("invoicing.pac.finkok", fromlist=["URLS"]).URLS, "test", finkok_server.url)
    Merchant.objects.filter(pk=merchant.pk).update(pac_secondary="finkok", pac_secondary_username=FINKOK_USER)
    merchant.refresh_from_db()
    merchant.pac_secondary_password = FINKOK_PASSWORD
    merchant.save()

    response = staff_client.post(URL, {"action": "probar_conexion", "_selected_action": [merchant.pk]}, follow=True)

    texts = [str(m) for m in response.context["messages"]]
    assert any("PAC sandbox listo" in t for t in texts)
    assert any("(PAC secundario): Conexión correcta con Finkok" in t for t in texts), texts


def test_another_merchants_staff_sees_neither_its_secondary_nor_its_switches(client, merchant, other_merchant,
                                                                           make_staff):
    merchant.pac_secondary, merchant.pac_secondary_username = "sw", "kemper@sw.mx"
    merchant.pac_secondary_password = "kemper-sw-secret"
    merchant.save()
    route_switch(merchant=merchant, expected=None, to="secondary", from_pac="sandbox", to_pac="sw",
                 reason="motivo-de-kemper")
    client.force_login(make_staff(other_merchant, "staff-b"))

    own = client.get(f"{URL}{other_merchant.pk}/change/").content.decode()
    assert "motivo-de-kemper" not in own and "Ninguno: las facturas se timbran con el PAC principal." in own
    assert client.get(f"{URL}{merchant.pk}/change/").status_code in (302, 404)
    post = client.post(f"{URL}{merchant.pk}/change/", {"pac_secondary": "", "pac_secondary_password_clear": "on"})
    assert post.status_code in (302, 403, 404)
    merchant.refresh_from_db()
    assert (merchant.pac_secondary, merchant.pac_secondary_password) == ("sw", "kemper-sw-secret")
