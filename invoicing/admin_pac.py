"""Merchant admin with the PAC section (provider, environment, username, write-only password, "Probar
conexión"; the same for the secondary PAC stamping fails over to, with the circuit breakers' state and the last
switch), the régimen fiscal as a choice valid for the RFC, and the branding with a live preview."""

from __future__ import annotations

import logging
import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from infra.roles import Cap
from invoicing.cfdi.catalogs import REGIMENES_FISCALES, regimenes_for
from invoicing.models import Invoice, PacCircuit, PacRoute
from invoicing.pac import get_pac, get_secondary_pac
from invoicing.pac.base import PacError
from invoicing.pdf import invoice_branding, render_cfdi_pdf, safe_color
from invoicing.services.documents import DOWNLOADABLE
from tickets.admin import MerchantAdmin
from tickets.models import Merchant

log = logging.getLogger("invoicing.pac")

PAC_FIELDS = ["pac", "pac_environment", "pac_username", "pac_password_new", "pac_password_clear"]
SECONDARY_FIELDS = ["pac_secondary", "pac_secondary_environment", "pac_secondary_username",
                    "pac_secondary_password_new", "pac_secondary_password_clear"]
FAILOVER_FIELDS = ["pac_circuits", "pac_last_switch"]
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
    pac_secondary_password_new = forms.CharField(
        label="Contraseña o token del PAC secundario",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Se guarda cifrada y no se vuelve a mostrar. Déjala vacía para conservar la actual.",
    )
    pac_secondary_password_clear = forms.BooleanField(label="Borrar la contraseña guardada del PAC secundario",
                                                      required=False)

    class Meta:
        model = Merchant
        # Every field the MerchantAdmin shows, never the secrets.
        exclude = ["pac_password", "pac_secondary_password"]  # noqa: DJ006

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "pac_secondary_environment" in self.fields:
            self.fields["pac_secondary_environment"].required = False
        if "tax_regime" in self.fields:
            # Offered: the régimenes of the saved RFC's person type. Accepted: any, then checked in clean() against
            # the RFC submitted with it, so a changed RFC gets a message that says why.
            rfc = "" if self.is_bound else str(self.initial.get("rfc") or "").strip().upper()
            self.fields["tax_regime"] = forms.ChoiceField(
                label="Régimen fiscal", choices=regime_choices(rfc),
                help_text="Los regímenes que el SAT admite para el tipo de persona del RFC (12 caracteres: moral; "
                "13: física).")

    def clean_pac_secondary_environment(self):
        # Not asked for until a secondary PAC is chosen: a form without it keeps what is stored.
        return (self.cleaned_data.get("pac_secondary_environment") or self.instance.pac_secondary_environment
                or Merchant.PacEnvironment.TEST)

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
        secondary = data.get("pac_secondary")
        if secondary and secondary == (pac or self.instance.pac):
            self.add_error("pac_secondary", "El PAC secundario debe ser distinto del principal: si el principal no "
                           "responde, el respaldo tiene que estar en otro servicio.")
        if secondary in (Merchant.Pac.FINKOK, Merchant.Pac.SW):
            has_password = bool(data.get("pac_secondary_password_new")) or (
                bool(self.instance.pac_secondary_password) and not data.get("pac_secondary_password_clear")
            )
            if not has_password:
                self.add_error("pac_secondary_password_new", "Escribe la contraseña (o el token) del PAC secundario.")
            if secondary == Merchant.Pac.FINKOK and not data.get("pac_secondary_username"):
                self.add_error("pac_secondary_username", "Finkok pide el usuario (correo) de tu cuenta.")
        return data

    def save(self, commit=True):
        merchant = super().save(commit=False)
        if self.cleaned_data.get("pac_password_new"):
            merchant.pac_password = self.cleaned_data["pac_password_new"]
        elif self.cleaned_data.get("pac_password_clear"):
            merchant.pac_password = None
        if self.cleaned_data.get("pac_secondary_password_new"):
            merchant.pac_secondary_password = self.cleaned_data["pac_secondary_password_new"]
        elif self.cleaned_data.get("pac_secondary_password_clear"):
            merchant.pac_secondary_password = None
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
        return [*super().get_readonly_fields(request, obj), "branding_preview", *FAILOVER_FIELDS]

    @admin.display(description="estado de los PAC")
    def pac_circuits(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        pacs = [(role, pac) for role, pac in (("principal", _pac_or_none(get_pac, obj)),
                                               ("secundario", _pac_or_none(get_secondary_pac, obj))) if pac]
        circuits = {c.key: c for c in PacCircuit.objects.filter(key__in=[pac.circuit_key for _, pac in pacs])}
        rows = []
        for role, pac in pacs:
            circuit = circuits.get(pac.circuit_key)
            if circuit is None:
                rows.append((role, pac.label, "Cerrado: sin fallas registradas", ""))
                continue
            detail = []
            if circuit.state != PacCircuit.State.CLOSED and circuit.retry_at:
                detail.append(f"próxima prueba: {_when(circuit.retry_at, obj)}")
            if circuit.failures:
                detail.append(f"{circuit.failures} falla(s) seguidas")
            if circuit.last_failure_at:
                detail.append(f"última falla {_when(circuit.last_failure_at, obj)}: {circuit.last_error}")
            rows.append((role, pac.label, circuit.get_state_display(), "; ".join(detail)))
        return format_html('<table class="pac-circuits">{}</table>', format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td><strong>{}</strong></td><td>{}</td></tr>", rows))

    @admin.display(description="último cambio de PAC")
    def pac_last_switch(self, obj):
        route = PacRoute.objects.filter(merchant=obj).first() if obj is not None and obj.pk else None
        if route is None or route.switched_at is None:
            return "Ninguno: las facturas se timbran con el PAC principal."
        labels = dict(Merchant.Pac.choices)
        return format_html("{} · de {} a {} · {}<br>Ahora se timbra con el {}.", _when(route.switched_at, obj),
                           labels.get(route.from_pac, route.from_pac), labels.get(route.to_pac, route.to_pac),
                           route.reason, route.get_route_display())

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
        grouped = {*PAC_FIELDS, *SECONDARY_FIELDS, *FAILOVER_FIELDS, *BRAND_FIELDS}
        fields = [f for f in self.get_fields(request, obj) if f not in grouped]
        pac_fields = [f for f in PAC_FIELDS if f != "pac_password_clear" or (obj and obj.pac_password)]
        secondary_fields = [f for f in SECONDARY_FIELDS
                            if f != "pac_secondary_password_clear" or (obj and obj.pac_secondary_password)]
        return [
            (None, {"fields": fields}),
            ("Marca", {"fields": BRAND_FIELDS}),
            ("Timbrado (PAC)", {
                "fields": pac_fields,
                "description": "El sandbox timbra sin validez fiscal. Para facturar ante el SAT elige Finkok o "
                "SW Sapien y escribe las credenciales de tu cuenta; luego usa la acción «Probar conexión».",
            }),
            ("PAC secundario (respaldo)", {
                "fields": [*secondary_fields, *FAILOVER_FIELDS],
                "description": "Si el PAC principal no responde, las facturas nuevas se timbran con el secundario y "
                "regresan al principal cuando vuelve. Una factura que pudo quedar timbrada en un PAC (se perdió su "
                "respuesta) solo se vuelve a enviar a ese mismo PAC, nunca al otro; si aun así aparecen dos folios "
                "fiscales de una venta, el sobrante se cancela solo con motivo 02 y te avisamos.",
            }),
        ]

    @admin.action(description="Probar conexión con el PAC", permissions=["settings"])
    def probar_conexion(self, request, queryset):
        # The queryset is already scoped to the user's merchant by MerchantAdmin.get_queryset.
        for merchant in queryset:
            for role, lookup in (("", get_pac), (" (PAC secundario)", get_secondary_pac)):
                try:
                    pac = lookup(merchant)
                    if pac is None:
                        continue
                    result = pac.ping()
                except PacError as exc:
                    self.message_user(request, f"{merchant.legal_name}{role}: {ping_failure(exc)}", messages.ERROR)
                except Exception:
                    log.exception("PAC ping failed for merchant %s", merchant.pk)
                    self.message_user(request, f"{merchant.legal_name}{role}: no se pudo probar la conexión por un "
                                      "error inesperado; no queda nada pendiente. Vuelve a probar más tarde.",
                                      messages.ERROR)
                else:
                    self.message_user(request, f"{merchant.legal_name}{role}: {result}", messages.SUCCESS)


def _pac_or_none(lookup, merchant):
    try:
        return lookup(merchant)
    except PacError:  # an unknown provider configured: nothing to show for it
        return None


def _when(moment, merchant) -> str:
    return f"{timezone.localtime(moment, merchant.tzinfo):%d/%m/%Y %H:%M:%S}"


admin.site.unregister(Merchant)
admin.site.register(Merchant, MerchantPacAdmin)
