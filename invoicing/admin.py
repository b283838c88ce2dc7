from django import forms
from django.contrib import admin, messages
from django.core.validators import validate_email
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from infra.admin_scope import MerchantScopedAdmin, user_merchant_id
from infra.models import Event
from infra.roles import Cap
from invoicing.admin_cancel import InvoiceCancelAdminMixin
from invoicing.cfdi.catalogs import FORMAS_PAGO
from invoicing.cfdi.csd import CsdError, load_csd
from invoicing.dashboard import merchant_dashboard
from invoicing.downloads import InvoiceDocumentsAdminMixin
from invoicing.errors import InvoicingError
from invoicing.models import Certificate, Invoice, InvoiceRelation, InvoiceTicket
from invoicing.selectors import attention_categories, invoice_search, needs_attention
from invoicing.services.certificates import certificate_install
from invoicing.services.documents import DOWNLOADABLE, invoice_email_send
from invoicing.services.schedule import scheduled_invoice_withdraw
from invoicing.services.stamping import invoice_retry_now
from tickets.admin import PaymentFormFilter
from tickets.models import Merchant

MAX_RESEND_AT_ONCE = 20


class CertificateUploadForm(forms.ModelForm):
    """Upload a CSD: the engine checks it (password, CSD not FIEL, validity, RFC) before anything is stored."""

    cer_file = forms.FileField(label="Certificado (.cer)")
    key_file = forms.FileField(label="Llave privada (.key)")
    key_password = forms.CharField(label="Contraseña de la llave privada", widget=forms.PasswordInput)

    class Meta:
        model = Certificate
        fields = ["merchant"]

    merchant_for_staff = None  # set by the admin for non-superusers

    def clean(self):
        data = super().clean()
        merchant = self.merchant_for_staff or data.get("merchant")
        files = [data.get("cer_file"), data.get("key_file"), data.get("key_password")]
        if merchant is None or not all(files):
            return data
        try:
            load_csd(files[0].read(), files[1].read(), files[2], expected_rfc=merchant.rfc)
        except CsdError as exc:
            raise forms.ValidationError(str(exc)) from exc
        finally:
            files[0].seek(0)
            files[1].seek(0)
        return data


@admin.register(Certificate)
class CertificateAdmin(MerchantScopedAdmin):
    edit_capability = Cap.CSD
    list_display = ["number", "rfc", "legal_name", "valid_from", "valid_to", "is_active"]
    list_filter = ["is_active"]
    readonly_fields = ["number", "rfc", "legal_name", "valid_from", "valid_to", "is_active", "created_at"]

    def get_fields(self, request, obj=None):
        if obj is None:
            fields = ["cer_file", "key_file", "key_password"]
            return (["merchant"] + fields) if request.user.is_superuser else fields
        return self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        kwargs["form"] = CertificateUploadForm
        kwargs["fields"] = ["merchant"] if request.user.is_superuser else []
        form = super().get_form(request, obj, change=change, **kwargs)
        if not request.user.is_superuser:
            form.merchant_for_staff = Merchant.objects.filter(pk=user_merchant_id(request.user)).first()
        return form

    def save_model(self, request, obj, form, change):
        if change:
            return
        merchant = form.merchant_for_staff or form.cleaned_data["merchant"]
        data = form.cleaned_data
        installed = certificate_install(merchant=merchant, cer=data["cer_file"].read(), key=data["key_file"].read(),
                                        password=data["key_password"], actor=request.user.get_username())
        obj.pk = installed.pk
        obj.merchant = merchant

    def has_change_permission(self, request, obj=None):
        return False  # a CSD is replaced by uploading a new one, never edited


class InvoiceTicketInline(admin.TabularInline):
    model = InvoiceTicket
    extra = 0
    can_delete = False
    readonly_fields = ["ticket", "amount"]

    def has_add_permission(self, request, obj=None):
        return False


class InvoiceRelationInline(admin.TabularInline):
    model = InvoiceRelation
    fk_name = "invoice"
    extra = 0
    can_delete = False
    readonly_fields = ["relation_type", "related_uuid", "related_invoice"]

    def has_add_permission(self, request, obj=None):
        return False


STATUS_COLORS = {"pending": "#6b7280", "sealed": "#2563eb", "stamped": "#15803d", "failed": "#b91c1c",
                 "cancelling": "#b45309", "cancelled": "#374151", "scheduled": "#7c3aed", "withdrawn": "#9ca3af"}


class InvoiceStatusFilter(admin.SimpleListFilter):
    """Every status of the model, plus the "needs attention" categories of invoicing/selectors.py."""

    title = "estado"
    parameter_name = "situacion"

    def lookups(self, request, model_admin):
        categories = [(f"atencion:{key}", label) for key, (label, _) in attention_categories().items()]
        return [*Invoice.Status.choices, ("atencion", "Requieren atención (todas)"), *categories]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == "atencion":
            return queryset.filter(needs_attention())
        if value.startswith("atencion:"):
            category = attention_categories().get(value.partition(":")[2])
            return queryset.filter(category[1]) if category else queryset.none()
        return queryset.filter(status=value)


class ResendToForm(forms.Form):
    emails = forms.CharField(
        label="Enviar a", max_length=1000,
        help_text="Uno o varios correos separados por comas. La factura no cambia: solo se envía a estas direcciones.")

    def clean_emails(self):
        addresses = [a.strip() for a in self.cleaned_data["emails"].replace(";", ",").split(",") if a.strip()]
        if not addresses:
            raise forms.ValidationError("Escribe al menos un correo.")
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"«{address}» no es un correo válido.") from None
        return addresses


@admin.register(Invoice)
class InvoiceAdmin(InvoiceCancelAdminMixin, InvoiceDocumentsAdminMixin, MerchantScopedAdmin):
    view_capability = Cap.FIND
    custom_view_capabilities = {"document": Cap.DOWNLOAD}
    list_display = ["status_badge", "serie_folio", "short_uuid", "receptor_rfc", "receptor_name_short", "total",
                    "issued_on", "attempts", "error_code"]
    list_display_links = ["serie_folio"]
    # No filter by PAC: its choices would be a DISTINCT over every invoice of the merchant on each page.
    list_filter = [InvoiceStatusFilter, "kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["receptor_rfc"]  # shows the search box; invoicing.selectors.invoice_search does the work
    search_help_text = "Serie-folio como lo dicta el cliente (F-1, F1, f 1), UUID, RFC, número de ticket o correo."
    list_per_page = 50
    show_full_result_count = False  # no COUNT(*) over every invoice of the merchant on each page
    inlines = [InvoiceTicketInline, InvoiceRelationInline]
    actions = ["resend_email", "resend_to", "retry_now", "withdraw_scheduled"]
    # Lifecycle actions (cancel, reissue) come from the state machine only: when invoicing/models.py offers them,
    # they are added here with permissions=["cancel"] / ["reissue"] (infra/roles.py gives them to accountants
    # and owners) and call the state machine's services, never a status write of their own.
    fieldsets = [
        ("Documento", {"fields": ["kind", "status", "issue_at", "serie", "folio", "uuid", "issued_at", "stamped_at",
                                  "pac", "document_links"]}),
        ("Receptor", {"fields": ["receptor_rfc", "receptor_name", "receptor_tax_regime", "receptor_postal_code",
                                 "receptor_cfdi_use", "receptor_country", "receptor_tax_id", "emails_list"]}),
        ("Importes", {"fields": ["currency", "exchange_rate", "payment_form", "payment_method", "subtotal", "discount", "tax_total",
                                 "withheld_total", "total"]}),
        ("Timbrado", {"fields": ["attempts", "next_attempt_at", "last_error_code", "last_error_message",
                                 "last_error_permanent", "branch", "created_at", "updated_at"]}),
        ("Factura global", {"classes": ["collapse"], "fields": ["global_periodicity", "global_months",
                                                                "global_year"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        if self.can(request, Cap.DOWNLOAD):
            return self.fieldsets
        # No download links for roles without downloads (they would answer 403).
        return [(name, {**options, "fields": [f for f in options["fields"] if f != "document_links"]})
                for name, options in self.fieldsets]

    def get_readonly_fields(self, request, obj=None):
        # An invoice is a legal snapshot: nothing is edited after it exists.
        return [field for _, options in self.fieldsets for field in options["fields"]]

    def get_queryset(self, request):
        # The list never needs the documents; deferring them keeps each page a few kilobytes per row.
        return super().get_queryset(request).defer("sealed_xml", "stamped_xml")

    def get_search_results(self, request, queryset, search_term):
        merchant_id = None if request.user.is_superuser else user_merchant_id(request.user)
        return invoice_search(queryset, search_term, merchant_id=merchant_id), False

    @admin.display(description="estado", ordering="status")
    def status_badge(self, obj):
        color = STATUS_COLORS.get(obj.status, "#6b7280")
        return format_html('<span class="badge" style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
                           'white-space:nowrap">{}</span>', color, obj.get_status_display())

    @admin.display(description="serie-folio", ordering="folio")
    def serie_folio(self, obj):
        return f"{obj.serie}-{obj.folio}" if obj.folio else f"{obj.serie} (sin folio)"

    @admin.display(description="UUID", ordering="uuid")
    def short_uuid(self, obj):
        if not obj.uuid:
            return "—"
        full = str(obj.uuid).upper()
        return format_html('<span title="{}" style="font-family:monospace">{}…</span>', full, full[:8])

    @admin.display(description="receptor", ordering="receptor_name")
    def receptor_name_short(self, obj):
        name = obj.receptor_name
        return format_html('<span title="{}">{}</span>', name, name if len(name) <= 28 else name[:27] + "…")

    @admin.display(description="fecha", ordering="created_at")
    def issued_on(self, obj):
        if obj.status == Invoice.Status.SCHEDULED and obj.issue_at:
            return format_html('<span title="Emisión programada: se timbra a partir de esta hora">'
                               "programada: {}</span>", timezone.localtime(obj.issue_at).strftime("%d/%m/%y %H:%M"))
        when = obj.issued_at or obj.created_at
        return timezone.localtime(when).strftime("%d/%m/%y %H:%M") if when else "—"

    @admin.display(description="error", ordering="last_error_code")
    def error_code(self, obj):
        if not obj.last_error_code:
            return "—"
        return format_html('<span title="{}">{}</span>', obj.last_error_message, obj.last_error_code)

    @admin.display(description="correos del receptor")
    def emails_list(self, obj):
        return ", ".join(obj.receptor_emails or []) or "—"

    @admin.action(description="Reintentar el timbrado ahora", permissions=["retry"])
    def retry_now(self, request, queryset):
        actor = request.user.get_username()
        ids = list(queryset.values_list("pk", flat=True))
        queued = sum(invoice_retry_now(invoice_id=pk, actor=actor) for pk in ids)
        if queued:
            self.message_user(request, f"{queued} factura(s) se enviarán de nuevo al PAC ahora.", messages.SUCCESS)
        if len(ids) > queued:
            self.message_user(
                request,
                f"{len(ids) - queued} factura(s) no esperaban un reintento (ya timbradas, rechazadas, en proceso "
                "o detenidas por una solicitud tardía); no se tocaron.",
                messages.WARNING,
            )

    @admin.action(description="Cancelar la emisión programada (antes de su hora)", permissions=["cancel"])
    def withdraw_scheduled(self, request, queryset):
        """A scheduled invoice never becomes a CFDI: no folio used, its tickets free again."""
        actor = request.user.get_username()
        scheduled = list(queryset.filter(status=Invoice.Status.SCHEDULED).order_by("pk"))
        done = 0
        for invoice in scheduled:
            try:
                scheduled_invoice_withdraw(merchant=invoice.merchant, invoice_id=invoice.pk, actor=actor)
                done += 1
            except InvoicingError as exc:  # it reached its time meanwhile
                self.message_user(request, f"{invoice}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{done} factura(s) programada(s) retirada(s): no se emitirán y sus tickets "
                                       "quedan libres.", messages.SUCCESS)
        others = queryset.exclude(status=Invoice.Status.SCHEDULED).count()
        if others:
            self.message_user(request, f"{others} factura(s) no estaban programadas; no se tocaron (una timbrada se "
                                       "cancela ante el SAT).", messages.WARNING)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)  # scoped: None for another merchant's invoice
        if invoice is not None and invoice.kind == Invoice.Kind.GLOBAL:
            late = (Event.objects.filter(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                                         data__late_global=True).values_list("reason", flat=True).first())
            if late:
                self.message_user(request, late, messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Reenviar por correo a otra dirección…", permissions=["resend"])
    def resend_to(self, request, queryset):
        """An intermediate page asks for the addresses; the same resend service sends to them."""
        invoices = list(queryset.filter(status__in=DOWNLOADABLE).order_by("pk")[:MAX_RESEND_AT_ONCE + 1])
        if not invoices:
            self.message_user(request, "Solo se reenvían facturas timbradas.", messages.WARNING)
            return None
        if len(invoices) > MAX_RESEND_AT_ONCE:
            self.message_user(request, f"Elige hasta {MAX_RESEND_AT_ONCE} facturas a la vez.", messages.WARNING)
            return None
        form = ResendToForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            sent = 0
            for invoice in invoices:
                try:
                    sent += invoice_email_send(invoice_id=invoice.pk, to=form.cleaned_data["emails"],
                                               actor=request.user.get_username())
                except InvoicingError as exc:
                    self.message_user(request, f"{invoice}: {exc.message}", messages.WARNING)
            if sent:
                self.message_user(request, f"Se enviaron {sent} factura(s) a {', '.join(form.cleaned_data['emails'])}.",
                                  messages.SUCCESS)
            return None
        context = {**self.admin_site.each_context(request), "title": "Reenviar a otra dirección", "form": form,
                   "invoices": invoices, "opts": self.model._meta, "action": "resend_to",
                   "selected": [invoice.pk for invoice in invoices],
                   "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
        return TemplateResponse(request, "admin/invoicing/invoice/resend_to.html", context)

    def has_add_permission(self, request):
        return False


import invoicing.admin_global  # noqa: E402,F401  (factura global periods, preview, late requests)
import invoicing.admin_pac  # noqa: E402,F401  (Merchant admin with the PAC section and "Probar conexión")
import invoicing.webhooks.admin  # noqa: E402,F401  (webhook endpoints, deliveries, "reenviar")

# Tickets may not import the invoicing app: give its payment-form filter the SAT catalog's names from here.
PaymentFormFilter.names = FORMAS_PAGO

# The admin's home for merchant staff (infra.admin_scope.MerchantAdminSite.index).
admin.site.dashboard = merchant_dashboard

import invoicing.admin_export  # noqa: E402,F401  (the accountant's period export)
