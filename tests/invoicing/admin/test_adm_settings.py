"""Merchant settings in the back office: régimen by the RFC's person type, branding preview, a truthful PAC test,
and a global preview that adds up and warns about a passed deadline."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import requests
import urllib3.exceptions
from django.test import Client

from infra.roles import Role
from invoicing.pac.base import transport_error
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoices_stamp_queued
from tickets.models import Merchant, MerchantMembership, Ticket
from tickets.services import LineInput, ticket_create

URL = "/admin/tickets/merchant/"


def _as(make_staff, merchant, role=Role.OWNER):
    user = make_staff(merchant, f"persona-{role}", permissions=[])
    MerchantMembership.objects.filter(user=user).update(role=role)
    client = Client()
    client.force_login(user)
    return client


def _form(client, merchant, **changes):
    response = client.get(f"{URL}{merchant.pk}/change/")
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False or hasattr(value, "field"):
            continue
        data[name] = value
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management.initial.get(name, 0)
    data.update(changes)
    return data


def test_a_persona_moral_cannot_take_a_personas_fisicas_regime(merchant, make_staff):
    owner = _as(make_staff, merchant)
    page = owner.get(f"{URL}{merchant.pk}/change/").content.decode()
    assert 'value="601"' in page and 'value="605"' not in page  # EKU9003173C9: 12 characters, persona moral
    response = owner.post(f"{URL}{merchant.pk}/change/", _form(owner, merchant, tax_regime="605"))
    assert response.status_code == 200
    assert "no es válido para una persona moral" in response.content.decode() or \
        "no es una de las opciones" in response.content.decode()
    merchant.refresh_from_db()
    assert merchant.tax_regime == "601"


def test_changing_the_rfc_checks_the_regime_against_the_new_rfc(merchant, make_staff):
    owner = _as(make_staff, merchant)
    response = owner.post(f"{URL}{merchant.pk}/change/", _form(owner, merchant, rfc="CACX7605101P8", tax_regime="601"))
    assert "no es válido para una persona física" in response.content.decode()
    ok = owner.post(f"{URL}{merchant.pk}/change/", _form(owner, merchant, rfc="CACX7605101P8", tax_regime="612"))
    assert ok.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.rfc, merchant.tax_regime) == ("CACX7605101P8", "612")


def test_branding_preview_and_pdf_preview(merchant, branch, certificate, make_staff, receptor, settings):
    settings.INVOICE_STAMP_LINGER_MS = 0
    owner = _as(make_staff, merchant)
    page = owner.get(f"{URL}{merchant.pk}/change/").content.decode()
    assert 'id="branding-preview"' in page and "branding_preview.js" in page and "<script src=\"http" not in page
    assert owner.get(f"{URL}{merchant.pk}/vista-previa-pdf/").status_code == 404  # nothing stamped yet
    ticket = ticket_create(merchant=merchant, branch=branch, number="P1", sold_at=dt.datetime.now(dt.UTC),
                           lines=[LineInput(product_code="50202306", unit_code="H87", description="REFRESCO",
                                            quantity=Decimal("1"), unit_price=Decimal("116"))])
    invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    invoices_stamp_queued()
    pdf = owner.get(f"{URL}{merchant.pk}/vista-previa-pdf/")
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"


class _DownPac:
    def ping(self):
        # As requests raises a refused connection: the urllib3 connect error inside (the adapters read it).
        raise transport_error("Finkok", requests.ConnectionError(urllib3.exceptions.NewConnectionError(None, "refused")))


def test_probar_conexion_does_not_promise_a_retry(merchant, make_staff, monkeypatch):
    monkeypatch.setattr("invoicing.admin_pac.get_pac", lambda m: _DownPac())
    owner = _as(make_staff, merchant)
    response = owner.post(URL, {"action": "probar_conexion", "_selected_action": [merchant.pk]}, follow=True)
    text = response.content.decode()
    assert "No fue posible conectar con Finkok" in text
    assert "Reintentaremos" not in text and "ni se reintentará" in text


def test_the_global_preview_adds_up_and_warns_before_a_late_issue(merchant, branch, make_staff):
    tz = zoneinfo.ZoneInfo(merchant.time_zone)
    merchant.global_periodicity = "04"
    merchant.save()
    lines = [LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("2"),
                       unit_price=Decimal("58.00"), discount=Decimal("16.00"))]
    ticket_create(merchant=merchant, branch=branch, number="D1", lines=lines,
                  sold_at=dt.datetime(2026, 3, 7, 10, 0, tzinfo=tz))
    ticket = Ticket.objects.get()
    assert ticket.discount > 0
    owner = _as(make_staff, merchant)
    html = owner.get("/admin/invoicing/globalperiod/vista-previa/", {"period": "2026-03"}).content.decode()
    table = html.split('id="global-totals"')[1].split("</table>")[0]
    assert "Descuento" in table
    assert f"{ticket.subtotal:.2f}" in table and f"{ticket.discount:.2f}" in table and f"{ticket.tax_total:.2f}" in table
    assert ticket.subtotal - ticket.discount + ticket.tax_total - ticket.withheld_total == ticket.total
    assert 'id="deadline-passed"' in html and 'name="confirm_late"' in html
    owner.post("/admin/invoicing/globalperiod/vista-previa/?period=2026-03")
    assert Ticket.objects.get().status == "open"
    accountant = _as(make_staff, merchant, Role.ACCOUNTANT)
    page = accountant.get("/admin/invoicing/globalperiod/vista-previa/", {"period": "2026-03"}).content.decode()
    assert "Generar ahora" not in page
    assert accountant.post("/admin/invoicing/globalperiod/vista-previa/?period=2026-03",
                           {"confirm_late": "1"}).status_code == 403
    assert Merchant.objects.get(pk=merchant.pk).tax_regime == "601"
