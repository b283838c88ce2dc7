"""The admin's tenancy, case by case: the membership takeover, moving rows to another merchant, inlines, choices,
autocomplete, list filters, custom views and the site-level shortcut."""

import sys
import types

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path

from infra.admin_scope import MerchantAdminSite, MerchantScopedAdmin, SuperuserOnlyAdmin
from infra.roles import Cap
from invoicing.models import Invoice
from tickets.models import Branch, Merchant, MerchantMembership, Ticket


@pytest.fixture
def attacker(other_merchant, make_staff):
    """Staff of the other merchant holding every permission of every app."""
    user = make_staff(other_merchant, "atacante", permissions=Permission.objects.all())
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def test_staff_cannot_move_their_membership_to_another_merchant(attacker, merchant, other_merchant):
    own = MerchantMembership.objects.get(user=attacker.user)
    url = f"/admin/tickets/merchantmembership/{own.pk}/change/"
    assert attacker.get(url).status_code == 403
    assert attacker.post(url, {"user": attacker.user.pk, "merchant": merchant.pk}).status_code == 403
    assert attacker.post("/admin/tickets/merchantmembership/add/",
                         {"user": attacker.user.pk, "merchant": merchant.pk}).status_code == 403
    assert attacker.get("/admin/tickets/merchantmembership/").status_code == 403
    assert MerchantMembership.objects.get(pk=own.pk).merchant_id == other_merchant.pk
    # … and the index does not offer it, nor the users, groups or the task queue.
    index = attacker.get("/admin/").content.decode()
    for hidden in ("merchantmembership", "/admin/auth/", "/admin/django_q/"):
        assert hidden not in index


def test_every_admin_that_is_not_merchant_scoped_is_superuser_only():
    for model, model_admin in admin.site._registry.items():
        assert getattr(model_admin, "merchant_scoped", False) or isinstance(model_admin, SuperuserOnlyAdmin), model
    for label in ("auth.user", "auth.group", "django_q.schedule", "django_q.success", "django_q.failure",
                  "django_q.ormq", "tickets.merchantmembership", "axes.accessattempt", "axes.accesslog"):
        model = next(m for m in admin.site._registry if m._meta.label_lower == label)
        assert isinstance(admin.site._registry[model], SuperuserOnlyAdmin), label


def test_a_superuser_still_manages_memberships(merchant, other_merchant, make_staff):
    staff = make_staff(other_merchant, "ana")
    root = Client()
    root.force_login(User.objects.create_superuser("root", password="x"))
    own = MerchantMembership.objects.get(user=staff)
    response = root.post(f"/admin/tickets/merchantmembership/{own.pk}/change/",
                         {"user": staff.pk, "merchant": merchant.pk, "role": "owner"})
    assert response.status_code == 302
    assert MerchantMembership.objects.get(pk=own.pk).merchant_id == merchant.pk


def test_staff_cannot_move_their_branch_to_another_merchant(attacker, merchant, other_branch):
    url = f"/admin/tickets/branch/{other_branch.pk}/change/"
    response = attacker.post(url, {"merchant": merchant.pk, "code": "CENTRO", "name": "Renombrada",
                                   "postal_code": "64000", "invoice_serie": "F", "credit_note_serie": "NC",
                                   "global_serie": "G", "is_active": "on"})
    assert response.status_code == 302
    other_branch.refresh_from_db()
    assert other_branch.name == "Renombrada" and other_branch.merchant_id != merchant.pk


def _merchant_form(merchant, **extra):
    data = {"slug": merchant.slug, "legal_name": merchant.legal_name, "rfc": merchant.rfc,
            "tax_regime": merchant.tax_regime, "time_zone": merchant.time_zone, "brand_color": "#0B5FFF",
            "self_invoice_window": "month_end", "self_invoice_days": 30, "global_periodicity": "04",
            "self_correction_window": "month", "self_correction_days": 30,
            "global_grouping": "branch", "late_request_policy": "credit_note", "pac": "sandbox",
            "pac_environment": "test", "branches-TOTAL_FORMS": 0, "branches-INITIAL_FORMS": 0}
    data.update(extra)
    return data


def test_the_branch_inline_cannot_take_another_merchants_branch(attacker, merchant, branch, other_merchant,
                                                                other_branch):
    url = f"/admin/tickets/merchant/{other_merchant.pk}/change/"
    hijack = {"branches-TOTAL_FORMS": 1, "branches-INITIAL_FORMS": 1, "branches-0-id": branch.pk,
              "branches-0-merchant": other_merchant.pk, "branches-0-code": "ROBADA", "branches-0-name": "Robada",
              "branches-0-postal_code": "64000", "branches-0-invoice_serie": "F",
              "branches-0-credit_note_serie": "NC", "branches-0-global_serie": "G"}
    attacker.post(url, _merchant_form(other_merchant, **hijack))
    branch.refresh_from_db()
    assert branch.code == "CENTRO" and branch.merchant_id == merchant.pk
    # A new inline row posted with the victim as its merchant is created under the attacker's merchant, or not at all.
    new = {"branches-TOTAL_FORMS": 1, "branches-INITIAL_FORMS": 0, "branches-0-merchant": merchant.pk,
           "branches-0-code": "NUEVA", "branches-0-name": "Nueva", "branches-0-postal_code": "64000",
           "branches-0-invoice_serie": "F", "branches-0-credit_note_serie": "NC", "branches-0-global_serie": "G"}
    attacker.post(url, _merchant_form(other_merchant, **new))
    assert not Branch.objects.filter(merchant=merchant, code="NUEVA").exists()
    assert not Branch.objects.filter(code="ROBADA").exists()


def test_staff_edit_their_own_merchant_but_not_its_suspension(attacker, other_merchant):
    other_merchant.is_active = False
    other_merchant.save()
    url = f"/admin/tickets/merchant/{other_merchant.pk}/change/"
    response = attacker.post(url, _merchant_form(other_merchant, legal_name="NUEVA RAZON", is_active="on"))
    assert response.status_code == 302
    other_merchant.refresh_from_db()
    assert other_merchant.legal_name == "NUEVA RAZON" and other_merchant.is_active is False


def test_another_merchants_page_and_actions_are_refused(attacker, merchant):
    assert attacker.get(f"/admin/tickets/merchant/{merchant.pk}/change/").status_code == 302
    attacker.post("/admin/tickets/merchant/", {"action": "probar_conexion", "_selected_action": [merchant.pk]})
    assert "ESCUELA KEMPER" not in attacker.get("/admin/tickets/merchant/").content.decode()


def test_autocomplete_lists_only_the_users_own_rows(attacker, branch, other_branch):
    url = "/admin/autocomplete/"
    response = attacker.get(url, {"app_label": "tickets", "model_name": "ticket", "field_name": "merchant"})
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [str(other_branch.merchant_id)]
    # Users (a membership's user field) are the superuser's: refused outright.
    response = attacker.get(url, {"app_label": "tickets", "model_name": "merchantmembership", "field_name": "user"})
    assert response.status_code == 403


def test_staff_without_a_merchant_get_no_permission(db, branch, make_ticket):
    make_ticket(branch, number="T-SIN-COMERCIO")
    user = User.objects.create_user("suelto", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    client = Client()
    client.force_login(user)
    assert client.get("/admin/tickets/ticket/").status_code == 403
    assert "T-SIN-COMERCIO" not in client.get("/admin/").content.decode()


def test_view_on_site_shortcut_answers_the_same_for_any_row_staff_cannot_see(attacker, merchant, settings):
    """Django's shortcut tells an existing row (no get_absolute_url) from a missing one, of any table."""
    settings.DEBUG = True  # the 404 page then shows the reason
    ct, user_ct = ContentType.objects.get_for_model(Merchant), ContentType.objects.get_for_model(User)
    for url in (f"/admin/r/{ct.pk}/{merchant.pk}/", f"/admin/r/{ct.pk}/999999/",
                f"/admin/r/{user_ct.pk}/{attacker.user.pk}/", "/admin/r/x/1/"):
        response = attacker.get(url)
        assert response.status_code == 404
        assert "El registro no existe." in response.content.decode() and b"get_absolute_url" not in response.content


# ---------------------------------------------------------------- MerchantScopedAdmin on admins written later


class CarelessTicketAdmin(MerchantScopedAdmin):
    """An admin as someone might write it tomorrow: a related list filter, a custom view with its own lookup."""

    list_filter = ["branch"]
    fields = ["branch", "number"]
    view_capability = Cap.FIND
    custom_view_capabilities = {"sello": Cap.FIND}

    def get_urls(self):
        return [path("<path:object_id>/sello/", self.admin_site.admin_view(self.stamp_view),
                     name="tickets_ticket_sello"),
                path("<path:object_id>/sin-capacidad/", self.admin_site.admin_view(self.stamp_view),
                     name="tickets_ticket_undeclared")] + super().get_urls()

    def stamp_view(self, request, object_id):
        ticket = Ticket.objects.get(pk=object_id)  # no scoping here: the admin must catch it anyway
        return HttpResponse(f"ticket {ticket.number}")


@pytest.fixture
def careless_site():
    site = MerchantAdminSite(name="careless")
    site.register(Ticket, CarelessTicketAdmin)
    site.register(Branch, type("BranchAdmin", (MerchantScopedAdmin,), {"search_fields": ["name"]}))
    module = types.ModuleType("careless_admin_urls")
    module.urlpatterns = [path("admin/", site.urls)]
    sys.modules[module.__name__] = module
    with override_settings(ROOT_URLCONF=module.__name__):
        yield site


def test_a_custom_object_view_gets_404_for_another_merchants_row(careless_site, attacker, branch, other_branch,
                                                                 make_ticket):
    theirs = make_ticket(branch, number="AJENO-1")
    mine = make_ticket(other_branch, number="PROPIO-1")
    assert attacker.get(f"/admin/tickets/ticket/{theirs.pk}/sello/").status_code == 404
    assert attacker.get(f"/admin/tickets/ticket/{mine.pk}/sello/").content == b"ticket PROPIO-1"


def test_a_custom_view_that_names_no_capability_is_refused_to_staff(careless_site, attacker, other_branch,
                                                                    make_ticket):
    mine = make_ticket(other_branch, number="PROPIO-1")
    assert attacker.get(f"/admin/tickets/ticket/{mine.pk}/sin-capacidad/").status_code == 403
    root = Client()
    root.force_login(User.objects.create_superuser("root", password="x"))
    assert root.get(f"/admin/tickets/ticket/{mine.pk}/sin-capacidad/").content == b"ticket PROPIO-1"


def test_related_list_filters_and_choices_offer_only_own_rows(careless_site, attacker, merchant, branch,
                                                              other_branch, make_ticket):
    Branch.objects.filter(pk=branch.pk).update(name="SUCURSAJENA")
    Branch.objects.filter(pk=other_branch.pk).update(name="SUCURSPROPIA")
    mine = make_ticket(other_branch, number="PROPIO-1")
    second = Branch.objects.create(merchant=other_branch.merchant, code="NORTE", name="SUCURSNORTE",
                                   postal_code="64000")
    make_ticket(second, number="PROPIO-2")  # a filter with a single choice is not shown
    make_ticket(branch, number="AJENO-1")
    listing = attacker.get("/admin/tickets/ticket/").content.decode()
    assert 'id="changelist-filter"' in listing
    assert "SUCURSPROPIA" in listing and "SUCURSAJENA" not in listing
    change = attacker.get(f"/admin/tickets/ticket/{mine.pk}/change/").content.decode()
    assert "SUCURSPROPIA" in change and "SUCURSAJENA" not in change
    attacker.post(f"/admin/tickets/ticket/{mine.pk}/change/", {"branch": branch.pk, "number": "PROPIO-1"})
    assert Ticket.objects.get(pk=mine.pk).branch_id == other_branch.pk


def test_object_permissions_follow_the_merchant(rf, merchant, other_merchant, make_staff, branch, other_branch):
    model_admin = admin.site._registry[Branch]
    request = rf.get("/")
    request.user = make_staff(other_merchant, "ana")
    assert model_admin.has_change_permission(request, other_branch)
    assert not model_admin.has_change_permission(request, branch)
    assert not model_admin.has_view_permission(request, branch)
    assert not model_admin.has_delete_permission(request, branch)
    invoice_admin = admin.site._registry[Invoice]
    assert invoice_admin.merchant_id_of(Invoice(merchant=merchant, branch=branch)) == merchant.pk
