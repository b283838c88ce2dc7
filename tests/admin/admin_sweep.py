"""Every URL of an admin site, tried by one merchant's staff against another merchant's rows.

The URLs come from the site itself (``site._registry``, each ModelAdmin's ``urls``, every relation field of every
model for the autocomplete view), so an admin registered tomorrow is swept without touching this file. ``sweep``
returns the leaks it found, as readable lines; an empty list means the attacker saw and changed nothing.

What counts as a leak:
- any response (or the page a redirect leads to) that contains one of the victim's marker strings;
- a URL naming one of the victim's rows answering anything but 403, 404 or a redirect away from that row;
- an autocomplete answer listing one of the victim's rows;
- any row of the victim's (or any row of a table that belongs to no merchant) different after the sweep.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.apps import apps
from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.contrib.admin.utils import quote
from django.contrib.contenttypes.models import ContentType
from django.forms.models import _get_foreign_key
from django.test import RequestFactory
from django.urls import URLResolver

from infra.admin_scope import merchant_lookup

# Tables the sweep itself writes (the attacker's session, the admin's log of the attacker's own edits) or that
# never hold tenant data.
UNWATCHED = {"sessions.session", "admin.logentry", "contenttypes.contenttype", "auth.permission"}
UNWATCHED_APPS = {"axes"}  # login attempts: the attacker's own requests are recorded there
STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change")
# Values for URL parameters other than object_id, by name.
PARAMETER_VALUES = {"fmt": ["xml", "pdf", "zip"]}
CONVERTER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def forward_relations(model):
    """Foreign keys, one-to-ones and many-to-manys declared on ``model`` (not the reverse accessors)."""
    return [f for f in model._meta.get_fields()
            if f.is_relation and not f.auto_created and f.related_model is not None]


@dataclass
class Victim:
    merchant_id: int
    markers: list[str]
    rows: dict = field(default_factory=dict)  # model → one of the victim's rows


def dump(qs) -> str:
    """Every column of every row, in a form that compares (binary columns as bytes, not memoryviews)."""
    columns = [f.attname for f in qs.model._meta.concrete_fields]
    rows = qs.order_by("pk").values_list(*columns)
    return repr([tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows])


def snapshot(merchant_id: int) -> dict[str, str]:
    """The victim's rows of every merchant-owned table, and every row of the tables that belong to no one."""
    state = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if label in UNWATCHED or model._meta.app_label in UNWATCHED_APPS:
            continue
        lookup = merchant_lookup(model)
        qs = model._default_manager.all()
        if lookup is not None:
            qs = qs.filter(**{lookup: merchant_id})
        state[label] = dump(qs)
    return state


def victim_rows(site, victim: Victim) -> list[str]:
    """Pick one of the victim's rows for every registered model; complain where there is none."""
    missing = []
    for model in site._registry:
        lookup = merchant_lookup(model)
        qs = model._default_manager.order_by("pk")
        if lookup is not None:
            row = qs.filter(**{lookup: victim.merchant_id}).first()
        else:  # a table of no merchant: the row that carries one of the victim's markers
            row = next((r for r in qs if any(m in dump(qs.filter(pk=r.pk)) for m in victim.markers)), None)
        if row is None:
            missing.append(f"{model._meta.label}: the sweep has no row of the victim's to try; add one")
        else:
            victim.rows[model] = row
    return missing


class FormHarvester(HTMLParser):
    """The fields of the page's admin form, as a browser would submit them unchanged."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._form_depth = 0
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("id") or "").endswith("_form"):
            self._form_depth += 1
        if not self._form_depth or not a.get("name"):
            return
        name = a["name"]
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("file", "button", "reset", "image") or name == "csrfmiddlewaretoken":
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind == "submit" and name != "_save":
                return
            self.data.setdefault(name, []).append(a.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select":
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select].append(a.get("value", ""))
        elif tag == "textarea":
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self._form_depth:
            self._form_depth -= 1


def harvest(response) -> dict[str, list[str]]:
    if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
        return {}
    parser = FormHarvester()
    parser.feed(response.content.decode())
    return {k: v for k, v in parser.data.items() if v}


class Sweep:
    def __init__(self, client, site, prefix: str, victim: Victim, attacker_merchant_id: int, superuser):
        self.client, self.site, self.prefix, self.victim = client, site, prefix, victim
        self.attacker_merchant_id = attacker_merchant_id
        self.superuser = superuser
        self.leaks: list[str] = []
        self.requests = 0

    # ---------------------------------------------------------------- checks

    def _body(self, response) -> str:
        if getattr(response, "streaming", False):
            return b"".join(response.streaming_content).decode(errors="replace")
        return response.content.decode(errors="replace")

    def _check_markers(self, what: str, response) -> None:
        body = self._body(response)
        for marker in self.victim.markers:
            if marker in body:
                self.leaks.append(f"{what}: {response.status_code} shows «{marker}»")
                return
        if response.status_code == 302 and response["Location"].startswith(self.prefix):
            # The page the redirect leads to (e.g. the messages on the index) must not show anything either.
            followed = self.client.get(response["Location"])
            self.requests += 1
            body = self._body(followed)
            for marker in self.victim.markers:
                if marker in body:
                    self.leaks.append(f"{what} → {response['Location']}: shows «{marker}»")
                    return

    def request(self, method: str, url: str, data=None, *, object_url: str | None = None):
        response = getattr(self.client, method)(url, data or {})
        self.requests += 1
        what = f"{method.upper()} {url}"
        if response.status_code >= 500:
            self.leaks.append(f"{what}: {response.status_code}")
        if object_url is not None:
            # object_url "" : not even a redirect is acceptable.
            ok = response.status_code in (403, 404) or (
                response.status_code == 302 and object_url
                and not response["Location"].split("?")[0].startswith(object_url))
            if not ok:
                self.leaks.append(f"{what}: {response.status_code} on the victim's row")
        self._check_markers(what, response)
        return response

    # ---------------------------------------------------------------- URLs

    def _patterns(self, patterns, route_prefix=""):
        for pattern in patterns:
            route = route_prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from self._patterns(pattern.url_patterns, route)
            else:
                yield route, pattern.name

    def _fill(self, route: str, object_id: str) -> list[str]:
        """Every URL a route gives with the victim's id in it (one per value of its other parameters)."""
        urls = [route]
        for match in CONVERTER.finditer(route):
            name, token = match["name"], match.group(0)
            values = [object_id] if name == "object_id" else PARAMETER_VALUES.get(name, [object_id])
            urls = [u.replace(token, v, 1) for u in urls for v in values]
        return urls

    def _injected(self, model_admin, form: dict[str, list[str]], *, tenant_only: bool) -> dict[str, list[str]]:
        """The attacker's own form with its relations pointed at the victim's rows: only the fields that lead to a
        merchant (``tenant_only``: e.g. a membership's merchant, keeping its user), or every one."""
        data = {k: list(v) for k, v in form.items()}
        targets = self._relation_targets(model_admin.model, tenant_only)
        for inline in model_admin.inlines:
            targets.update(self._relation_targets(inline.model, tenant_only))
        for fname, value in targets.items():
            data.setdefault(fname, [value])
            for key in list(data):
                if key == fname or key.endswith(f"-{fname}"):
                    data[key] = [value]
        return data

    def _relation_targets(self, model, tenant_only: bool) -> dict[str, str]:
        targets = {}
        for f in forward_relations(model):
            if tenant_only and merchant_lookup(f.related_model) is None:
                continue
            row = self._victim_row_of(f.related_model)
            if row is not None:
                targets[f.name] = str(row.pk)
        return targets

    def _victim_row_of(self, model):
        if model in self.victim.rows:
            return self.victim.rows[model]
        lookup = merchant_lookup(model) if model is not None else None
        if lookup is None:
            return None
        return model._default_manager.filter(**{lookup: self.victim.merchant_id}).order_by("pk").first()

    def _inline_hijack(self, model_admin, form: dict[str, list[str]]) -> dict[str, list[str]]:
        """The attacker's own form with each inline row's id swapped for the victim's row of that inline."""
        data = {k: list(v) for k, v in form.items()}
        for inline in model_admin.inlines:
            fk = _get_foreign_key(model_admin.model, inline.model, fk_name=inline.fk_name)
            prefix = fk.remote_field.get_accessor_name(model=False).replace("+", "")
            row = self._victim_row_of(inline.model)
            if row is None:
                continue
            for key in list(data):
                if re.fullmatch(rf"{re.escape(prefix)}-\d+-id", key):
                    data[key] = [str(row.pk)]
                    data[key.replace("-id", "-DELETE")] = []  # keep, don't delete: changed fields are the attack
        return {k: v for k, v in data.items() if v}

    def _attacker_row(self, model):
        lookup = merchant_lookup(model)
        if lookup is None:
            return None
        return model._default_manager.filter(**{lookup: self.attacker_merchant_id}).order_by("pk").first()

    def _actions(self, model_admin) -> list[str]:
        request = RequestFactory().get(self.prefix)
        request.user = self.superuser
        return list(model_admin.get_actions(request))

    # ---------------------------------------------------------------- the sweep

    def run(self) -> list[str]:
        for model, model_admin in self.site._registry.items():
            if model in self.victim.rows:
                self.sweep_model(model, model_admin)
        self.sweep_site()
        self.sweep_autocomplete()
        return self.leaks

    def sweep_model(self, model, model_admin) -> None:
        opts = model._meta
        base = f"{self.prefix}{opts.app_label}/{opts.model_name}/"
        row = self.victim.rows[model]
        object_id = str(quote(row.pk))
        object_url = f"{base}{object_id}/"
        names = {f"{opts.app_label}_{opts.model_name}_{view}": view for view in STANDARD_VIEWS}
        own = self._attacker_row(model)
        for route, name in self._patterns(model_admin.urls):
            view = names.get(name)
            for url in self._fill(route, object_id):
                url = base + url
                if view == "changelist":
                    self.request("get", url)
                    for marker in self.victim.markers[:2]:
                        # A prefix: the search box echoes the term, and a whole marker would be found there.
                        self.request("get", url, {"q": marker[:-3]})
                    self.request("get", url, {IS_POPUP_VAR: "1", TO_FIELD_VAR: "id"})
                    for action in self._actions(model_admin):
                        self.request("post", url, {"action": action, "_selected_action": [row.pk], "index": 0,
                                                   "post": "yes"})
                elif view == "add":
                    form = harvest(self.request("get", url))
                    for tenant_only in (True, False):
                        self.request("post", url, self._injected(model_admin, form, tenant_only=tenant_only))
                elif view == "change":
                    self.request("get", url, object_url=object_url)
                    own_form = {}
                    if own is not None:
                        own_url = f"{base}{own.pk}/change/"
                        own_form = harvest(self.client.get(own_url))
                        for tenant_only in (True, False):
                            self.request("post", own_url, self._injected(model_admin, own_form, tenant_only=tenant_only))
                        self.request("post", own_url, self._inline_hijack(model_admin, own_form))
                    self.request("post", url, self._injected(model_admin, own_form, tenant_only=False),
                                 object_url=object_url)
                elif view == "delete":
                    self.request("get", url, object_url=object_url)
                    self.request("post", url, {"post": "yes"}, object_url=object_url)
                else:  # history and every custom view
                    target = object_url if object_id in url[len(base):].split("/") else None
                    self.request("get", url, object_url=target)
                    self.request("post", url, {"post": "yes"}, object_url=target)

    def sweep_site(self) -> None:
        self.request("get", self.prefix)
        for label in sorted({m._meta.app_label for m in self.site._registry}):
            self.request("get", f"{self.prefix}{label}/")
        for model, row in self.victim.rows.items():
            ct = ContentType.objects.get_for_model(model)
            self.request("get", f"{self.prefix}r/{ct.pk}/{quote(row.pk)}/", object_url="")

    def sweep_autocomplete(self) -> None:
        url = f"{self.prefix}autocomplete/"
        for model in apps.get_models():
            for f in forward_relations(model):
                if f.related_model not in self.site._registry:
                    continue
                victim_row = self._victim_row_of(f.related_model)
                for term in ("", self.victim.markers[0][:-3]):
                    params = {"app_label": model._meta.app_label, "model_name": model._meta.model_name,
                              "field_name": f.name, "term": term}
                    response = self.request("get", url, params)
                    if response.status_code == 200 and victim_row is not None:
                        ids = {r["id"] for r in json.loads(response.content)["results"]}
                        if str(victim_row.pk) in ids and merchant_lookup(f.related_model) is not None:
                            self.leaks.append(f"GET {url}?{params}: lists the victim's {f.related_model._meta.label}")


def sweep(client, site, *, prefix: str, victim: Victim, attacker_merchant_id: int, superuser) -> tuple[list[str], int]:
    """Sweep ``site`` as the logged-in ``client``; the leaks found and the number of requests made."""
    missing = victim_rows(site, victim)
    before = snapshot(victim.merchant_id)
    runner = Sweep(client, site, prefix, victim, attacker_merchant_id, superuser)
    leaks = missing + runner.run()
    after = snapshot(victim.merchant_id)
    leaks += [f"{label}: rows changed by the sweep" for label in before if before[label] != after.get(label)]
    return leaks, runner.requests
