"""Scheduled emission (issue_at): held until due, numbered and stamped at its time with Fecha = the stamping time,
withdrawn before it leaving no CFDI and no folio and freeing the tickets, never swallowed by a global, the limits
of issue_at, the schedule that releases them, the admin, and a second merchant seeing and touching nothing."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from lxml import etree
from rest_framework.test import APIClient

from infra.models import Event
from infra.queues import STAMP
from infra.roles import Role
from invoicing.models import FolioCounter, Invoice
from invoicing.schedules import SCHEDULES
from invoicing.services.global_schedule import global_invoices_run_merchant
from invoicing.services.stamping import invoices_stamp_queued
from invoicing.tasks import release_scheduled_invoices
from tickets.models import MerchantMembership, Ticket
from tickets.services import api_key_create

MX = ZoneInfo("America/Mexico_City")
RECEPTOR = {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612", "postal_code": "36257",
            "cfdi_use": "G03", "emails": ["xochilt@example.com"]}


def _client(merchant):
    _, plain = api_key_create(merchant=merchant, name="POS", scopes=["invoices"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture(autouse=True)
def _settings(settings, merchant):
    settings.INVOICE_STAMP_LINGER_MS = 0
    merchant.self_invoice_window, merchant.self_invoice_days = "days", 30
    merchant.save()


@pytest.fixture
def api(merchant, certificate):
    return _client(merchant)


@pytest.fixture
def other_api(other_merchant):
    return _client(other_merchant)


class Clock:
    """``timezone.now`` moved to where the test says; the real clock until it is set."""

    def __init__(self, monkeypatch):
        self._real = timezone.now
        self.at = None
        monkeypatch.setattr(timezone, "now", lambda: self.at or self._real())

    def set(self, moment):
        self.at = moment
        return moment


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def _create(api, ticket_ids, issue_at, key=None):
    body = {"ticket_ids": ticket_ids, "receptor": RECEPTOR}
    if issue_at is not None:
        body["issue_at"] = issue_at if isinstance(issue_at, str) else issue_at.astimezone(MX).isoformat()
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/v1/invoices", body, format="json", **headers)


def _fecha(invoice) -> dt.datetime:
    root = etree.fromstring(bytes(invoice.stamped_xml))
    return dt.datetime.fromisoformat(root.get("Fecha")).replace(tzinfo=MX)


def test_held_until_its_time_then_numbered_and_stamped_with_fecha_the_stamping_time(api, ticket, clock):
    requested = timezone.now()
    issue_at = (requested + dt.timedelta(hours=2)).replace(microsecond=0)
    response = _create(api, [ticket.pk], issue_at)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["folio"], body["uuid"]) == ("scheduled", None, None)
    assert dt.datetime.fromisoformat(body["issue_at"]) == issue_at
    assert set(body["links"]) == {"self"}
    invoice = Invoice.objects.get(pk=body["id"])
    assert Ticket.objects.get(pk=ticket.pk).status == "invoiced"  # taken now: nobody else can invoice it

    # Before its time: the stamping queue does not see it and the schedule leaves it.
    assert invoices_stamp_queued() == 0 and release_scheduled_invoices() == 0
    clock.set(issue_at - dt.timedelta(minutes=1))
    assert release_scheduled_invoices() == 0 and invoices_stamp_queued() == 0
    invoice.refresh_from_db()
    assert (invoice.status, invoice.folio, invoice.sealed_xml) == ("scheduled", None, None)

    due = clock.set(issue_at + dt.timedelta(seconds=40))
    assert release_scheduled_invoices() == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.folio) == ("pending", 1)
    assert invoices_stamp_queued() == 1
    invoice.refresh_from_db()
    assert invoice.status == "stamped" and invoice.uuid
    # Fecha is when it was sealed and stamped (the moved clock), not when it was asked for or its issue_at.
    assert _fecha(invoice) == due.astimezone(MX).replace(microsecond=0)
    assert invoice.issued_at == due.replace(microsecond=0) and invoice.stamped_at >= invoice.issued_at
    assert _fecha(invoice) - requested > dt.timedelta(hours=2)
    moves = list(Event.objects.filter(entity="invoice", object_id=invoice.pk).order_by("pk")
                 .values_list("from_status", "to_status"))
    assert moves[:2] == [("", "scheduled"), ("scheduled", "pending")]
    assert api.get(f"/api/v1/invoices/{invoice.pk}/xml").status_code == 200
    assert release_scheduled_invoices() == 0  # released once


def test_withdrawn_before_its_time_it_leaves_no_document_no_folio_and_frees_its_tickets(api, ticket, clock):
    issue_at = timezone.now() + dt.timedelta(hours=3)
    scheduled = _create(api, [ticket.pk], issue_at).json()
    url = f"/api/v1/invoices/{scheduled['id']}"
    cancel = api.post(f"{url}/cancel", {"motive": "02"}, format="json")
    assert cancel.status_code == 409 and "withdraw" in cancel.json()["error"]["message"]

    response = api.post(f"{url}/withdraw")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["folio"], body["uuid"], body["issued_at"]) == ("withdrawn", None, None, None)
    invoice = Invoice.objects.get(pk=scheduled["id"])
    assert invoice.sealed_xml is None and invoice.stamped_xml is None and not invoice.pdf
    assert api.get(f"{url}/pdf").status_code == 409
    assert Ticket.objects.get(pk=ticket.pk).status == "open"
    assert not FolioCounter.objects.filter(merchant=ticket.merchant, next_folio__gt=1).exists()
    again = api.post(f"{url}/withdraw")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_scheduled"

    # Its ticket goes into another invoice, which takes the first folio.
    now = _create(api, [ticket.pk], None)
    assert now.status_code == 202 and (now.json()["status"], now.json()["folio"]) == ("pending", 1)
    clock.set(issue_at + dt.timedelta(minutes=5))
    assert release_scheduled_invoices() == 0
    assert Invoice.objects.get(pk=scheduled["id"]).status == "withdrawn"


def test_a_global_does_not_swallow_the_tickets_of_a_scheduled_invoice_and_takes_them_once_withdrawn(
        api, merchant, branch, make_ticket, clock):
    merchant.global_periodicity = "01"
    merchant.save()
    today = timezone.localdate(timezone.now(), MX)
    now = clock.set(dt.datetime.combine(today, dt.time(10), tzinfo=MX))
    sold = now - dt.timedelta(days=1)  # yesterday at 10:00: a closed daily period
    held, loose = make_ticket(branch, number="PROGRAMADO", sold_at=sold), make_ticket(branch, number="SUELTO",
                                                                                        sold_at=sold)
    scheduled = _create(api, [held.pk], now + dt.timedelta(hours=5))
    assert scheduled.status_code == 202, scheduled.json()

    [first] = global_invoices_run_merchant(merchant=merchant, now=now)
    assert list(first.ticket_links.values_list("ticket_id", flat=True)) == [loose.pk]
    assert Ticket.objects.get(pk=held.pk).status == "invoiced"

    assert api.post(f"/api/v1/invoices/{scheduled.json()['id']}/withdraw").status_code == 200
    [second] = global_invoices_run_merchant(merchant=merchant, now=now)
    assert list(second.ticket_links.values_list("ticket_id", flat=True)) == [held.pk]


@pytest.mark.parametrize("value,code", [
    ("2026-06-01T09:00:00", "validation_error"),  # no time zone
    ("mañana a las nueve", "validation_error"),
    ("2026-02-30T09:00:00-06:00", "validation_error"),
])
def test_an_issue_at_that_is_not_an_instant_is_a_400_naming_it(api, ticket, value, code):
    response = _create(api, [ticket.pk], value)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and "issue_at" in error["details"]
    assert not Invoice.objects.exists() and Ticket.objects.get(pk=ticket.pk).status == "open"


def test_issue_at_in_the_past_is_issued_now_within_five_minutes_and_refused_beyond(api, branch, make_ticket):
    late = _create(api, [make_ticket(branch, number="A").pk], timezone.now() - dt.timedelta(hours=1))
    assert late.status_code == 400
    error = late.json()["error"]
    assert error["code"] == "issue_at_in_past" and "omite issue_at" in error["message"]
    assert not Invoice.objects.exists()
    skew = _create(api, [make_ticket(branch, number="B").pk], timezone.now() - dt.timedelta(minutes=2))
    assert skew.status_code == 202 and (skew.json()["status"], skew.json()["folio"]) == ("pending", 1)


def test_issue_at_after_the_tickets_invoicing_deadline_is_refused(api, ticket):
    Ticket.objects.filter(pk=ticket.pk).update(expires_at=timezone.now() + dt.timedelta(hours=3))
    response = _create(api, [ticket.pk], timezone.now() + dt.timedelta(hours=4))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "issue_at_too_late" and error["details"]["ticket_id"] == ticket.pk
    assert "plazo para facturar el ticket T1" in error["message"]
    assert not Invoice.objects.exists() and Ticket.objects.get(pk=ticket.pk).status == "open"
    assert _create(api, [ticket.pk], timezone.now() + dt.timedelta(hours=2)).status_code == 202


def test_issue_at_past_the_global_deadline_of_the_sale_is_refused(api, merchant, branch, make_ticket, clock):
    merchant.global_periodicity = "01"
    merchant.save()
    today = timezone.localdate(timezone.now(), MX)
    now = clock.set(dt.datetime.combine(today, dt.time(10), tzinfo=MX))
    sold = make_ticket(branch, number="AYER", sold_at=now - dt.timedelta(days=1))
    # Yesterday's global must be stamped by midnight tonight; a scheduled invoice leaves an hour of margin.
    response = _create(api, [sold.pk], dt.datetime.combine(today, dt.time(23, 30), tzinfo=MX))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "issue_at_too_late" and "factura global" in error["message"]
    assert dt.datetime.fromisoformat(error["details"]["latest"]) == dt.datetime.combine(today, dt.time(23),
                                                                                         tzinfo=MX)
    ok = _create(api, [sold.pk], dt.datetime.combine(today, dt.time(22, 30), tzinfo=MX))
    assert ok.status_code == 202 and ok.json()["status"] == "scheduled"


def test_the_idempotency_key_covers_issue_at(api, ticket):
    issue_at = (timezone.now() + dt.timedelta(hours=2)).replace(microsecond=0)
    first = _create(api, [ticket.pk], issue_at, key="venta-9")
    again = _create(api, [ticket.pk], issue_at, key="venta-9")
    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    other = _create(api, [ticket.pk], issue_at + dt.timedelta(hours=1), key="venta-9")
    assert other.status_code == 422
    assert other.json()["error"]["details"]["fields"] == ["issue_at"]


def test_due_invoices_are_released_in_order_of_their_time_each_once(api, branch, make_ticket, clock):
    base = timezone.now()
    later = _create(api, [make_ticket(branch, number="L").pk], base + dt.timedelta(hours=2)).json()
    sooner = _create(api, [make_ticket(branch, number="S").pk], base + dt.timedelta(hours=1)).json()
    waiting = _create(api, [make_ticket(branch, number="W").pk], base + dt.timedelta(hours=5)).json()
    clock.set(base + dt.timedelta(hours=3))
    assert release_scheduled_invoices() == 2 and release_scheduled_invoices() == 0
    folios = dict(Invoice.objects.values_list("pk", "folio"))
    assert (folios[sooner["id"]], folios[later["id"]], folios[waiting["id"]]) == (1, 2, None)


def test_the_release_runs_every_minute_on_the_stamping_queue():
    assert ("invoicing.tasks.release_scheduled_invoices", 1, STAMP) in [(f, m, q) for _, f, m, q in SCHEDULES]


def test_another_merchants_key_cannot_see_or_withdraw_a_scheduled_invoice(api, other_api, ticket):
    scheduled = _create(api, [ticket.pk], timezone.now() + dt.timedelta(hours=2)).json()
    url = f"/api/v1/invoices/{scheduled['id']}"
    for response in (other_api.post(f"{url}/withdraw"), other_api.get(url)):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert other_api.get("/api/v1/invoices?status=scheduled").json()["count"] == 0
    assert Invoice.objects.get(pk=scheduled["id"]).status == "scheduled"
    assert api.get("/api/v1/invoices?status=scheduled").json()["count"] == 1


def test_the_schema_documents_issue_at_and_withdraw_with_examples(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    create = schema["paths"]["/api/v1/invoices"]["post"]
    assert "issue_at" in create["description"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert any("issue_at" in e["value"] for e in examples.values())
    withdraw = schema["paths"]["/api/v1/invoices/{id}/withdraw"]["post"]
    assert withdraw["responses"]["200"]["content"]["application/json"]["examples"]


# --- admin -----------------------------------------------------------------------------------------------------

def _staff(client, make_staff, merchant, name, role=Role.OWNER):
    user = make_staff(merchant, name)
    MerchantMembership.objects.filter(user=user).update(role=role)
    client.force_login(User.objects.get(pk=user.pk))
    return client


def test_the_admin_shows_scheduled_invoices_filters_them_and_withdraws_them(api, client, make_staff, merchant,
                                                                            branch, make_ticket):
    issue_at = timezone.now() + dt.timedelta(hours=2)
    scheduled = _create(api, [make_ticket(branch, number="P").pk], issue_at).json()
    issued = _create(api, [make_ticket(branch, number="N").pk], None).json()
    staff = _staff(client, make_staff, merchant, "contadora-a", Role.ACCOUNTANT)
    listing = staff.get("/admin/invoicing/invoice/?situacion=scheduled").content.decode()
    assert "Programada" in listing and f"programada: {timezone.localtime(issue_at):%d/%m/%y %H:%M}" in listing
    assert staff.get(f"/admin/invoicing/invoice/{scheduled['id']}/change/").status_code == 200

    response = staff.post("/admin/invoicing/invoice/", {"action": "withdraw_scheduled",
                                                       "_selected_action": [scheduled["id"], issued["id"]]},
                          follow=True)
    page = response.content.decode()
    assert "retirada(s)" in page and "no estaban programadas" in page
    assert Invoice.objects.get(pk=scheduled["id"]).status == "withdrawn"
    assert Invoice.objects.get(pk=issued["id"]).status == "pending"
    assert Ticket.objects.get(number="P").status == "open"


def test_another_merchants_staff_cannot_withdraw_or_see_it(api, client, make_staff, other_merchant, ticket):
    scheduled = _create(api, [ticket.pk], timezone.now() + dt.timedelta(hours=2)).json()
    staff = _staff(client, make_staff, other_merchant, "dueno-b")
    staff.post("/admin/invoicing/invoice/", {"action": "withdraw_scheduled", "_selected_action": [scheduled["id"]]})
    assert Invoice.objects.get(pk=scheduled["id"]).status == "scheduled"
    assert staff.get(f"/admin/invoicing/invoice/{scheduled['id']}/change/").status_code in (302, 404)
    assert "CACX7605101P8" not in staff.get("/admin/invoicing/invoice/?situacion=scheduled").content.decode()


def test_the_shoppers_invoice_page_says_it_is_scheduled_then_withdrawn(api, client, merchant, ticket):
    from django.urls import reverse

    scheduled = _create(api, [ticket.pk], timezone.now() + dt.timedelta(hours=2)).json()
    invoice = Invoice.objects.get(pk=scheduled["id"])
    url = reverse("shop-invoice", args=(merchant.slug, invoice.public_code))
    page = client.get(url).content.decode()
    assert "Factura programada" in page and "data-poll" not in page
    api.post(f"/api/v1/invoices/{invoice.pk}/withdraw")
    page = client.get(url).content.decode()
    assert "Factura retirada" in page and "no se generó ningún CFDI" in page
