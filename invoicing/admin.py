from django.contrib import admin

from invoicing.models import Certificate, Invoice, InvoiceRelation, InvoiceTicket
from tickets.admin_scope import MerchantScopedAdmin


@admin.register(Certificate)
class CertificateAdmin(MerchantScopedAdmin):
    list_display = ["number", "rfc", "valid_from", "valid_to", "is_active"]
    exclude = ["cer_der", "key_der", "password"]
    readonly_fields = ["number", "rfc", "legal_name", "valid_from", "valid_to", "created_at"]

    def has_add_permission(self, request):
        return False  # uploaded through the CSD form (it validates the files and the password)


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
class InvoiceAdmin(MerchantScopedAdmin):
    list_display = ["__str__", "kind", "status", "receptor_rfc", "total", "uuid", "created_at"]
    list_filter = ["kind", "status", "pac"]
    search_fields = ["receptor_rfc", "receptor_name", "uuid", "folio"]
    date_hierarchy = "created_at"
    inlines = [InvoiceTicketInline, InvoiceRelationInline]
    exclude = ["sealed_xml", "stamped_xml"]

    def get_readonly_fields(self, request, obj=None):
        # An invoice is a legal snapshot: nothing is edited after it exists.
        return [f.name for f in Invoice._meta.fields if f.name not in ("sealed_xml", "stamped_xml")]

    def has_add_permission(self, request):
        return False
