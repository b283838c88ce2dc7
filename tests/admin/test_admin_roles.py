"""Roles of a merchant's staff: each role can do exactly its list (issue 17), checked through the site itself.

The expected lists below are written out by hand from the issue, not derived from infra/roles.py: a change of the
capability table that gives a role more (or less) than its list fails here. The tenancy of every role against
another merchant is the sweep's (test_admin_sweep.py, parametrized by role).
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client, RequestFactory

from infra.roles import Role
from tickets.models import MerchantMembership

EVERYTHING = object()
# Per model admin: the permissions ("view", "add", "change", "delete"), actions and custom views a role has.
EXPECTED = {
    Role.CASHIER: {
        "tickets.ticket": {"view"},
        "invoicing.invoice": {"view", "resend_email", "resend_to", "retry_now"},
    },
    Role.ACCOUNTANT: {
        "tickets.merchant": {"view", "pdf_preview"}, "tickets.branch": {"view"}, "tickets.ticket": {"view"},
        "tickets.batch": {"view"}, "tickets.apikey": {"view"}, "infra.event": {"view"}, "tickets.exchangerate": {"view"},
        "tickets.staffmember": {"view"}, "invoicing.certificate": {"view"},
        "invoicing.invoice": {"view", "document", "withdraw_scheduled"},
        "invoicing.globalperiod": {"view", "preview"}, "invoicing.laterequest": {"view"},
        "invoicing.webhookendpoint": {"view"}, "invoicing.webhookdelivery": {"view"},
        "invoicing.accountingexport": {"view", "add", "download"},
    },
    Role.OWNER: EVERYTHING,
}
# Left to the operator (superusers) even for owners: creating, deleting a merchant.
OPERATOR_ONLY = {"tickets.merchant": {"add", "delete", "delete_selected"}}


def _abilities(model_admin, request) -> set[str]:
    found = {perm for perm in ("view", "add", "change", "delete")
             if getattr(model_admin, f"has_{perm}_permission")(request)}
    found |= set(model_admin.get_actions(request))
    for name, needs in getattr(model_admin, "custom_view_capabilities", {}).items():
        needs = needs if isinstance(needs, dict) else {"GET": needs}
        if needs.get("GET") and model_admin.can(request, needs["GET"]):
            found.add(name)
    return found


def _everything(model_admin, superuser) -> set[str]:
    request = RequestFactory().get("/admin/")
    request.user = superuser
    return _abilities(model_admin, request)


@pytest.mark.parametrize("role", Role.values)
def test_each_role_can_do_exactly_its_list(merchant, make_staff, role):
    user = make_staff(merchant, f"persona-{role}", permissions=[])
    MerchantMembership.objects.filter(user=user).update(role=role)
    user = User.objects.get(pk=user.pk)
    superuser = User.objects.create_superuser("root", password="x")
    request = RequestFactory().get("/admin/")
    request.user = user
    got, expected = {}, {}
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        abilities = _abilities(model_admin, request)
        if abilities:
            got[label] = abilities
        if EXPECTED[role] is EVERYTHING and getattr(model_admin, "merchant_scoped", False):
            expected[label] = _everything(model_admin, superuser) - OPERATOR_ONLY.get(label, set())
        elif EXPECTED[role] is not EVERYTHING and label in EXPECTED[role]:
            expected[label] = EXPECTED[role][label]
    assert got == expected


def _client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def team(merchant, make_staff):
    people = {}
    for role in Role.values:
        user = make_staff(merchant, f"persona-{role}", permissions=[])
        MerchantMembership.objects.filter(user=user).update(role=role)
        people[role] = _client(user)
    return people


def test_a_cashier_gets_no_settings_page_nor_downloads(team, merchant):
    cashier = team[Role.CASHIER]
    for url in (f"/admin/tickets/merchant/{merchant.pk}/change/", "/admin/invoicing/certificate/add/",
                "/admin/tickets/apikey/add/", "/admin/tickets/staffmember/add/", "/admin/invoicing/webhookendpoint/",
                "/admin/invoicing/globalperiod/vista-previa/"):
        assert cashier.get(url).status_code == 403, url
    assert cashier.get("/admin/tickets/ticket/").status_code == 200
    assert cashier.get("/admin/invoicing/invoice/").status_code == 200


def test_the_accountant_reads_settings_but_cannot_change_them(team, merchant):
    accountant = team[Role.ACCOUNTANT]
    page = accountant.get(f"/admin/tickets/merchant/{merchant.pk}/change/")
    assert page.status_code == 200 and 'name="legal_name"' not in page.content.decode()
    accountant.post(f"/admin/tickets/merchant/{merchant.pk}/change/", {"legal_name": "OTRO NOMBRE"})
    merchant.refresh_from_db()
    assert merchant.legal_name == "ESCUELA KEMPER URGATE"
    assert accountant.get("/admin/tickets/staffmember/add/").status_code == 403


def test_the_owner_invites_a_cashier_who_sets_a_password_and_logs_in(team, merchant, settings,
                                                                    django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    owner = team[Role.OWNER]
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post("/admin/tickets/staffmember/add/",
                              {"email": "Nueva.Cajera@Example.com", "name": "Nueva", "role": Role.CASHIER})
    assert response.status_code == 302, response.content.decode()[:3000]
    member = MerchantMembership.objects.select_related("user").get(user__email="nueva.cajera@example.com")
    assert member.merchant_id == merchant.pk and member.role == Role.CASHIER
    assert member.user.is_staff and not member.user.has_usable_password()
    [message] = mail.outbox
    assert message.to == ["nueva.cajera@example.com"] and "Cajero" in message.body
    link = next(line for line in message.body.splitlines() if "/admin/clave/" in line)
    path = link[link.index("/admin/clave/"):]
    anonymous = Client()
    form = anonymous.get(path, follow=True)
    assert form.status_code == 200 and "new_password1" in form.content.decode()
    done = anonymous.post(form.redirect_chain[-1][0], {"new_password1": "Cajera-2026-segura",
                                                       "new_password2": "Cajera-2026-segura"})
    assert done.status_code == 302
    browser = Client()
    login = browser.post("/admin/login/?next=/admin/", {"username": "nueva.cajera@example.com",
                                                        "password": "Cajera-2026-segura"})
    assert login.status_code == 302 and login["Location"] == "/admin/"
    assert browser.get("/admin/invoicing/invoice/").status_code == 200
    assert browser.get(f"/admin/tickets/merchant/{merchant.pk}/change/").status_code == 403


def test_an_existing_email_is_refused_and_nothing_is_created(team, merchant, other_merchant, make_staff):
    make_staff(other_merchant, "ya@example.com")
    User.objects.filter(username="ya@example.com").update(email="ya@example.com")
    response = team[Role.OWNER].post("/admin/tickets/staffmember/add/",
                                     {"email": "YA@example.com", "role": Role.CASHIER})
    assert response.status_code == 200 and "Ya existe un usuario con ese correo" in response.content.decode()
    assert MerchantMembership.objects.filter(user__username="ya@example.com").get().merchant_id == other_merchant.pk


def test_the_last_owner_cannot_demote_or_lock_out_themselves(team, merchant):
    owner = team[Role.OWNER]
    me = MerchantMembership.objects.get(merchant=merchant, role=Role.OWNER)
    response = owner.post(f"/admin/tickets/staffmember/{me.pk}/change/", {"role": Role.CASHIER, "is_active": "on"})
    assert response.status_code == 200 and "al menos un dueño" in response.content.decode()
    me.refresh_from_db()
    assert me.role == Role.OWNER
    cashier = MerchantMembership.objects.get(merchant=merchant, role=Role.CASHIER)
    assert owner.post(f"/admin/tickets/staffmember/{cashier.pk}/change/",
                      {"role": Role.ACCOUNTANT}).status_code == 302
    cashier.refresh_from_db()
    assert cashier.role == Role.ACCOUNTANT and not cashier.user.is_active  # access switched off with it
