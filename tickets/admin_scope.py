"""Back-office scoping: staff see and touch only their own merchant's rows; superusers see all."""

from django.contrib import admin

from tickets.models import Merchant


def user_merchant_id(user) -> int | None:
    membership = getattr(user, "membership", None)
    return membership.merchant_id if membership else None


class MerchantScopedAdmin(admin.ModelAdmin):
    # Path from the model to its merchant, e.g. "merchant" or "ticket__merchant".
    merchant_path = "merchant"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        merchant_id = user_merchant_id(request.user)
        if merchant_id is None:
            return qs.none()
        return qs.filter(**{f"{self.merchant_path}_id": merchant_id})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Drop-downs must not leak other merchants' branches, tickets, certificates…
        if not request.user.is_superuser:
            merchant_id = user_merchant_id(request.user)
            model = db_field.related_model
            if model is Merchant:
                kwargs["queryset"] = Merchant.objects.filter(pk=merchant_id)
            elif hasattr(model, "merchant_id"):
                kwargs["queryset"] = model._default_manager.filter(merchant_id=merchant_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser and self.merchant_path == "merchant" and not change:
            obj.merchant_id = user_merchant_id(request.user)
        super().save_model(request, obj, form, change)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.merchant_path == "merchant":
            exclude.append("merchant")
        return exclude
