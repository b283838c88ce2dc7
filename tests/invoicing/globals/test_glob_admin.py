"""Back office of the factura global: period list/detail, preview, "generar ahora", late requests; isolation."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from invoicing.models import GlobalPeriod, LateRequest
from invoicing.services.global_invoice import global_invoice_issue
from tickets.models import MerchantMembership, Ticket


def staff(merchant, username):
    user = User.objects.create_user(username, password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["invoicing", "tickets"]))
    MerchantMembership.objects.create(user=user, merchant=merchant)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ours(merchant):
    return staff(merchant, "a")


@pytest.fixture
def theirs(other_merchant):
    return staff(other_merchant, "b")


PREVIEW = "/admin/invoicing/globalperiod/vista-previa/"


def test_preview_shows_tickets_and_totals_and_generates(ours, merchant, branch, sale):
    sale(branch, "T-100", "2026-03-07 10:00", total="100.00", payment_form="04")
    page = ours.get(PREVIEW, {"period": "2026-03"})
    html = page.content.decode()
    assert page.status_code == 200 and "T-100" in html and "Marzo de 2026" in html and "Generar ahora" in html
    assert "venció" in html  # March's deadline (2 April 2026) has passed: asked before issuing
    refused = ours.post(PREVIEW + "?period=2026-03", follow=True)
    assert "confirma que quieres generarla" in refused.content.decode()
    assert Ticket.objects.get().status == "open"
    done = ours.post(PREVIEW + "?period=2026-03", {"confirm_late": "1"}, follow=True)
    assert "1 factura(s) global(es)" in done.content.decode()
    assert Ticket.objects.get().status == "globalized"


def test_preview_with_a_bad_period_says_why_in_spanish(ours):
    page = ours.get(PREVIEW, {"period": "marzo"})
    assert page.status_code == 200 and "no reconocido" in page.content.decode()


def test_list_detail_and_generate_now_action(ours, merchant, branch, sale):
    sale(branch, "A", "2026-03-07 10:00")
    [g] = global_invoice_issue(merchant=merchant, period="2026-03")
    gp = GlobalPeriod.objects.get()
    assert "0 de 1 timbrada" in ours.get("/admin/invoicing/globalperiod/").content.decode()
    detail = ours.get(f"/admin/invoicing/globalperiod/{gp.pk}/change/").content.decode()
    assert f"/admin/invoicing/invoice/{g.pk}/change/" in detail
    sale(branch, "LATE", "2026-03-09 10:00")
    ours.post("/admin/invoicing/globalperiod/", {"action": "generate_now", "_selected_action": [gp.pk]})
    assert Ticket.objects.get(number="LATE").status == "globalized"


def test_other_merchant_staff_see_nothing_of_ours(theirs, merchant, branch, sale, receptor):
    t = sale(branch, "SECRET-1", "2026-03-07 10:00")
    global_invoice_issue(merchant=merchant, period="2026-03")
    gp = GlobalPeriod.objects.get()
    assert "SECRET" not in theirs.get("/admin/invoicing/globalperiod/").content.decode()
    assert theirs.get(f"/admin/invoicing/globalperiod/{gp.pk}/change/").status_code in (302, 404)
    Ticket.objects.filter(pk=t.pk).update(status="open")
    page = theirs.get(PREVIEW, {"period": "2026-03"}).content.decode()
    assert "SECRET-1" not in page and "No hay tickets abiertos" in page
    theirs.post("/admin/invoicing/globalperiod/", {"action": "generate_now", "_selected_action": [gp.pk]})
    assert Ticket.objects.get(pk=t.pk).status == "open"
    theirs.post(PREVIEW + "?period=2026-03")
    assert Ticket.objects.get(pk=t.pk).status == "open"
    assert theirs.get("/admin/invoicing/laterequest/").status_code == 200
    assert not LateRequest.objects.exists()
