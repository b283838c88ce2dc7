""""Corregir mis datos": from the invoice's page, after re-entering the invoice's RFC and within the merchant's
window, the shopper's corrected data make a new invoice that replaces the old one (motivo 01, through
invoicing/services/reissue.py). Rate-limited per address; refused while a cancellation is under way."""

from __future__ import annotations

import copy
import datetime as dt

from django import forms
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from invoicing.cfdi.cancellation import long_date
from invoicing.cfdi.rfc import normalize_rfc
from invoicing.errors import InvoicingError
from invoicing.models import Cancellation, Invoice
from invoicing.services.issue import invoice_receptor
from invoicing.services.receptor import ReceptorData
from invoicing.services.reissue import self_correction_until, shopper_correction
from portal import ratelimit
from portal.forms import FiscalDataForm, catalog_matrix
from portal.shopper.messages import is_default_language, shopper_message
from portal.shopper.pages import RATE_LIMITED, _invoice, _merchant, _render

# What a refusal means for the shopper (the services' messages are the merchant's words otherwise).
MESSAGES = {
    "cancellation_in_progress": _("Esta factura tiene una cancelación en proceso: no se puede corregir hasta que "
                                  "termine. Si ya corregiste tus datos, revisa tu correo: ahí llegará la factura "
                                  "nueva."),
    "already_cancelled": _("Esta factura ya fue cancelada: no se puede corregir."),
    "not_stamped": _("Esta factura aún no está timbrada: espera unos segundos y vuelve a intentarlo."),
}


class CorrectionForm(FiscalDataForm):
    current_rfc = forms.CharField(label=_("RFC con el que facturaste"), max_length=20,
                                  help_text=_("Para confirmar que la factura es tuya."),
                                  error_messages={"required": _("Escribe el RFC con el que se hizo esta factura.")},
                                  widget=forms.TextInput(attrs={"autocomplete": "off",
                                                                "autocapitalize": "characters"}))
    rfc = copy.deepcopy(FiscalDataForm.base_fields["rfc"])
    rfc.label = _("RFC correcto")
    remember = None  # the portal's cookie is for new invoices
    field_order = ["current_rfc", "rfc", "name", "tax_regime", "cfdi_use", "postal_code", "emails"]

    def clean_current_rfc(self) -> str:
        return normalize_rfc(self.cleaned_data["current_rfc"])


def correction_context(invoice: Invoice) -> dict:
    """For the invoice's page: whether the shopper may correct it (and until when), or what replaced it."""
    replaced = (Cancellation.objects.filter(invoice=invoice, motive="01", replacement__isnull=False)
                .exclude(status__in=(Cancellation.Status.REJECTED, Cancellation.Status.REFUSED,
                                     Cancellation.Status.ABANDONED))
                .select_related("replacement").order_by("-pk").first())
    until = self_correction_until(invoice) if invoice.status == Invoice.Status.STAMPED and replaced is None else None
    if until is not None and timezone.now() >= until:
        until = None
    return {"correction_until": _last_day(until, invoice), "replacement": replaced.replacement if replaced else None}


def _last_day(until, invoice) -> str:
    """«31 de diciembre de 2026»: the window ends *at* ``until`` (midnight), so people read the day before."""
    if until is None:
        return ""
    day = timezone.localtime(until - dt.timedelta(seconds=1), invoice.merchant.tzinfo).date()
    return long_date(day) if is_default_language() else formats.date_format(day, "F j, Y")


@never_cache
def invoice_correct(request, slug: str, code: str):
    merchant = _merchant(slug)
    invoice = _invoice(merchant, code)
    back = reverse("shop-invoice", args=(merchant.slug, invoice.public_code))
    receptor = invoice_receptor(invoice)
    initial = {"rfc": receptor.rfc, "name": receptor.name, "tax_regime": receptor.tax_regime,
               "postal_code": receptor.postal_code, "cfdi_use": receptor.cfdi_use, "emails": ", ".join(receptor.emails)}
    form = CorrectionForm(request.POST or None, initial=initial)
    context = {"invoice": invoice, "form": form, "back": back, "matrix": catalog_matrix(),
               "until": _last_day(self_correction_until(invoice), invoice) if invoice.status == Invoice.Status.STAMPED
               else ""}
    status = 200
    if request.method == "POST":
        if not ratelimit.hit("correction_ip", ratelimit.client_ip(request)):
            form.is_valid()
            form.add_error(None, RATE_LIMITED)
            status = 429
        elif form.is_valid():
            data = form.cleaned_data
            corrected = ReceptorData(rfc=data["rfc"], name=data["name"], tax_regime=data["tax_regime"],
                                     postal_code=data["postal_code"], cfdi_use=data["cfdi_use"],
                                     emails=tuple(data["emails"]))
            try:
                cancellation = shopper_correction(invoice=invoice, current_rfc=data["current_rfc"], receptor=corrected)
            except InvoicingError as exc:
                field = "current_rfc" if exc.code == "rfc_mismatch" else None
                form.add_error(field, MESSAGES.get(exc.code) or shopper_message(exc.message))
                status = 400 if exc.status == 400 else 409
            else:
                replacement = cancellation.replacement
                return redirect(reverse("shop-invoice", args=(merchant.slug, replacement.public_code))
                                + "?corregida=1")
        else:
            status = 400
    return _render(request, "portal/correct.html", merchant, context, status=status)
