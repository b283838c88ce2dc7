"""Back office of cancellations: the InvoiceAdmin actions and their confirmation pages, the read-only history.

"Cancelar ante el SAT…" (motivos 02 and 03) and "Corregir datos del receptor y reexpedir…" (motivo 01) never send
anything on the first click: a page shows, for every invoice, whether the receptor must accept and why, until when
it can be cancelled at all (CFF 29-A) and what happens to its tickets, or why it cannot be cancelled; only its
"Confirmar" calls the services (invoicing/services/cancel.py, reissue.py). The actions run on the admin's
queryset, already cut to the user's merchant (infra/admin_scope.py).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from invoicing.cfdi import cancellation as rules
from invoicing.errors import InvoicingError
from invoicing.models import Cancellation
from invoicing.services.cancel import cancellation_plan, cancellation_request
from invoicing.services.issue import invoice_receptor
from invoicing.services.reissue import invoice_reissue

MAX_AT_ONCE = 50


class CancellationInline(admin.TabularInline):
    """Every cancellation request of the invoice, newest first; nothing here is editable."""

    model = Cancellation
    fk_name = "invoice"
    extra = 0
    can_delete = False
    ordering = ["-pk"]
    verbose_name_plural = "cancelaciones"
    fields = ["created_at", "motive", "status", "replacement", "tickets_action", "requires_acceptance", "deadline",
              "sat_status", "last_message", "finished_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CancelForm(forms.Form):
    motive = forms.ChoiceField(
        label="Motivo", widget=forms.RadioSelect,
        choices=[("02", "02 · Comprobante emitido con errores sin relación"),
                 ("03", "03 · No se llevó a cabo la operación")],
        help_text="Para corregir datos del receptor (motivo 01) usa «Corregir datos del receptor y reexpedir»: "
                  "primero se timbra la factura correcta y después se cancela esta.",
    )
    tickets = forms.ChoiceField(
        label="Tickets", widget=forms.RadioSelect, required=False,
        choices=[("", "Lo usual para el motivo (02: liberarlos; 03: cancelarlos)"),
                 ("release", "Liberarlos: se pueden volver a facturar o entran en la factura global"),
                 ("void", "Cancelarlos: la venta no se realizó")],
    )


class ReissueForm(forms.Form):
    rfc = forms.CharField(label="RFC", max_length=20)
    name = forms.CharField(label="Nombre o razón social", max_length=400)
    tax_regime = forms.CharField(label="Régimen fiscal", max_length=10)
    postal_code = forms.CharField(label="Código postal", max_length=10)
    cfdi_use = forms.CharField(label="Uso del CFDI", max_length=10)
    emails = forms.CharField(label="Correos (separados por coma)", max_length=1000, required=False)

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        data["emails"] = [e.strip() for e in (data.get("emails") or "").split(",") if e.strip()]
        return data


def _selected(request) -> list[str]:
    return request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)


class InvoiceCancelAdminMixin:
    """Mixed into InvoiceAdmin: the actions, the history inline, and no deleting an invoice, for anyone."""

    cancel_actions = ["cancel_invoices", "reissue_invoice"]

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), CancellationInline]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        if self.actions is None or admin.options.IS_POPUP_VAR in request.GET:
            return actions
        ours = self._filter_actions_by_permissions(request, [self.get_action(name) for name in self.cancel_actions])
        actions.update({name: (func, name, description) for func, name, description in ours})
        return actions

    def has_delete_permission(self, request, obj=None):
        # A stamped CFDI is a legal document, and a folio once used must stay accounted for: an invoice is only
        # ever cancelled (or left failed), never deleted, by staff or superusers alike.
        return False

    def _page(self, request, template, context):
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": context["title"],
                   "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, **context}
        return TemplateResponse(request, template, context)

    @admin.action(description="Cancelar ante el SAT (motivo 02 o 03)…", permissions=["change"])
    def cancel_invoices(self, request, queryset):
        invoices = list(queryset.select_related("merchant").order_by("pk")[:MAX_AT_ONCE + 1])
        if len(invoices) > MAX_AT_ONCE:
            self.message_user(request, f"Selecciona hasta {MAX_AT_ONCE} facturas a la vez.", messages.ERROR)
            return None
        step = request.POST.get("step", "")
        form = CancelForm(request.POST if step else None)
        if step and form.is_valid():
            motive, tickets = form.cleaned_data["motive"], form.cleaned_data["tickets"] or None
            plans = [cancellation_plan(invoice=i, motive=motive, tickets=tickets) for i in invoices]
            if step == "confirm":
                return self._cancel_confirmed(request, invoices, motive, tickets)
            return self._page(request, "admin/invoicing/invoice/cancel_confirm.html", {
                "title": "Confirmar la cancelación", "form": form, "plans": plans, "step": "confirm",
                "motive_name": rules.MOTIVES[motive], "sendable": [p for p in plans if p.refusal is None],
                "selected": _selected(request),
            })
        plans = [cancellation_plan(invoice=i, motive="02") for i in invoices]  # acceptance and deadline
        return self._page(request, "admin/invoicing/invoice/cancel_confirm.html", {
            "title": "Cancelar facturas ante el SAT", "form": form, "plans": plans, "step": "review",
            "selected": _selected(request),
        })

    def _cancel_confirmed(self, request, invoices, motive, tickets):
        actor = request.user.get_username()
        sent, refused = 0, []
        for invoice in invoices:
            try:
                cancellation_request(merchant=invoice.merchant, invoice_id=invoice.pk, motive=motive, tickets=tickets,
                                     actor=actor, source=Cancellation.Source.ADMIN)
                sent += 1
            except InvoicingError as exc:
                refused.append(f"{invoice}: {exc.message}")
        if sent:
            self.message_user(request, f"{sent} solicitud(es) de cancelación enviadas al SAT; el seguimiento "
                                       "avisará el resultado en cada factura.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)
        return None

    @admin.action(description="Corregir datos del receptor y reexpedir (motivo 01)…", permissions=["change"])
    def reissue_invoice(self, request, queryset):
        invoices = list(queryset.select_related("merchant")[:2])
        if len(invoices) != 1:
            self.message_user(request, "Selecciona una sola factura para corregir.", messages.ERROR)
            return None
        invoice = invoices[0]
        plan = cancellation_plan(invoice=invoice, motive=rules.MOTIVE_WITH_REPLACEMENT, waiting_replacement=True)
        step = request.POST.get("step", "")
        receptor = invoice_receptor(invoice)
        initial = {"rfc": receptor.rfc, "name": receptor.name, "tax_regime": receptor.tax_regime,
                   "postal_code": receptor.postal_code, "cfdi_use": receptor.cfdi_use,
                   "emails": ", ".join(receptor.emails)}
        form = ReissueForm(request.POST if step else None, initial=initial)
        if step == "confirm" and form.is_valid() and plan.refusal is None:
            try:
                c = invoice_reissue(merchant=invoice.merchant, invoice_id=invoice.pk, changes=form.changes(),
                                    actor=request.user.get_username(), source=Cancellation.Source.ADMIN)
            except InvoicingError as exc:
                for field, errors in (exc.details or {}).items():
                    if field in form.fields:
                        for error in errors:
                            form.add_error(field, error)
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"La factura #{c.replacement_id} sustituye a {invoice} y ya está en "
                                           "timbrado; la cancelación de la original (motivo 01) se enviará en cuanto "
                                           "quede timbrada.", messages.SUCCESS)
                return None
        return self._page(request, "admin/invoicing/invoice/reissue_confirm.html", {
            "title": f"Corregir y reexpedir {invoice}", "form": form, "plan": plan, "invoice": invoice,
            "selected": _selected(request),
        })

