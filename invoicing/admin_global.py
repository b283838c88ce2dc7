"""Back office of the factura global: periods (list, detail, "generar ahora"), a period preview, late requests.

The globals themselves are invoices (kind "global"): list, detail and XML/PDF/ZIP downloads are InvoiceAdmin's
(filter "tipo: Factura global"); the period pages link to them. Everything is scoped to the user's merchant.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from infra.admin_scope import MerchantScopedAdmin, user_merchant_id
from infra.roles import Cap
from invoicing.cfdi.catalogs import FORMAS_PAGO
from invoicing.errors import InvoicingError
from invoicing.models import GlobalPeriod, Invoice, LateRequest
from invoicing.periods import NAMES, Period
from invoicing.services.global_invoice import (
    eligible_tickets,
    global_invoice_issue,
    global_invoice_preview,
    merchant_period,
)
from tickets.models import Branch, Merchant

PREVIEW_TICKETS = 200


def _issue_now(admin_obj, request, merchant, period, branch=None) -> None:
    try:
        result = global_invoice_issue(merchant=merchant, period=period, branch=branch,
                                      actor=request.user.get_username())
    except InvoicingError as exc:
        admin_obj.message_user(request, exc.message, messages.ERROR)
        return
    if result.invoices:
        admin_obj.message_user(request, f"{period.label}: {len(result.invoices)} factura(s) global(es) con "
                               f"{len(result.included)} ticket(s) en timbrado.", messages.SUCCESS)
    for late in result.late:
        admin_obj.message_user(request, late["message"], messages.WARNING)
    else:
        admin_obj.message_user(request, f"{period.label}: no hay tickets abiertos que incluir.", messages.INFO)


@admin.register(GlobalPeriod)
class GlobalPeriodAdmin(MerchantScopedAdmin):
    list_display = ["__str__", "periodicity_name", "deadline", "state", "alerted_at", "last_run_at"]
    list_filter = ["periodicity"]
    date_hierarchy = "first_day"
    readonly_fields = ["merchant", "periodicity", "first_day", "last_day", "starts_at", "ends_at", "deadline",
                       "last_run_at", "alerted_at", "globals_links"]
    exclude = ["invoices"]
    actions = ["generate_now"]
    change_list_template = "admin/invoicing/globalperiod/change_list.html"
    custom_view_capabilities = {"preview": {"GET": Cap.READ, "POST": Cap.GLOBALS}}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="periodicidad")
    def periodicity_name(self, obj):
        return NAMES.get(obj.periodicity, obj.periodicity)

    @admin.display(description="globales")
    def state(self, obj):
        counts = obj.invoices.aggregate(stamped=Count("pk", filter=Q(status=Invoice.Status.STAMPED)),
                                        all=Count("pk"))
        return f"{counts['stamped']} de {counts['all']} timbrada(s)"

    @admin.display(description="facturas globales")
    def globals_links(self, obj):
        rows = [(reverse("admin:invoicing_invoice_change", args=(i.pk,)), str(i), i.get_status_display())
                for i in obj.invoices.order_by("pk")]
        if not rows:
            return "—"
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> ({})', rows)

    @admin.action(description="Generar ahora las globales de los periodos elegidos", permissions=["globals"])
    def generate_now(self, request, queryset):
        for gp in queryset.select_related("merchant"):
            _issue_now(self, request, gp.merchant, Period(gp.first_day, gp.last_day, gp.periodicity))

    def get_urls(self):
        return [path("vista-previa/", self.admin_site.admin_view(self.preview_view),
                     name="invoicing_globalperiod_preview")] + super().get_urls()

    def preview_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PreviewForm(request.GET or None, user=request.user)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": "Vista previa de la factura global"}
        if form.is_valid():
            merchant, branch = form.cleaned_data["merchant"], form.cleaned_data["branch"]
            try:
                preview = global_invoice_preview(merchant=merchant, period=form.cleaned_data["period"], branch=branch)
            except InvoicingError as exc:
                form.add_error("period", exc.message)
            else:
                period = merchant_period(merchant, form.cleaned_data["period"])
                late = preview["closed"] and timezone.now() >= preview["deadline"]
                for row in preview["by_payment_form"]:
                    row["name"] = FORMAS_PAGO.get(row["payment_form"], "")
                if request.method == "POST":
                    if late and not request.POST.get("confirm_late"):
                        self.message_user(request, "El plazo de esta global ya venció: confirma que quieres "
                                          "generarla de todos modos.", messages.WARNING)
                    else:
                        _issue_now(self, request, merchant, period, branch)
                    return HttpResponseRedirect(request.get_full_path())
                tickets = (eligible_tickets(merchant=merchant, period=period, branch=branch)
                           .select_related("branch").order_by("sold_at", "pk")[:PREVIEW_TICKETS])
                context.update(preview=preview, tickets=tickets, shown=PREVIEW_TICKETS, tz=merchant.time_zone,
                               late=late,
                               can_issue=self.can(request, Cap.GLOBALS))
        return TemplateResponse(request, "admin/invoicing/global_preview.html", context)


class PreviewForm(forms.Form):
    period = forms.CharField(label="Periodo", max_length=40,
                             help_text="AAAA-MM-DD (el periodo que contiene ese día), AAAA-MM o el periodo completo.")
    merchant = forms.ModelChoiceField(label="Comercio", queryset=Merchant.objects.none(), required=False)
    branch = forms.ModelChoiceField(label="Sucursal", queryset=Branch.objects.none(), required=False,
                                    empty_label="Todas")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.own = user_merchant_id(user)
        if user.is_superuser and self.own is None:
            self.fields["merchant"].queryset = Merchant.objects.order_by("legal_name")
            self.fields["merchant"].required = True
            self.fields["branch"].queryset = Branch.objects.order_by("merchant_id", "code")
        else:
            del self.fields["merchant"]
            self.fields["branch"].queryset = Branch.objects.filter(merchant_id=self.own).order_by("code")

    def clean(self):
        data = super().clean()
        if "merchant" not in self.fields:
            data["merchant"] = Merchant.objects.filter(pk=self.own).first()
            if data["merchant"] is None:
                raise forms.ValidationError("Tu usuario no pertenece a ningún comercio.")
        branch = data.get("branch")
        if branch is not None and data.get("merchant") is not None and branch.merchant_id != data["merchant"].pk:
            self.add_error("branch", "La sucursal es de otro comercio.")
        return data


@admin.register(LateRequest)
class LateRequestAdmin(MerchantScopedAdmin):
    list_display = ["__str__", "policy", "status", "invoice_link", "created_at", "updated_at"]
    list_filter = ["status", "policy"]
    readonly_fields = ["merchant", "policy", "status", "invoice_link", "tickets_list", "documents_list",
                       "last_error", "created_at", "updated_at"]
    exclude = ["invoice", "tickets", "documents"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="factura nominativa")
    def invoice_link(self, obj):
        return format_html('<a href="{}">{}</a> ({})', reverse("admin:invoicing_invoice_change", args=(obj.invoice_id,)),
                           obj.invoice, obj.invoice.get_status_display())

    @admin.display(description="tickets")
    def tickets_list(self, obj):
        return ", ".join(t.number for t in obj.tickets.order_by("pk"))

    @admin.display(description="documentos (nota de crédito, global reexpedida)")
    def documents_list(self, obj):
        rows = [(reverse("admin:invoicing_invoice_change", args=(i.pk,)), str(i), i.get_status_display())
                for i in obj.documents.order_by("pk")]
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> ({})', rows) if rows else "—"
