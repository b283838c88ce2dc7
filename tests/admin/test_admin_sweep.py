"""Staff of merchant B against merchant A through every admin URL there is (issue 14, finding 1).

Merchant A gets a row in every table the admin shows; B's staff user holds every permission of every app, so
only the tenancy of the admin stands between them. The URLs are enumerated from ``admin.site`` (see
admin_sweep.py): a model admin registered later is swept too, and one registered without data here fails the
test until a row is added to ``populate``.
"""

import datetime as dt
import logging
import sys
import types
from decimal import Decimal

import pytest
from admin_sweep import Victim, sweep
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.test import Client, override_settings
from django.urls import path
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Success

from infra.admin_scope import MerchantAdminSite, MerchantScopedAdmin
from infra.models import Event
from infra.roles import Role
from invoicing.cfdi.testcsd import generate_test_csd
from invoicing.models import AccountingExport, Certificate, GlobalPeriod, Invoice, LateRequest
from invoicing.services import invoice_issue
from invoicing.services.certificates import certificate_install
from invoicing.services.exports import export_request, export_run
from invoicing.services.global_invoice import global_invoice_issue
from invoicing.services.late_request import late_request_issue
from invoicing.services.stamping import invoices_stamp_queued
from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint
from tickets.models import ApiKey, Batch, Branch, ExchangeRate, Merchant, MerchantMembership, Ticket
from tickets.services import api_key_create

A_TAG, B_TAG = "ALFASECRETA", "BETAPROPIA"


@pytest.fixture(autouse=True)
def quiet(settings, caplog):
    settings.INVOICE_STAMP_LINGER_MS = 0
    caplog.set_level(logging.ERROR, logger="django.request")  # hundreds of expected 403/404 warnings


def populate(merchant, tag, make_ticket, receptor, postal_code):
    """One row (at least) of every table the admin shows, all carrying ``tag`` where a text field allows."""
    merchant.global_periodicity = "01"
    merchant.self_invoice_window, merchant.self_invoice_days = "days", 30
    merchant.save()
    cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
    certificate_install(merchant=merchant, cer=cer, key=key, password=password)
    branch = Branch.objects.create(merchant=merchant, code=f"{tag}-SUC", name=f"Sucursal {tag}",
                                   postal_code=postal_code)
    tz = merchant.tzinfo
    yesterday = (timezone.localtime(timezone.now(), tz) - dt.timedelta(days=1)).replace(hour=12, minute=0)
    in_global = [make_ticket(branch, number=f"{tag}-GLOBAL-{i}", sold_at=yesterday, payment_form="04")
                 for i in (1, 2)]
    nominative = make_ticket(branch, number=f"{tag}-NOMINATIVO", sold_at=yesterday)
    make_ticket(branch, number=f"{tag}-ABIERTO", total=Decimal("58.00"))
    # The nominative invoice first: its ticket is then out of the global of the same day.
    invoice_issue(merchant=merchant, ticket_ids=[nominative.pk], receptor=receptor)
    global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat())
    for _ in range(5):
        if not invoices_stamp_queued():
            break
    stamped = Invoice.objects.filter(merchant=merchant, status="stamped")
    assert stamped.count() == 2 and all(i.stamped_xml for i in stamped)
    late_request_issue(merchant=merchant, ticket_ids=[in_global[0].pk], receptor=receptor)
    # A scheduled invoice (issue_at): its "Cancelar la emisión programada" action must not reach across merchants.
    invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"{tag}-PROGRAMADO").pk],
                  receptor=receptor, issue_at=timezone.now() + dt.timedelta(hours=2))
    api_key_create(merchant=merchant, name=f"llave {tag}", scopes=["tickets"])
    ExchangeRate.objects.create(merchant=merchant, currency="USD", valid_from=dt.date(2026, 5, 4),
                                rate=Decimal("17.250300"))
    Batch.objects.create(merchant=merchant, batch_id=f"lote-{tag}", status="done", total_count=1, created_count=1,
                         report=[{"number": f"{tag}-LOTE", "status": "created"}])
    endpoint = WebhookEndpoint.objects.create(merchant=merchant, url=f"https://{tag.lower()}.example.com/hooks",
                                              description=f"webhook {tag}")
    WebhookDelivery.objects.create(merchant=merchant, endpoint=endpoint, event="invoice.stamped",
                                   payload={"tag": tag}, status="failed", attempts=10,
                                   response_excerpt=f"respuesta {tag}")
    today = timezone.localdate(timezone.now(), tz)
    export = export_request(merchant=merchant, first_day=today.replace(day=1) - dt.timedelta(days=1),
                            last_day=today, branch=branch, actor=f"contador {tag}")
    assert export_run(export_id=export.pk) == "done"
    return branch


@pytest.fixture
def world(merchant, other_merchant, make_ticket, receptor, make_staff):
    """A (``merchant``) with its staff, B (``other_merchant``) with a staff user holding every permission."""
    populate(merchant, A_TAG, make_ticket, receptor, "06600")
    populate(other_merchant, B_TAG, make_ticket, receptor, "64000")
    victim_staff = make_staff(merchant, f"staff_{A_TAG}")
    Group.objects.create(name=f"grupo {A_TAG}").user_set.add(victim_staff)
    Schedule.objects.create(name=f"programa {A_TAG}", func="portal.tasks.prune_task_results")
    now = timezone.now()
    Success.objects.create(id="a" * 32, name=f"tarea {A_TAG}", func="portal.tasks.prune_task_results", started=now,
                           stopped=now, success=True)
    Success.objects.create(id="b" * 32, name=f"fallida {A_TAG}", func="portal.tasks.prune_task_results", started=now,
                           stopped=now, success=False)
    OrmQ.objects.create(key=f"cola {A_TAG}", payload="-")
    seen = {"user_agent": "navegador", "ip_address": "203.0.113.9", "username": victim_staff.username,
            "http_accept": "*/*", "path_info": "/admin/login/"}
    AccessAttempt.objects.create(**seen, get_data="", post_data="", failures_since_start=1)
    AccessLog.objects.create(**seen)
    AccessFailureLog.objects.create(**seen)
    attacker = make_staff(other_merchant, "atacante", permissions=Permission.objects.all())
    superuser = User.objects.create_superuser("root", password="x")
    client = Client()
    client.force_login(attacker)
    return {"client": client, "attacker": attacker, "superuser": superuser, "victim_staff": victim_staff}


def victim_of(merchant):
    uuids = [str(u).upper() for u in Invoice.objects.filter(merchant=merchant, uuid__isnull=False)
             .values_list("uuid", flat=True)]
    return Victim(merchant_id=merchant.pk, markers=[A_TAG, A_TAG.lower(), merchant.legal_name, merchant.rfc, *uuids])


@pytest.mark.parametrize("role", Role.values)
def test_staff_of_b_get_nothing_of_a_from_any_admin_url(world, merchant, other_merchant, role):
    MerchantMembership.objects.filter(user=world["attacker"]).update(role=role)
    for model in (Merchant, Branch, Ticket, Batch, ApiKey, Event, MerchantMembership, Certificate, Invoice,
                  GlobalPeriod, LateRequest, WebhookEndpoint, WebhookDelivery, ExchangeRate, AccountingExport):
        assert model._default_manager.filter(**({"pk": merchant.pk} if model is Merchant else
                                                {"merchant": merchant})).exists(), model
    leaks, requests = sweep(world["client"], admin.site, prefix="/admin/", victim=victim_of(merchant),
                            attacker_merchant_id=other_merchant.pk, superuser=world["superuser"])
    assert leaks == [], "\n".join(leaks)
    assert requests > 300  # every model's views, actions and the autocomplete of every relation were tried
    assert MerchantMembership.objects.get(user=world["attacker"]).merchant_id == other_merchant.pk


def test_the_superuser_sees_a_which_proves_the_markers_are_there(world, merchant):
    root = Client()
    root.force_login(world["superuser"])
    assert A_TAG in root.get("/admin/tickets/ticket/").content.decode()
    assert A_TAG in root.get("/admin/auth/user/").content.decode()
    membership = MerchantMembership.objects.get(user=world["victim_staff"])
    assert root.get(f"/admin/tickets/merchantmembership/{membership.pk}/change/").status_code == 200


# ---------------------------------------------------------------- the sweep catches what it should


def _site_urls(site):
    module = types.ModuleType(f"sweep_urls_{site.name}")
    module.urlpatterns = [path("admin/", site.urls)]
    sys.modules[module.__name__] = module
    return override_settings(ROOT_URLCONF=module.__name__)


@pytest.fixture
def small_world(merchant, other_merchant, make_staff):
    Branch.objects.create(merchant=merchant, code="A1", name=f"Sucursal {A_TAG}", postal_code="06600")
    Branch.objects.create(merchant=other_merchant, code="B1", name=f"Sucursal {B_TAG}", postal_code="64000")
    make_staff(merchant, f"staff_{A_TAG}")
    attacker = make_staff(other_merchant, "atacante", permissions=Permission.objects.all())
    client = Client()
    client.force_login(attacker)
    return client, attacker, User.objects.create_superuser("root", password="x")


class LeakyBranchAdmin(admin.ModelAdmin):
    merchant_scoped = True  # claims it, scopes nothing
    search_fields = ["name"]

    def has_delete_permission(self, request, obj=None):
        return False  # keeps the victim's branch for the autocomplete to list


class PlainMembershipAdmin(admin.ModelAdmin):
    pass


def _sweep_site(site, small_world, merchant, other_merchant):
    client, _, superuser = small_world
    with _site_urls(site):
        leaks, _ = sweep(client, site, prefix="/admin/", victim=victim_of(merchant),
                         attacker_merchant_id=other_merchant.pk, superuser=superuser)
    return leaks


def test_the_sweep_reports_the_membership_takeover_on_a_plain_admin_site(small_world, merchant, other_merchant):
    site = admin.AdminSite(name="plain")  # what the project had: a plain site, the membership admin not scoped
    site.register(MerchantMembership, PlainMembershipAdmin)
    leaks = _sweep_site(site, small_world, merchant, other_merchant)
    assert any("tickets.merchantmembership: rows changed" in leak for leak in leaks), leaks
    assert any("merchantmembership" in leak and A_TAG in leak for leak in leaks), leaks


def test_the_project_site_makes_an_unscoped_admin_superuser_only(small_world, merchant, other_merchant):
    site = MerchantAdminSite(name="guarded")
    site.register(MerchantMembership, PlainMembershipAdmin)
    site.register(Branch, type("BranchAdmin", (MerchantScopedAdmin,), {"search_fields": ["name"]}))
    assert _sweep_site(site, small_world, merchant, other_merchant) == []
    client, attacker, _ = small_world
    own = MerchantMembership.objects.get(user=attacker)
    with _site_urls(site):
        response = client.post(f"/admin/tickets/merchantmembership/{own.pk}/change/",
                               {"user": attacker.pk, "merchant": merchant.pk})
    assert response.status_code == 403
    assert MerchantMembership.objects.get(pk=own.pk).merchant_id == other_merchant.pk


def test_the_sweep_reports_an_admin_that_claims_scoping_without_doing_it(small_world, merchant, other_merchant):
    site = MerchantAdminSite(name="leaky")
    site.register(Branch, LeakyBranchAdmin)
    leaks = _sweep_site(site, small_world, merchant, other_merchant)
    assert any("/admin/tickets/branch/" in leak and A_TAG in leak for leak in leaks), leaks
    assert any("on the victim's row" in leak for leak in leaks), leaks
    assert any("autocomplete" in leak for leak in leaks), "\n".join(leaks)


def test_the_sweep_asks_for_data_when_a_registered_model_has_none(small_world, merchant, other_merchant):
    site = MerchantAdminSite(name="nodata")
    site.register(Schedule)
    leaks = _sweep_site(site, small_world, merchant, other_merchant)
    assert leaks == ["django_q.Schedule: the sweep has no row of the victim's to try; add one"]
