"""The invoices list staff work from: columns, "needs attention" filters, search as a customer dictates it,
resend to another address, downloads by role, and the webhook test button."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from infra.roles import Role
from invoicing.models import Invoice
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoices_stamp_queued
from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint
from tickets.models import MerchantMembership


@pytest.fixture(autouse=True)
def fast(settings):
    settings.INVOICE_STAMP_LINGER_MS = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _as(make_staff, merchant, role, name=None):
    user = make_staff(merchant, name or f"persona-{role}", permissions=[])
    MerchantMembership.objects.filter(user=user).update(role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def invoices(merchant, certificate, branch, make_ticket, receptor):
    """F-1 stamped, F-2 failing at the PAC (retrying), F-3 failed for good; and another merchant's F-1."""
    stamped = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="T-100").pk], receptor=receptor)
    invoices_stamp_queued()
    retrying = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="T-200").pk], receptor=receptor)
    Invoice.objects.filter(pk=retrying.pk).update(status="sealed", attempts=3, last_error_code="PAC_DOWN",
                                                  last_error_message="PAC no disponible",
                                                  next_attempt_at=timezone.now() + timezone.timedelta(minutes=5))
    failed = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="T-300").pk], receptor=receptor)
    Invoice.objects.filter(pk=failed.pk).update(status="failed", attempts=1, last_error_code="CFDI40999",
                                                last_error_permanent=True)
    stamped.refresh_from_db()
    assert stamped.status == "stamped" and (stamped.serie, stamped.folio) == ("F", 1)
    return {"stamped": stamped, "retrying": retrying, "failed": failed}


@pytest.fixture
def theirs(other_merchant, other_branch, make_ticket, receptor):
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.services.certificates import certificate_install

    cer, key, password = generate_test_csd(other_merchant.rfc, other_merchant.legal_name)
    certificate_install(merchant=other_merchant, cer=cer, key=key, password=password)
    invoice = invoice_issue(merchant=other_merchant, ticket_ids=[make_ticket(other_branch, number="T-100").pk],
                            receptor=receptor)
    invoices_stamp_queued()
    invoice.refresh_from_db()
    return invoice


def _rows(response) -> list[str]:
    html = response.content.decode()
    return [f"F-{n}" for n in range(1, 6) if f">F-{n}<" in html]


def test_the_list_shows_what_staff_need_at_a_glance(merchant, invoices, make_staff):
    html = _as(make_staff, merchant, Role.CASHIER).get("/admin/invoicing/invoice/").content.decode()
    headers = [h.strip().lower() for h in
               re.findall(r'<th scope="col"[^>]*>.*?<(?:a|span)[^>]*>([^<]+)</', html, re.S)]
    assert headers[-9:] == ["estado", "serie-folio", "uuid", "rfc del receptor", "receptor", "total", "fecha",
                           "intentos", "error"]
    assert "PAC_DOWN" in html and "CFDI40999" in html and "Timbrada" in html
    assert str(invoices["stamped"].uuid).upper()[:8] in html


@pytest.mark.parametrize("typed", ["F-1", "F1", "f 1", "f-001"])
def test_search_by_serie_folio_as_a_customer_dictates_it(merchant, invoices, theirs, make_staff, typed):
    response = _as(make_staff, merchant, Role.CASHIER).get("/admin/invoicing/invoice/", {"q": typed})
    assert _rows(response) == ["F-1"]
    assert theirs.receptor_rfc in response.content.decode()  # same receptor, but…
    assert str(theirs.uuid).upper()[:8] not in response.content.decode()  # …only our F-1 is listed


@pytest.mark.parametrize("field", ["uuid", "rfc", "ticket", "email"])
def test_search_by_uuid_rfc_ticket_number_and_email(merchant, invoices, theirs, make_staff, receptor, field):
    stamped = invoices["stamped"]
    term = {"uuid": str(stamped.uuid).lower(), "rfc": receptor.rfc.lower(), "ticket": "T-100",
            "email": receptor.emails[0].upper()}[field]
    response = _as(make_staff, merchant, Role.CASHIER).get("/admin/invoicing/invoice/", {"q": term})
    expected = {"uuid": ["F-1"], "rfc": ["F-1", "F-2", "F-3"], "ticket": ["F-1"], "email": ["F-1", "F-2", "F-3"]}
    assert _rows(response) == expected[field]
    assert str(theirs.uuid).upper()[:8] not in response.content.decode()


def test_attention_filters_find_the_retrying_and_the_failed(merchant, invoices, make_staff):
    client = _as(make_staff, merchant, Role.CASHIER)
    assert _rows(client.get("/admin/invoicing/invoice/", {"situacion": "atencion:retrying"})) == ["F-2"]
    assert _rows(client.get("/admin/invoicing/invoice/", {"situacion": "atencion:failed"})) == ["F-3"]
    assert _rows(client.get("/admin/invoicing/invoice/", {"situacion": "atencion"})) == ["F-2", "F-3"]
    assert _rows(client.get("/admin/invoicing/invoice/", {"situacion": "stamped"})) == ["F-1"]
    page = client.get("/admin/invoicing/invoice/").content.decode()
    assert "Con error / reintentando" in page
    for _, label in Invoice.Status.choices:
        assert label in page


def test_a_cashier_resends_an_invoice_to_another_address(merchant, invoices, make_staff):
    client = _as(make_staff, merchant, Role.CASHIER)
    pk = invoices["stamped"].pk
    form = client.post("/admin/invoicing/invoice/", {"action": "resend_to", "_selected_action": [pk]})
    assert form.status_code == 200 and "Enviar a" in form.content.decode()
    bad = client.post("/admin/invoicing/invoice/", {"action": "resend_to", "_selected_action": [pk], "apply": "1",
                                                    "emails": "no-es-correo"})
    assert "no es un correo válido" in bad.content.decode() and not mail.outbox
    done = client.post("/admin/invoicing/invoice/", {"action": "resend_to", "_selected_action": [pk], "apply": "1",
                                                     "emails": "contabilidad@cliente.example, otra@cliente.example"},
                       follow=True)
    assert "Se enviaron 1 factura" in done.content.decode()
    [message] = mail.outbox
    assert message.to == ["contabilidad@cliente.example", "otra@cliente.example"]
    assert {name.rsplit(".", 1)[1] for name, _, _ in message.attachments} == {"xml", "pdf"}


def test_resend_to_cannot_reach_another_merchants_invoice(merchant, invoices, theirs, make_staff):
    client = _as(make_staff, merchant, Role.OWNER)
    client.post("/admin/invoicing/invoice/", {"action": "resend_to", "_selected_action": [theirs.pk], "apply": "1",
                                              "emails": "ladron@example.com"})
    assert not mail.outbox


def test_downloads_are_for_accountants_and_owners_not_cashiers(merchant, invoices, theirs, make_staff):
    pk = invoices["stamped"].pk
    cashier = _as(make_staff, merchant, Role.CASHIER)
    assert cashier.get(f"/admin/invoicing/invoice/{pk}/documento/xml/").status_code == 403
    assert "Descargar XML" not in cashier.get(f"/admin/invoicing/invoice/{pk}/change/").content.decode()
    accountant = _as(make_staff, merchant, Role.ACCOUNTANT)
    assert "Descargar XML" in accountant.get(f"/admin/invoicing/invoice/{pk}/change/").content.decode()
    for fmt, kind in (("xml", "application/xml"), ("pdf", "application/pdf"), ("zip", "application/zip")):
        response = accountant.get(f"/admin/invoicing/invoice/{pk}/documento/{fmt}/")
        assert response.status_code == 200 and response["Content-Type"] == kind
    assert accountant.get(f"/admin/invoicing/invoice/{theirs.pk}/documento/xml/").status_code == 404


def test_the_webhook_test_button_queues_a_test_delivery(merchant, other_merchant, make_staff, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    ours = WebhookEndpoint.objects.create(merchant=merchant, url="https://hooks.example.com/a")
    foreign = WebhookEndpoint.objects.create(merchant=other_merchant, url="https://hooks.example.com/b")
    owner = _as(make_staff, merchant, Role.OWNER)
    page = owner.get(f"/admin/invoicing/webhookendpoint/{ours.pk}/change/").content.decode()
    assert "Probar: enviar un evento de prueba" in page
    response = owner.post(f"/admin/invoicing/webhookendpoint/{ours.pk}/probar/", follow=True)
    assert "Evento de prueba en cola" in response.content.decode()
    assert WebhookDelivery.objects.get().event == "webhook.test"
    assert owner.post(f"/admin/invoicing/webhookendpoint/{foreign.pk}/probar/").status_code == 404
    accountant = _as(make_staff, merchant, Role.ACCOUNTANT)
    assert accountant.post(f"/admin/invoicing/webhookendpoint/{ours.pk}/probar/").status_code == 403
    assert WebhookDelivery.objects.count() == 1
