from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminFileWidget
from django.utils import timezone
from django.utils.html import format_html

from infra.admin_scope import MerchantScopedAdmin, user_merchant_id
from infra.errors import DomainError
from infra.roles import Cap
from tickets.exchange_rates import validate_currency
from tickets.logos import LogoField, human_size
from tickets.models import (
    ApiKey,
    Batch,
    Branch,
    ExchangeRate,
    Merchant,
    MerchantMembership,
    Ticket,
    TicketLine,
)
from tickets.privacy import default_privacy_notice, is_default_notice
from tickets.services import api_key_create, api_key_revoke, ticket_expire, ticket_void


def compact(size: int):
    return forms.TextInput(attrs={"size": size})


class BranchInline(admin.TabularInline):
    """Narrow inputs: seven text columns at Django's default width made the merchant page 2,200 px wide."""

    model = Branch
    extra = 0
    fields = ["code", "name", "postal_code", "invoice_serie", "credit_note_serie", "global_serie", "is_active"]
    widths = {"code": 10, "name": 22, "postal_code": 6, "invoice_serie": 5, "credit_note_serie": 5, "global_serie": 5}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in self.widths:
            kwargs["widget"] = compact(self.widths[db_field.name])
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class PaymentFormFilter(admin.SimpleListFilter):
    """c_FormaPago with its name ("04 · Tarjeta de crédito"), not the bare code; the names are set by the invoicing
    app (its SAT catalog), which tickets may not import."""

    title = "forma de pago"
    parameter_name = "forma_pago"
    names: dict[str, str] = {}

    def lookups(self, request, model_admin):
        # From the catalog, not a DISTINCT over the merchant's tickets (a scan of millions of rows per page).
        return [(code, f"{code} · {name}") for code, name in self.names.items()]

    def queryset(self, request, queryset):
        return queryset.filter(payment_form=self.value()) if self.value() else queryset


def short_datetime(value) -> str:
    return timezone.localtime(value).strftime("%d/%m/%y %H:%M") if value else "—"


@admin.register(Merchant)
class MerchantAdmin(MerchantScopedAdmin):
    """Staff edit their own merchant (and its branches); creating, deleting or suspending one is the operator's."""

    merchant_path = "pk"
    list_display = ["legal_name", "rfc", "slug", "pac", "global_periodicity", "is_active"]
    search_fields = ["legal_name", "rfc", "slug"]
    inlines = [BranchInline]
    exclude = ["pac_password", "pac_secondary_password"]  # secrets: write-only fields in invoicing/admin_pac.py

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if request.user.is_superuser else [*readonly, "is_active"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "privacy_notice" not in form.base_fields:
            return form

        class MerchantForm(form):
            """The aviso de privacidad shows the default text to edit; saved unedited, it stays "the default"
            (empty), so it keeps following the merchant's name and contact."""

            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                if self.instance.pk and not self.instance.privacy_notice.strip():
                    self.initial["privacy_notice"] = default_privacy_notice(self.instance)

            def clean_privacy_notice(self):
                text = self.cleaned_data.get("privacy_notice", "")
                return "" if self.instance.pk and is_default_notice(text, self.instance) else text

        return MerchantForm

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "logo":
            return db_field.formfield(
                form_class=LogoField, widget=AdminFileWidget(attrs={"accept": "image/png,image/jpeg"}),
                help_text=f"PNG o JPEG de hasta {human_size(settings.MERCHANT_LOGO_MAX_BYTES)}; se guarda una copia "
                "limpia de la imagen.")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Branch)
class BranchAdmin(MerchantScopedAdmin):
    list_display = ["code", "name", "postal_code", "invoice_serie", "global_serie", "merchant"]
    search_fields = ["code", "name"]


class TicketLineInline(admin.TabularInline):
    model = TicketLine
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in TicketLine._meta.fields if f.name != "id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class TicketAdmin(MerchantScopedAdmin):
    """Tickets are sale records sent by the POS: read-only here, changed only through the services."""

    view_capability = Cap.FIND

    # Short columns so that all of them fit at 1280 px next to the filters.
    list_display = ["number", "branch_code", "sold", "total", "payment", "status", "expires"]
    list_filter = ["status", "source", PaymentFormFilter]
    search_fields = ["=number"]  # exact: the (merchant, number) index, not a LIKE over every ticket
    search_help_text = "Número de ticket exacto."
    date_hierarchy = "sold_at"
    list_select_related = ["branch"]
    show_full_result_count = False
    inlines = [TicketLineInline]
    # Internal: the POS document, the payload hash for replays, the random code behind the receipt's QR.
    exclude = ["document", "fingerprint", "public_code"]
    actions = ["expire_selected", "void_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Ticket._meta.fields if f.name not in ("id", *self.exclude)]

    @admin.display(description="sucursal", ordering="branch__code")
    def branch_code(self, obj):
        return obj.branch.code

    @admin.display(description="venta", ordering="sold_at")
    def sold(self, obj):
        return short_datetime(obj.sold_at)

    @admin.display(description="pago", ordering="payment_form")
    def payment(self, obj):
        return format_html('<span title="{}">{}</span>', PaymentFormFilter.names.get(obj.payment_form, ""),
                           obj.payment_form)

    @admin.display(description="autofacturable hasta", ordering="expires_at")
    def expires(self, obj):
        return short_datetime(obj.expires_at)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _apply(self, request, queryset, service, done: str, **kwargs):
        changed, refused = 0, []
        for ticket in queryset.select_related("merchant"):
            try:
                service(merchant=ticket.merchant, ticket_id=ticket.pk, actor=request.user.get_username(), **kwargs)
                changed += 1
            except DomainError as exc:
                refused.append(f"{ticket.number}: {exc.message}")
        if changed:
            self.message_user(request, f"{changed} ticket(s) {done}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Terminar el plazo de autofacturación (seguirán en la factura global)",
                  permissions=["tickets"])
    def expire_selected(self, request, queryset):
        self._apply(request, queryset, ticket_expire, "ya no se pueden autofacturar")

    @admin.action(description="Cancelar por devolución (fuera de toda factura)", permissions=["tickets"])
    def void_selected(self, request, queryset):
        self._apply(request, queryset, ticket_void, "cancelados", reason="cancelado desde la administración")


BATCH_INTERNAL = ["payload", "public_id", "lease_until", "run"]


@admin.register(Batch)
class BatchAdmin(MerchantScopedAdmin):
    list_display = ["batch_id", "status", "total_count", "created_count", "duplicate_count", "rejected_count",
                    "created_at"]
    list_filter = ["status"]
    # The raw request body (large; the per-ticket report says what matters) and the worker's lease bookkeeping.
    exclude = BATCH_INTERNAL
    readonly_fields = [f.name for f in Batch._meta.fields if f.name not in ("id", *BATCH_INTERNAL)]

    def has_add_permission(self, request):
        return False  # batches arrive through the API


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label="permisos", choices=ApiKey.Scope.choices,
                                       widget=forms.CheckboxSelectMultiple, initial=[ApiKey.Scope.TICKETS])

    class Meta:
        model = ApiKey
        fields = ["merchant", "name", "scopes", "branch"]

    def clean(self):
        data = super().clean()
        branch, merchant = data.get("branch"), data.get("merchant")
        if branch is not None and merchant is not None and branch.merchant_id != merchant.pk:
            self.add_error("branch", "La sucursal es de otro comercio.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(MerchantScopedAdmin):
    """Keys are created through the service; the plain key is shown once, in the message after saving."""

    edit_capability = Cap.API_KEYS

    form = ApiKeyForm
    list_display = ["name", "prefix", "scopes", "branch", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        fields = ["merchant", "name", "scopes", "branch"] if request.user.is_superuser else ["name", "scopes", "branch"]
        return fields + (self.readonly_fields if obj else [])

    def get_readonly_fields(self, request, obj=None):
        # A key's name, scopes and branch are fixed once issued: revoke it and create another.
        return ["merchant", "name", "scopes", "branch", *self.readonly_fields] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            return
        merchant_id = obj.merchant_id if request.user.is_superuser else user_merchant_id(request.user)
        branch = form.cleaned_data.get("branch")
        if branch is not None and branch.merchant_id != merchant_id:
            branch = None  # the form's choices are the user's merchant's; never another's
        key, plain = api_key_create(merchant=Merchant.objects.get(pk=merchant_id), name=form.cleaned_data["name"],
                                    scopes=form.cleaned_data["scopes"], actor=request.user.get_username(),
                                    branch=branch)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = key.pk, key.prefix, key.key_hash, key.created_at
        obj.merchant_id = merchant_id
        messages.warning(request, format_html(
            "Llave de API creada. Cópiala ahora: no se volverá a mostrar.<br><code>{}</code>", plain))

    @admin.action(description="Revocar las llaves seleccionadas", permissions=["api_keys"])
    def revoke(self, request, queryset):
        revoked = sum(api_key_revoke(api_key=key, actor=request.user.get_username()) for key in queryset)
        self.message_user(request, f"{revoked} llave(s) revocada(s).", messages.SUCCESS)


class ExchangeRateForm(forms.ModelForm):
    currency = forms.CharField(label="moneda", max_length=3, help_text="Clave de c_Moneda, p. ej. USD o EUR.")
    merchant_id_for_staff = None  # set by the admin for non-superusers (their form has no merchant field)

    class Meta:
        model = ExchangeRate
        fields = ["merchant", "currency", "valid_from", "rate", "source"]

    def clean_currency(self):
        value = self.cleaned_data["currency"].strip().upper()
        validate_currency(value)
        return value

    def clean(self):
        data = super().clean()
        merchant = data.get("merchant")
        merchant_id = self.merchant_id_for_staff or (merchant.pk if merchant else None)
        if merchant_id and data.get("currency") and data.get("valid_from") and ExchangeRate.objects.filter(
                merchant_id=merchant_id, currency=data["currency"], valid_from=data["valid_from"]
        ).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"Ya hay un tipo de cambio de {data['currency']} que aplica desde el "
                                        f"{data['valid_from']:%d/%m/%Y}: edítalo en vez de crear otro.")
        return data


@admin.register(ExchangeRate)
class ExchangeRateAdmin(MerchantScopedAdmin):
    """The merchant's daily rates (e.g. the DOF FIX), for foreign-currency tickets whose POS sends none."""

    form = ExchangeRateForm
    list_display = ["currency", "valid_from", "rate", "source", "updated_at"]
    list_filter = ["currency", "source"]
    date_hierarchy = "valid_from"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not request.user.is_superuser:
            form.merchant_id_for_staff = user_merchant_id(request.user)
        return form


@admin.register(MerchantMembership)
class MerchantMembershipAdmin(admin.ModelAdmin):
    """Not merchant-scoped on purpose: the site makes it superuser-only (a staff user who could edit a membership
    could move themselves into another merchant)."""

    list_display = ["user", "merchant"]
    list_select_related = ["user", "merchant"]


import tickets.admin_staff  # noqa: E402,F401  (the merchant's team: invitations and roles)
