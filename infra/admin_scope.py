"""Back-office tenancy: staff see and touch only their own merchant's rows; superusers see all.

Two layers, so that forgetting one thing closes a door instead of opening one:

- ``MerchantAdminSite`` is the project's ``admin.site`` (through ``infra.admin_apps.ScopedAdminConfig``). Any
  ModelAdmin registered on it that is not merchant-scoped (``merchant_scoped = True``, which MerchantScopedAdmin
  sets) is wrapped in ``SuperuserOnlyAdmin``: no permission of any kind and no URL of it for anyone but a
  superuser. That covers Django's auth admins, django-q2's and django-axes' admins, and a plain ModelAdmin of ours
  (the membership admin: staff editing their own membership could join another merchant).
- ``MerchantScopedAdmin`` limits everything of a model admin to the user's merchant: the queryset (and so the
  change, delete and history pages and the actions), object permissions, form choices (drop-downs, raw ids,
  many-to-many), inlines, list filters and custom views that take an ``object_id``.

Within the merchant, what a staff user may do is their role's (infra/roles.py): every permission hook of
``MerchantScopedAdmin`` asks the role for the capability the admin names (``view_capability``,
``edit_capability``, an action's ``permissions``, ``custom_view_capabilities``); an action or a custom view that
names none is refused to staff. Superusers see and do everything, for every merchant.
"""

from __future__ import annotations

import functools

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.http import Http404
from django.urls import URLPattern, URLResolver, path

from infra.logcontext import bind
from infra.roles import Cap, user_can


def tenant_model():
    """The merchant (``settings.TENANT_MODEL``): named by setting because this package imports none of the apps."""
    return apps.get_model(settings.TENANT_MODEL)


def user_merchant_id(user) -> int | None:
    membership = getattr(user, "membership", None)
    if membership is None:
        return None
    bind(merchant_id=membership.merchant_id)  # every scoped admin page asks: its log lines name the merchant
    return membership.merchant_id


def merchant_lookup(model) -> str | None:
    """ORM lookup from ``model`` to its merchant's id (``"merchant_id"``, ``"ticket__merchant_id"``, ``"pk"``).

    None when the model belongs to no merchant (users, task queue rows, catalogs): staff get none of its rows.
    """
    if model is tenant_model():
        return "pk"
    direct = _merchant_fk(model)
    if direct:
        return f"{direct}_id"
    for field in model._meta.concrete_fields:
        if field.is_relation and field.related_model not in (model, None):
            hop = _merchant_fk(field.related_model)
            if hop:
                return f"{field.name}__{hop}_id"
    return None


def _merchant_fk(model) -> str | None:
    for field in model._meta.concrete_fields:
        if field.is_relation and field.related_model is tenant_model():
            return field.name
    return None


def scoped_queryset(queryset, request):
    """``queryset`` cut to the request user's merchant (everything for a superuser, nothing without a merchant)."""
    if request.user.is_superuser:
        return queryset
    merchant_id = user_merchant_id(request.user)
    lookup = merchant_lookup(queryset.model)
    if merchant_id is None or lookup is None:
        return queryset.none()
    return queryset.filter(**{lookup: merchant_id})


def _scope_choice_field(admin_obj, db_field, request, kwargs):
    # Drop-downs, raw-id and autocomplete inputs validate against this queryset: another merchant's branch,
    # ticket or certificate is neither offered nor accepted. Unknown owners fail closed.
    if request.user.is_superuser:
        return
    queryset = kwargs.get("queryset")
    if queryset is None:
        queryset = admin_obj.get_field_queryset(kwargs.get("using"), db_field, request)
    if queryset is None:
        queryset = db_field.related_model._default_manager.using(kwargs.get("using")).all()
    kwargs["queryset"] = scoped_queryset(queryset, request)


class ScopedFormFieldsMixin:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        _scope_choice_field(self, db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        _scope_choice_field(self, db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ScopedInlineMixin(ScopedFormFieldsMixin):
    """Put in front of every inline of a MerchantScopedAdmin (see ``get_inlines``).

    For staff an inline's rows are seen as its parent's and edited as its parent is (the role decides, not Django's
    model permissions); an inline's own refusal (``has_add_permission`` returning False…) still holds."""

    def get_queryset(self, request):
        return scoped_queryset(super().get_queryset(request), request)

    def _parent_admin(self):
        return self.admin_site._registry.get(self.parent_model)

    def _own_rule(self, name, request, obj) -> bool:
        for klass in type(self).__mro__[type(self).__mro__.index(ScopedInlineMixin) + 1:]:
            if name in vars(klass):
                if klass.__module__.startswith("django.contrib.admin"):
                    return True  # Django's default asks for model permissions: the parent's role decides instead
                return getattr(klass, name)(self, request, obj)
        return True

    def _staff_may(self, name, request, obj, parent_check) -> bool:
        parent = self._parent_admin()
        return parent is not None and parent_check(parent, request, obj) and self._own_rule(name, request, obj)

    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self._staff_may("has_view_permission", request, obj, lambda p, r, o: p.has_view_permission(r, o))

    def has_add_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_add_permission(request, obj)
        return self._staff_may("has_add_permission", request, obj, lambda p, r, o: p.has_change_permission(r, o))

    def has_change_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self._staff_may("has_change_permission", request, obj, lambda p, r, o: p.has_change_permission(r, o))

    def has_delete_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self._staff_may("has_delete_permission", request, obj, lambda p, r, o: p.has_change_permission(r, o))


@functools.cache
def _scoped_inline(inline_class):
    if issubclass(inline_class, ScopedInlineMixin):
        return inline_class
    return type(inline_class.__name__, (ScopedInlineMixin, inline_class), {"__module__": inline_class.__module__})


def _guard_patterns(patterns, check):
    guarded = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            guarded.append(URLResolver(pattern.pattern, _guard_patterns(pattern.url_patterns, check),
                                       pattern.default_kwargs, pattern.app_name, pattern.namespace))
        else:
            guarded.append(URLPattern(pattern.pattern, _checked_view(pattern.callback, check), pattern.default_args,
                                      pattern.name))
    return guarded


def _checked_view(view, check):
    @functools.wraps(view)
    def checked(request, *args, **kwargs):
        check(request, kwargs)
        return view(request, *args, **kwargs)

    return checked


def _capability_permission(capability: Cap):
    def has_permission(self, request, obj=None):
        return self.owns(request, obj) and user_can(request.user, capability)

    has_permission.__name__ = f"has_{capability}_permission"
    return has_permission


class MerchantScopedAdmin(ScopedFormFieldsMixin, admin.ModelAdmin):
    merchant_scoped = True
    # Path from the model to its merchant, e.g. "merchant" or "ticket__merchant"; "pk" for the Merchant itself.
    merchant_path = "merchant"
    # The role capability staff need to see this admin's rows, and to add, change or delete them.
    view_capability: Cap = Cap.READ
    edit_capability: Cap = Cap.SETTINGS
    # Custom views of get_urls, by URL name without the "<app>_<model>_" prefix: a capability, or one per HTTP
    # method ({"GET": …, "POST": …}). A custom view missing here is refused to staff.
    custom_view_capabilities: dict = {}

    def _lookup(self) -> str:
        return "pk" if self.merchant_path == "pk" else f"{self.merchant_path}_id"

    def merchant_id_of(self, obj) -> int | None:
        if self.merchant_path == "pk":
            return obj.pk
        *hops, last = self.merchant_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop, None)
            if obj is None:
                return None
        return getattr(obj, f"{last}_id", None)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        merchant_id = user_merchant_id(request.user)
        if merchant_id is None:
            return qs.none()
        return qs.filter(**{self._lookup(): merchant_id})

    def owns(self, request, obj) -> bool:
        """May this user act on ``obj`` at all (None: on the model)? Staff without a merchant may not."""
        if request.user.is_superuser:
            return True
        merchant_id = user_merchant_id(request.user)
        if merchant_id is None:
            return False
        return obj is None or self.merchant_id_of(obj) == merchant_id

    def can(self, request, capability: Cap) -> bool:
        """Superusers keep Django's own checks; staff get what their role lists (not their model permissions)."""
        return request.user.is_superuser or user_can(request.user, capability)

    def has_module_permission(self, request):
        if request.user.is_superuser:
            return super().has_module_permission(request)
        return self.owns(request, None) and self.can(request, self.view_capability)

    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self.owns(request, obj) and (self.can(request, self.view_capability)
                                            or self.has_change_permission(request, obj))

    def has_add_permission(self, request):
        if request.user.is_superuser:
            return super().has_add_permission(request)
        return self.owns(request, None) and self.can(request, self.edit_capability)

    def has_change_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self.owns(request, obj) and self.can(request, self.edit_capability)

    def has_delete_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self.owns(request, obj) and self.can(request, self.edit_capability)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if request.user.is_superuser:
            return actions
        # Django offers an action that declares no permissions to anyone who sees the list: not to staff.
        return {name: entry for name, entry in actions.items() if getattr(entry[0], "allowed_permissions", None)}

    def get_inlines(self, request, obj):
        return [_scoped_inline(inline) for inline in super().get_inlines(request, obj)]

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        return [self._scoped_filter(item) for item in filters]

    def _scoped_filter(self, item):
        # A plain related-field filter lists every row of the related table: every merchant's branches.
        if isinstance(item, str):
            name = item
        elif isinstance(item, tuple) and item[1] is admin.RelatedFieldListFilter:
            name = item[0]
        else:
            return item
        try:
            field = get_fields_from_path(self.model, name)[-1]
        except (FieldDoesNotExist, LookupError):
            return item
        return (name, admin.RelatedOnlyFieldListFilter) if field.is_relation else item

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser and self.merchant_path == "merchant":
            obj.merchant_id = user_merchant_id(request.user)
        super().save_model(request, obj, form, change)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.merchant_path == "merchant":
            exclude.append("merchant")
        return exclude

    @property
    def urls(self):
        # Django's own views find the object through get_queryset; a custom view that takes an object_id (added
        # by this class's get_urls or by a mixin's) is checked the same way before it runs, whatever it does.
        info = self.opts.app_label, self.opts.model_name
        standard = {"{}_{}_{}".format(*info, view) for view in ("changelist", "add", "history", "delete", "change")}
        site = self.admin_site

        prefix = "{}_{}_".format(*info)

        def guarded(url):
            name = getattr(url, "name", None) or ""
            needs = self.custom_view_capabilities.get(name.removeprefix(prefix)) if name.startswith(prefix) else None

            def check(request, kwargs):
                if not site.has_permission(request):
                    return  # admin_view sends them to the login page
                if not request.user.is_superuser:
                    method = "GET" if request.method in ("GET", "HEAD") else "POST"
                    capability = needs.get(method) if isinstance(needs, dict) else needs
                    if capability is None or not user_can(request.user, capability):
                        raise PermissionDenied
                if "object_id" in kwargs and self.get_object(request, unquote(kwargs["object_id"])) is None:
                    raise Http404("El registro no existe.")

            return _guard_patterns([url], check)[0]

        return [url if getattr(url, "name", None) in standard else guarded(url) for url in self.get_urls()]


for _capability in Cap:
    # An action's ``permissions=["resend"]`` makes Django call ``has_resend_permission``.
    setattr(MerchantScopedAdmin, f"has_{_capability}_permission", _capability_permission(_capability))


class SuperuserOnlyAdmin:
    """Put in front of any admin that is not merchant-scoped: nothing of it for anyone but a superuser."""

    merchant_scoped = False

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, *args, **kwargs):
        return request.user.is_superuser and super().has_view_permission(request, *args, **kwargs)

    def has_add_permission(self, request, *args, **kwargs):
        return request.user.is_superuser and super().has_add_permission(request, *args, **kwargs)

    def has_change_permission(self, request, *args, **kwargs):
        return request.user.is_superuser and super().has_change_permission(request, *args, **kwargs)

    def has_delete_permission(self, request, *args, **kwargs):
        return request.user.is_superuser and super().has_delete_permission(request, *args, **kwargs)

    def get_actions(self, request):
        return super().get_actions(request) if request.user.is_superuser else {}

    @property
    def urls(self):
        # Every URL, custom views included: those may check nothing but is_staff (the admin_view default).
        site = self.admin_site

        def check(request, kwargs):
            if site.has_permission(request) and not request.user.is_superuser:
                raise PermissionDenied

        return _guard_patterns(self.get_urls(), check)


def guarded_admin_class(admin_class):
    if getattr(admin_class, "merchant_scoped", False) or issubclass(admin_class, SuperuserOnlyAdmin):
        return admin_class
    return type(admin_class.__name__, (SuperuserOnlyAdmin, admin_class), {"__module__": admin_class.__module__})


class MerchantAdminSite(admin.AdminSite):
    """``admin.site``: every registration goes through ``guarded_admin_class``.

    Its index is the merchant's dashboard when ``dashboard`` is set (the invoicing app sets it: tickets may not
    import it): a callable ``dashboard(merchant) -> dict`` for the template ``admin/dashboard.html``. Staff get their
    merchant's; a superuser picks any merchant (``?comercio=<id>``)."""

    index_template = "admin/dashboard.html"
    dashboard = None
    # The lists need the width at 1280 px (invoices: ten columns beside the filters); the breadcrumbs and the
    # home page's sections are the navigation.
    enable_nav_sidebar = False

    def dashboard_merchant(self, request):
        if request.user.is_superuser:
            chosen = request.GET.get("comercio", "")
            if chosen.isdigit():
                return tenant_model().objects.filter(pk=int(chosen)).first()
        merchant_id = user_merchant_id(request.user)
        return tenant_model().objects.filter(pk=merchant_id).first() if merchant_id else None

    def index(self, request, extra_context=None):
        extra = dict(extra_context or {})
        merchant = self.dashboard_merchant(request) if self.dashboard is not None else None
        if merchant is not None:
            extra["dashboard"] = self.dashboard(merchant)
            extra["title"] = f"Resumen · {merchant.legal_name}"
            extra["can"] = {cap.value: user_can(request.user, cap) for cap in Cap}
        if request.user.is_superuser:
            extra["merchant_choices"] = tenant_model().objects.order_by("legal_name").values_list("pk", "legal_name")[:200]
            extra["chosen_merchant"] = merchant.pk if merchant else None
        return super().index(request, extra)

    def register(self, model_or_iterable, admin_class=None, **options):
        super().register(model_or_iterable, guarded_admin_class(admin_class or admin.ModelAdmin), **options)

    def guard_registry(self) -> None:
        """Also wrap admins put into ``_registry`` directly, bypassing ``register``."""
        for model, model_admin in list(self._registry.items()):
            guarded = guarded_admin_class(type(model_admin))
            if guarded is not type(model_admin):
                self._registry[model] = guarded(model, self)

    def get_urls(self):
        self.guard_registry()
        urls = super().get_urls()
        for index, url in enumerate(urls):
            if getattr(url, "name", None) == "view_on_site":
                urls[index] = path("r/<path:content_type_id>/<path:object_id>/",
                                   self.admin_view(self.view_on_site), name="view_on_site")
        return urls

    def view_on_site(self, request, content_type_id, object_id):
        """Django's shortcut answers differently for existing and missing rows of any table: staff get it only
        for rows their own admin pages show."""
        from django.contrib.contenttypes.models import ContentType
        from django.contrib.contenttypes.views import shortcut

        if not request.user.is_superuser:
            content_type = ContentType.objects.filter(pk=content_type_id).first() if content_type_id.isdigit() else None
            model_admin = self._registry.get(content_type.model_class()) if content_type else None
            obj = (model_admin.get_object(request, unquote(object_id))
                   if model_admin is not None and getattr(model_admin, "merchant_scoped", False) else None)
            if obj is None or not model_admin.has_view_permission(request, obj):
                raise Http404("El registro no existe.")
        return shortcut(request, content_type_id, object_id)
