"""The accountant's export in the back office: ask for a month (or dates) and a branch, follow the progress,
download the ZIP. Scoped to the merchant; accountants and owners only (capability "export")."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import FileResponse, Http404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from infra.admin_scope import MerchantScopedAdmin, user_merchant_id
from infra.roles import Cap
from invoicing.errors import InvoicingError
from invoicing.models import AccountingExport
from invoicing.services.exports import MAX_DAYS, export_file, export_request
from tickets.models import Merchant


def last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


class ExportForm(forms.ModelForm):
    month = forms.CharField(label="Mes", required=False, max_length=7,
                            help_text="AAAA-MM, p. ej. 2026-03. O deja el mes vacío y usa «desde» y «hasta».")

    class Meta:
        model = AccountingExport
        fields = ["merchant", "month", "first_day", "last_day", "branch", "include_pdfs"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("first_day", "last_day"):
            if name in self.fields:  # the change page shows them read-only
                self.fields[name].required = False
        if "branch" in self.fields:
            self.fields["branch"].empty_label = "Todas las sucursales"

    def clean(self):
        data = super().clean()
        month = (data.get("month") or "").strip()
        if month:
            try:
                first = dt.datetime.strptime(month, "%Y-%m").date()  # noqa: DTZ007 - a calendar month, no instant
            except ValueError:
                self.add_error("month", "Escribe el mes como AAAA-MM.")
                return data
            data["first_day"] = first
            data["last_day"] = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        elif not data.get("first_day") or not data.get("last_day"):
            raise forms.ValidationError("Indica el mes, o las fechas «desde» y «hasta».")
        if data["last_day"] < data["first_day"]:
            raise forms.ValidationError("La fecha «hasta» es anterior a «desde».")
        if (data["last_day"] - data["first_day"]).days >= MAX_DAYS:
            raise forms.ValidationError(f"El periodo admite hasta {MAX_DAYS} días.")
        merchant = data.get("merchant")
        branch = data.get("branch")
        if merchant is not None and branch is not None and branch.merchant_id != merchant.pk:
            self.add_error("branch", "La sucursal es de otro comercio.")
        return data


@admin.register(AccountingExport)
class AccountingExportAdmin(MerchantScopedAdmin):
    view_capability = Cap.EXPORT
    edit_capability = Cap.EXPORT
    form = ExportForm
    list_display = ["__str__", "branch", "state", "progress", "requested_by", "created_at", "download"]
    list_filter = ["status"]
    list_select_related = ["branch"]
    custom_view_capabilities = {"download": Cap.EXPORT}
    readonly_fields = ["first_day", "last_day", "branch", "include_pdfs", "state", "progress", "requested_by",
                       "created_at", "finished_at", "error", "download"]

    def get_fields(self, request, obj=None):
        if obj is not None:
            return self.readonly_fields
        fields = ["month", "first_day", "last_day", "branch", "include_pdfs"]
        return ["merchant", *fields] if request.user.is_superuser else fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_changeform_initial_data(self, request):
        first, _ = last_month(timezone.localdate())
        return {"month": f"{first:%Y-%m}"}

    def has_change_permission(self, request, obj=None):
        return False  # an export is a record of what was handed out: ask for another one instead

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="estado", ordering="status")
    def state(self, obj):
        return obj.get_status_display()

    @admin.display(description="avance")
    def progress(self, obj):
        if obj.status == AccountingExport.Status.QUEUED:
            return "—"
        return f"{obj.processed} de {obj.total}"

    @admin.display(description="descarga")
    def download(self, obj):
        if obj.status != AccountingExport.Status.DONE:
            return "—"
        return format_html('<a class="button" href="{}">Descargar ZIP</a>',
                           reverse("admin:invoicing_accountingexport_download", args=(obj.pk,)))

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if request.user.is_superuser:
            merchant = data["merchant"]
        else:
            merchant = Merchant.objects.get(pk=user_merchant_id(request.user))
        # The form checked the period; the branch's choices are the merchant's (MerchantScopedAdmin).
        export = export_request(merchant=merchant, first_day=data["first_day"], last_day=data["last_day"],
                                branch=data.get("branch"), include_pdfs=data.get("include_pdfs", False),
                                actor=request.user.get_username())
        obj.pk, obj.merchant_id, obj.status, obj.created_at = export.pk, merchant.pk, export.status, export.created_at
        messages.info(request, "La exportación se está generando en segundo plano; esta lista muestra su avance.")

    def save_related(self, request, form, formsets, change):
        pass

    def response_add(self, request, obj, post_url_continue=None):
        return self.response_post_save_add(request, obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("<path:object_id>/descargar/", self.admin_site.admin_view(self.download_view),
                     name="{}_{}_download".format(*info))] + super().get_urls()

    def download_view(self, request, object_id):
        export = self.get_object(request, unquote(object_id))
        if export is None:
            raise Http404("La exportación no existe.")
        try:
            handle = export_file(export)
        except InvoicingError as exc:
            raise Http404(exc.message) from exc
        return FileResponse(handle, as_attachment=True, filename=export.file.name.rsplit("/", 1)[-1],
                            content_type="application/zip")
