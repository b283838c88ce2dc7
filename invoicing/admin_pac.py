"""Merchant admin with the PAC section (provider, environment, username, write-only password, "Probar
conexión"), the régimen fiscal as a choice valid for the RFC, and the branding with a live preview."""

from __future__ import annotations

import logging
import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from infra.roles import Cap
from invoicing.cfdi.catalogs import REGIMENES_FISCALES, regimenes_for
from invoicing.models import Invoice
from invoicing.pac import get_pac
from invoicing.pac.base import PacError
from invoicing.pdf import invoice_branding, render_cfdi_pdf, safe_color
from invoicing.services.documents import DOWNLOADABLE
from tickets.admin import MerchantAdmin
from tickets.models import Merchant

log = logging.getLogger("invoicing.pac")

PAC_FIELDS = ["pac", "pac_environment", "pac_username", "pac_password_new", "pac_password_clear"]
BRAND_FIELDS = ["logo", "brand_color", "branding_preview"]
# The PAC's error messages are written for stamping, where a transient error is retried. A connection test
# retries nothing: those promises are taken out of what it shows.
RETRY_PROMISE = re.compile(r"\s*(Reintentaremos|Se reintentará|se reintentará)[^.]*\.", re.IGNORECASE)


def regime_choices(rfc: str = "") -> list[tuple[str, str]]:
    regimes = regimenes_for(rfc) if len(rfc or "") in (12, 13) else REGIMENES_FISCALES.values()
    return [(r.code, f"{r.code} · {r.description}") for r in regimes]


def ping_failure(exc: PacError) -> str:
    reason = RETRY_PROMISE.sub("", exc.message).strip()
    return f"{reason} Es solo una prueba: no queda nada pendiente ni se reintentará; vuelve a probar cuando quieras."


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "tax_regime" in self.fields:
            # Offered: the régimenes of the saved RFC's person type. Accepted: any, then checked in clean() against
            # the RFC submitted with it, so a changed RFC gets a message that says why.
            rfc = "" if self.is_bound else str(self.initial.get("rfc") or "").strip().upper()
            self.fields["tax_regime"] = forms.ChoiceField(
                label="Régimen fiscal", choices=regime_choices(rfc),
                help_text="Los regímenes que el SAT admite para el tipo de persona del RFC (12 caracteres: moral; "
                "13: física).")

    def clean(self):
        data = super().clean()
        rfc, regime = (data.get("rfc") or "").upper(), data.get("tax_regime")
        if regime and len(rfc) in (12, 13) and regime not in {r.code for r in regimenes_for(rfc)}:
            kind = "moral" if len(rfc) == 12 else "física"
            name = REGIMENES_FISCALES[regime].description if regime in REGIMENES_FISCALES else regime
            self.add_error("tax_regime", f"El régimen {regime} ({name}) no es válido para una persona {kind}.")
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
    custom_view_capabilities = {"pdf_preview": Cap.READ}

    class Media:
        js = ["admin/branding_preview.js"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "branding_preview"]

    @admin.display(description="vista previa")
    def branding_preview(self, obj):
        if obj is None or obj.pk is None:
            return "Guarda el comercio para ver la vista previa."
        color = safe_color(obj.brand_color)
        logo = format_html('<img src="{}" alt="" height="40" style="vertical-align:middle;margin-right:10px">',
                           obj.logo_url) if obj.logo else ""
        pdf = reverse("admin:tickets_merchant_pdf_preview", args=(obj.pk,))
        return format_html(
            '<div id="branding-preview" data-color="{}" style="max-width:560px">'
            '<div class="portal-header" style="background:{};color:#fff;padding:12px 16px;border-radius:8px 8px 0 0">'
            '{}<strong class="preview-name">{}</strong></div>'
            '<div style="border:1px solid #ddd;border-top:0;padding:10px 16px;border-radius:0 0 8px 8px">'
            'Así ven tus clientes el encabezado del portal. El color se actualiza mientras lo eliges; el logotipo, '
            'al guardar. <a href="{}" target="_blank" rel="noopener">Vista previa del PDF</a> (con tu última factura '
            'timbrada y la marca guardada).</div></div>',
            color, color, logo, obj.legal_name, pdf)

    def get_urls(self):
        return [path("<path:object_id>/vista-previa-pdf/", self.admin_site.admin_view(self.pdf_preview_view),
                     name="tickets_merchant_pdf_preview")] + super().get_urls()

    def pdf_preview_view(self, request, object_id):
        merchant = self.get_object(request, unquote(object_id))
        if merchant is None:
            raise Http404("El comercio no existe.")
        invoice = (Invoice.objects.filter(merchant=merchant, status__in=DOWNLOADABLE, stamped_xml__isnull=False)
                   .order_by("-pk").only("stamped_xml").first())
        if invoice is None:
            raise Http404("La vista previa del PDF aparece cuando tengas una factura timbrada.")
        body = render_cfdi_pdf(bytes(invoice.stamped_xml), branding=invoice_branding(merchant), sandbox=True)
        response = HttpResponse(body, content_type="application/pdf")
        response["Content-Disposition"] = 'inline; filename="vista-previa.pdf"'
        return response

    def get_fieldsets(self, request, obj=None):
        fields = [f for f in self.get_fields(request, obj) if f not in PAC_FIELDS and f not in BRAND_FIELDS]
        pac_fields = [f for f in PAC_FIELDS if f != "pac_password_clear" or (obj and obj.pac_password)]
        return [
            (None, {"fields": fields}),
            ("Marca", {"fields": BRAND_FIELDS}),
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
                self.message_user(request, f"{merchant.legal_name}: {ping_failure(exc)}", messages.ERROR)
            except Exception:
                log.exception("PAC ping failed for merchant %s", merchant.pk)
                self.message_user(request, f"{merchant.legal_name}: no se pudo probar la conexión por un error "
                                  "inesperado; no queda nada pendiente. Vuelve a probar más tarde.", messages.ERROR)
            else:
                self.message_user(request, f"{merchant.legal_name}: {result}", messages.SUCCESS)


admin.site.unregister(Merchant)
admin.site.register(Merchant, MerchantPacAdmin)
