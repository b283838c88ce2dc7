"""Every back-office page a merchant's staff can reach speaks Spanish, hides internal fields, and errors are branded.

The crawl starts from the site's registry (every merchant-scoped admin: its list, its filters' choices, add, change
and history pages of the merchant's own rows, its custom views) plus the dashboard, so an admin added later is
crawled too. A label fails when it is a Python field name as Django would show it ("created at", "last error
code") or carries a word of Django's English defaults.
"""

import logging
import re
import sys
import types
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client, override_settings
from django.urls import path
from test_admin_sweep import A_TAG, populate

from infra.admin_scope import merchant_lookup
from infra.roles import Role
from tickets.models import MerchantMembership

# Field names that are the same word in Spanish.
SAME_IN_SPANISH = {"total", "subtotal", "serie", "folio", "pac", "pdf", "uuid", "rfc", "ticket", "tickets", "error",
                   "url", "webhook", "slug"}
ENGLISH = re.compile(
    r"(?<![.\w])(add|change|delete|save|history|filter|search|actions?|go|yes|unknown|all|any date|today|past 7 days|"
    r"this month|this year|has date|no date|select(ed)?|show all|clear all filters|home|log out|view site|"
    r"documentation|welcome|recent actions|my actions|none available|by|merchant|branch(es)?|invoices?|attempts|"
    r"last error|discount|created|updated|status|date|name|email|description|failed|successful|scheduled|queued|"
    r"tasks|payload|lease|batch(es)?|events?|entity|source|count|key|amount|lines?|items?|users?|groups?|"
    r"permissions?|active|true|false|none)\b(?!\.\w)",  # not inside identifiers like "invoice.stamped"
    re.IGNORECASE,
)
# What Django shows for a field without a verbose name: its Python name with spaces.
FIELD_NAMES = {f.name.replace("_", " ") for m in apps.get_models() for f in m._meta.get_fields()} - SAME_IN_SPANISH
LABEL_TAGS = {"label", "th", "h1", "h2", "h3", "legend", "caption", "option", "button", "summary"}
INTERNAL = ["llave de idempotencia", "idempotency", "en proceso hasta", "lease", "turno de proceso", "hash de la llave",
            "huella del contenido", "código público", "XML sellado"]


class Labels(HTMLParser):
    """Texts a person reads as labels: form labels, column and section headings, filter titles and choices, action
    and button names, submit values, links of the navigation and the object tools."""

    def __init__(self):
        super().__init__()
        self.labels: list[str] = []
        self._stack: list[str] = []
        self._in_label = 0
        self._in_data_cell = 0
        self._in_select_of_data = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "input" and (a.get("type") in ("submit", "button")) and a.get("value"):
            self.labels.append(a["value"])
        if tag in ("input", "textarea") and a.get("placeholder"):
            self.labels.append(a["placeholder"])
        if tag == "td" or (tag == "div" and "readonly" in classes) or tag == "pre":
            self._in_data_cell += 1
        if tag == "select" and a.get("name") not in ("action",) and not (a.get("id") or "").startswith("changelist"):
            self._in_select_of_data += 1  # choices of a data field: values, checked by the model's own choices
        if tag in LABEL_TAGS:
            self._stack.append(tag)
            self._in_label += 1
        else:
            self._stack.append("")

    def handle_endtag(self, tag):
        if tag == "td" or tag == "pre":
            self._in_data_cell = max(0, self._in_data_cell - 1)
        if tag == "select":
            self._in_select_of_data = max(0, self._in_select_of_data - 1)
        if self._stack:
            opened = self._stack.pop()
            if opened:
                self._in_label -= 1

    def handle_data(self, data):
        text = " ".join(data.split())
        if text and self._in_label and not self._in_data_cell and not self._in_select_of_data:
            self.labels.append(text)


def untranslated(html: str, data_values: set[str]) -> list[str]:
    parser = Labels()
    parser.feed(html)
    bad = []
    for label in parser.labels:
        shown = label
        for value in data_values:  # the merchant's own data inside a label ("Historia de modificaciones: F-1")
            if value and len(value) > 3:
                shown = shown.replace(value, "")
        text = shown.strip(" :*").lower()
        if not text or label in data_values:
            continue
        if text in FIELD_NAMES or ENGLISH.search(text):
            bad.append(label)
    return bad


@pytest.fixture(autouse=True)
def quiet(settings, caplog):
    settings.INVOICE_STAMP_LINGER_MS = 0
    caplog.set_level(logging.ERROR, logger="django.request")


@pytest.fixture
def owner_client(merchant, make_ticket, receptor, make_staff):
    populate(merchant, A_TAG, make_ticket, receptor, "06600")
    owner = make_staff(merchant, "duena", permissions=[])
    client = Client()
    client.force_login(owner)
    return client


def _data_values(merchant) -> set[str]:
    """Texts that are the merchant's data (names, numbers, codes): a label equal to one is data, not a label."""
    values = {merchant.legal_name, merchant.rfc, merchant.slug}
    for model in apps.get_models():
        lookup = merchant_lookup(model)
        if lookup is None or model._meta.app_label not in ("infra", "tickets", "invoicing"):
            continue
        # The oldest rows: _pages opens the first row by pk, whose own text must count as data.
        for row in model._default_manager.filter(**{lookup: merchant.pk}).order_by("pk")[:20]:
            values.add(str(row))
    return values


def _pages(client, merchant):
    yield "/admin/"
    for model, model_admin in admin.site._registry.items():
        if not getattr(model_admin, "merchant_scoped", False):
            continue
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        yield f"/admin/{opts.app_label}/"
        yield base
        yield base + "?q=zzz"
        row = model._default_manager.filter(**{merchant_lookup(model): merchant.pk}).order_by("pk").first()
        if row is not None:
            yield f"{base}{row.pk}/change/"
            yield f"{base}{row.pk}/history/"
        yield f"{base}add/"
    yield "/admin/invoicing/globalperiod/vista-previa/"
    yield "/admin/invoicing/globalperiod/vista-previa/?period=2020-01-01"
    yield "/admin/password_change/"


def test_every_page_staff_reach_has_spanish_labels_and_no_internal_fields(owner_client, merchant):
    data = _data_values(merchant)
    problems, seen = [], 0
    for url in _pages(owner_client, merchant):
        response = owner_client.get(url)
        if response.status_code in (302, 403):
            continue
        assert response.status_code == 200, url
        html = response.content.decode()
        seen += 1
        problems += [f"{url}: «{label}»" for label in untranslated(html, data)]
        problems += [f"{url}: internal field «{word}» shown" for word in INTERNAL
                     if re.search(rf">\s*{re.escape(word)}\s*:?\s*<", html, re.IGNORECASE)]
        # Filters offer every choice: a filter's page speaks Spanish too.
        for link in sorted(set(re.findall(r'href="(\?[^"]+)"', html)))[:15]:
            if "o=" in link or "p=" in link:
                continue
            sub = owner_client.get(url.split("?")[0] + link.replace("&amp;", "&"))
            if sub.status_code == 200:
                problems += [f"{url}{link}: «{label}»" for label in untranslated(sub.content.decode(), data)]
    assert seen > 40
    assert problems == [], "\n".join(sorted(set(problems)))


def test_the_check_catches_an_english_label():
    assert untranslated("<table><thead><tr><th>Created at</th><th>estado</th></tr></thead></table>", set()) == [
        "Created at"]
    assert untranslated("<label>last error code:</label><label>Último error:</label>", set()) == ["last error code:"]
    assert untranslated("<select name='action'><option>Delete selected invoices</option></select>", set())


@pytest.mark.parametrize("role", Role.values)
def test_each_role_gets_a_spanish_home(merchant, make_staff, role):
    user = make_staff(merchant, f"persona-{role}", permissions=[])
    MerchantMembership.objects.filter(user=user).update(role=role)
    client = Client()
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert untranslated(response.content.decode(), {merchant.legal_name}) == []


# ---------------------------------------------------------------- error pages


def _boom(request):
    raise RuntimeError("boom")


@pytest.fixture
def urls_with_a_crash():
    import portal.urls as project

    module = types.ModuleType("urls_with_a_crash")
    module.urlpatterns = [path("admin/explota/", _boom), path("explota/", _boom), *project.urlpatterns]
    for name in ("handler400", "handler403", "handler404", "handler500"):
        setattr(module, name, getattr(project, name))
    sys.modules[module.__name__] = module
    with override_settings(ROOT_URLCONF=module.__name__, DEBUG=False):
        yield


@pytest.mark.parametrize("prefix,brand", [("/", "Facturación electrónica"), ("/admin/", "Autofactura · administración")])
def test_errors_are_branded_spanish_pages_with_debug_off(urls_with_a_crash, db, merchant, make_staff, prefix, brand):
    client = Client(raise_request_exception=False)
    staff = make_staff(merchant, "cajera", permissions=[])
    MerchantMembership.objects.filter(user=staff).update(role=Role.CASHIER)
    client.force_login(staff)
    missing = client.get(f"{prefix}no/existe/esta/pagina/")
    crash = client.get(f"{prefix}explota/")
    for response, status, title in ((missing, 404, "Página no encontrada"), (crash, 500, "Algo salió mal")):
        body = response.content.decode()
        assert response.status_code == status
        assert title in body and brand in body and 'lang="es-MX"' in body
        assert "Not Found" not in body and "Server Error" not in body
    refused = client.get(f"/admin/tickets/merchant/{merchant.pk}/change/")
    assert refused.status_code == 403 and "Sin permiso" in refused.content.decode()


def test_a_csrf_failure_is_explained_in_spanish(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert "No pudimos enviar el formulario" in response.content.decode()
