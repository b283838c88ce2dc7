"""Merchant admin with the PAC section: provider, environment, username, write-only password, "Probar conexión"."""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages

from invoicing.pac import get_pac
from invoicing.pac.base import PacError
from tickets.admin import MerchantAdmin
from tickets.models import Merchant

log = logging.getLogger("invoicing.pac")

PAC_FIELDS = ["pac", "pac_environment", "pac_username", "pac_password_new", "pac_password_clear"]


class MerchantPacForm(forms.ModelForm):
    # Write-only: the stored secret is never rendered back; empty keeps it.
    pac_password_new = forms.CharField(
        label="Contraseña o token del PAC",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Se guarda cifrada y no se vuelve a mostrar. Déjala vacía para conservar la actual. "
        "En SW Sapien puedes dejar el usuario vacío y pegar aquí el token infinito.",
    )
    pac_password_clear = forms.BooleanField(label="Borrar la contraseña guardada", required=False)

    class Meta:
        model = Merchant
        exclude = ["pac_password"]  # noqa: DJ006 - every field the MerchantAdmin shows, never the secret

    def clean(self):
        data = super().clean()
        pac = data.get("pac")
        if pac in (Merchant.Pac.FINKOK, Merchant.Pac.SW):
            has_password = bool(data.get("pac_password_new")) or (
                bool(self.instance.pac_password) and not data.get("pac_password_clear")
            )
            if not has_password:
                self.add_error("pac_password_new", "Escribe la contraseña (o el token) que te dio el PAC.")
            if pac == Merchant.Pac.FINKOK and not data.get("pac_username"):
                self.add_error("pac_username", "Finkok pide el usuario (correo) de tu cuenta.")
        return data

    def save(self, commit=True):
        merchant = super().save(commit=False)
        if self.cleaned_data.get("pac_password_new"):
            merchant.pac_password = self.cleaned_data["pac_password_new"]
        elif self.cleaned_data.get("pac_password_clear"):
            merchant.pac_password = None
        if commit:
            merchant.save()
            self.save_m2m()
        return merchant


class MerchantPacAdmin(MerchantAdmin):
    form = MerchantPacForm
    actions = ["probar_conexion"]

    def get_fieldsets(self, request, obj=None):
        fields = [f for f in self.get_fields(request, obj) if f not in PAC_FIELDS]
        pac_fields = [f for f in PAC_FIELDS if f != "pac_password_clear" or (obj and obj.pac_password)]
        return [
            (None, {"fields": fields}),
            ("Timbrado (PAC)", {
                "fields": pac_fields,
                "description": "El sandbox timbra sin validez fiscal. Para facturar ante el SAT elige Finkok o "
                "SW Sapien y escribe las credenciales de tu cuenta; luego usa la acción «Probar conexión».",
            }),
        ]

    @admin.action(description="Probar conexión con el PAC", permissions=["settings"])
    def probar_conexion(self, request, queryset):
        # The queryset is already scoped to the user's merchant by MerchantAdmin.get_queryset.
        for merchant in queryset:
            try:
                result = get_pac(merchant).ping()
            except PacError as exc:
                self.message_user(request, f"{merchant.legal_name}: {exc.message}", messages.ERROR)
            except Exception:
                log.exception("PAC ping failed for merchant %s", merchant.pk)
                self.message_user(request, f"{merchant.legal_name}: no se pudo probar la conexión por un error "
                                  "inesperado. Intenta de nuevo más tarde.", messages.ERROR)
            else:
                self.message_user(request, f"{merchant.legal_name}: {result}", messages.SUCCESS)


admin.site.unregister(Merchant)
admin.site.register(Merchant, MerchantPacAdmin)
