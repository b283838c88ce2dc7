from django import forms
from django.contrib import admin, messages

from invoicing.admin_cancel import InvoiceCancelAdminMixin
from invoicing.cfdi.csd import CsdError, load_csd
from invoicing.downloads import InvoiceDocumentsAdminMixin
from invoicing.models import Certificate, Invoice, InvoiceRelation, InvoiceTicket
from invoicing.services.certificates import certificate_install
from invoicing.services.stamping import invoice_retry_now
from tickets.admin_scope import MerchantScopedAdmin, user_merchant_id
from tickets.models import Merchant


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


@admin.register(Invoice)
class InvoiceAdmin(InvoiceCancelAdminMixin, InvoiceDocumentsAdminMixin, MerchantScopedAdmin):
    list_display = ["__str__", "kind", "status", "receptor_rfc", "total", "uuid", "created_at"]
    list_filter = ["kind", "status", "pac"]
    search_fields = ["receptor_rfc", "receptor_name", "uuid", "folio"]
    date_hierarchy = "created_at"
    inlines = [InvoiceTicketInline, InvoiceRelationInline]
    exclude = ["sealed_xml", "stamped_xml"]
    actions = ["resend_email", "retry_now"]

    @admin.action(description="Reintentar el timbrado ahora", permissions=["view"])
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

    def get_readonly_fields(self, request, obj=None):
        # An invoice is a legal snapshot: nothing is edited after it exists.
        return [f.name for f in Invoice._meta.fields if f.name not in ("sealed_xml", "stamped_xml")] + [
            "document_links"
        ]

    def has_add_permission(self, request):
        return False
import invoicing.admin_global  # noqa: E402,F401  (factura global periods, preview, late requests)
import invoicing.admin_pac  # noqa: E402,F401  (Merchant admin with the PAC section and "Probar conexión")
import invoicing.webhooks.admin  # noqa: E402,F401  (webhook endpoints, deliveries, "reenviar")
