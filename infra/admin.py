from django.contrib import admin

from infra.admin_scope import MerchantScopedAdmin
from infra.models import Event


@admin.register(Event)
class EventAdmin(MerchantScopedAdmin):
    list_display = ["created_at", "entity", "object_id", "from_status", "to_status", "actor", "reason"]
    list_filter = ["entity", "to_status"]
    readonly_fields = [f.name for f in Event._meta.fields if f.name != "id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
