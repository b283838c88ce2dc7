"""Shoppers' pages: landing + lookup, cart, fiscal data, confirmation, progress and downloads.

Views only parse input, call services (invoicing.services.invoice_issue, portal.shopper.*) and render.
Every page is scoped to the merchant of the URL's slug: another merchant's codes answer 404.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from django.conf import settings
from django.core import signing
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from invoicing.cfdi.catalogs import REGIMENES_FISCALES, USOS_CFDI
from invoicing.cfdi.receptor import country_name, error_field
from invoicing.errors import InvoicingError
from invoicing.lifecycle import LEGAL
from invoicing.models import Invoice
from invoicing.services.documents import invoice_email_resend_enqueue
from invoicing.services.issue import ReceptorData, invoice_issue
from invoicing.services.receptor_retry import invoice_receptor_retry, receptor_retry_blocker
from portal import ratelimit
from portal.forms import (
    ConstanciaForm,
    FiscalDataForm,
    LookupForm,
    ReceptorFixForm,
    RegimenChoiceForm,
    RfcCheckForm,
    catalog_matrix,
)
from portal.shopper import cart
from portal.shopper.correction import correction_context
from portal.shopper.csf import ConstanciaError, read_constancia
from portal.shopper.flash import flash
from portal.shopper.glossary import regimen_name, uso_name
from portal.shopper.late import late_explanation, late_request_service
from portal.shopper.lookup import (
    INVOICED,
    LATE_REQUEST,
    OK,
    Outcome,
    mask_emails,
    ticket_lookup,
    ticket_outcome,
)
from portal.shopper.messages import is_default_language, shopper_message
from portal.shopper.pages import RATE_LIMITED, _invoice, _merchant, _render
from portal.shopper.progress import WAITING, progress_state
from tickets.models import Merchant, Ticket
from tickets.privacy import privacy_notice

REMEMBER_COOKIE = "af_datos"
REMEMBER_SALT = "portal.fiscal-data"
REMEMBER_MAX_AGE = 365 * 24 * 3600
PREFILL_KEY = "portal_prefill"
PENDING_KEY = "portal_pending"
CONSTANCIA_KEY = "portal_constancia"  # what the last upload found, shown once on the next page (PRG)
CONFIRMED_KEY = "portal_confirmed"  # the last confirmation done: its twin POST lands on its invoice
FIELDS = ("rfc", "name", "tax_regime", "postal_code", "cfdi_use", "emails", "foreign", "foreign_country",
          "foreign_tax_id")
# What to check when the PAC refused the invoice, by the field its code points at (invoicing.cfdi.receptor).
# What the SAT said, in the shopper's words, above the field to fix.
_FIX_TITLES = {
    "rfc": gettext_lazy("El SAT no encontró ese RFC en su registro."),
    "name": gettext_lazy("El SAT no reconoce ese nombre para tu RFC."),
    "postal_code": gettext_lazy("El SAT no reconoce ese código postal para tu RFC."),
    "tax_regime": gettext_lazy("El SAT no acepta ese régimen fiscal para tu RFC."),
    "cfdi_use": gettext_lazy("El SAT no acepta ese uso de la factura con tu régimen."),
}
_FIX_HINTS = {
    "rfc": gettext_lazy("Revisa tu RFC: debe ser el de tu Constancia de Situación Fiscal."),
    "name": gettext_lazy("Escribe tu nombre o razón social exactamente como aparece en tu Constancia de Situación "
                         "Fiscal, sin el régimen de capital (sin «S.A. DE C.V.»)."),
    "postal_code": gettext_lazy("Escribe el código postal de tu domicilio fiscal tal como aparece en tu Constancia de "
                                "Situación Fiscal."),
    "tax_regime": gettext_lazy("Elige el régimen fiscal que aparece en tu Constancia de Situación Fiscal."),
    "cfdi_use": gettext_lazy("Elige otro uso de la factura que corresponda a tu régimen."),
    "foreign_country": gettext_lazy("Elige tu país de residencia fiscal (no puede ser México)."),
    "foreign_tax_id": gettext_lazy("Escribe tu número de registro tributario tal como lo emite tu país."),
}


def home(request):
    merchants = Merchant.objects.filter(is_active=True).order_by("legal_name")[:20] if request.user.is_staff else []
    return render(request, "portal/home.html", {"merchants": merchants})


# --- Landing and lookup ------------------------------------------------------------------------------


def merchant_landing(request, slug: str):
    merchant = _merchant(slug)
    if request.method == "POST":
        return _lookup(request, merchant)
    form = LookupForm(merchant=merchant)
    return _render(request, "portal/merchant.html", merchant,
                   {"form": form, "cart_count": len(cart.cart_ids(request, merchant))})


def _lookup(request, merchant: Merchant):
    form = LookupForm(request.POST, merchant=merchant)
    context = {"form": form, "cart_count": len(cart.cart_ids(request, merchant))}
    if not ratelimit.allow_lookup(request, merchant.pk):
        return _render(request, "portal/merchant.html", merchant, {**context, "blocked": RATE_LIMITED}, status=429)
    if not form.is_valid():
        return _render(request, "portal/merchant.html", merchant, context, status=400)
    d = form.cleaned_data
    outcome = ticket_lookup(merchant=merchant, number=d["number"], total=d["total"], sold_on=d["sold_on"],
                            branch_code=d.get("branch"))
    return _after_outcome(request, merchant, outcome, context)


def _after_outcome(request, merchant: Merchant, outcome: Outcome, context: dict):
    if outcome.can_invoice:
        conflict = cart.cart_currency_conflict(request, merchant, outcome.ticket)
        if conflict:
            context["outcome"] = Outcome("currency_mismatch", conflict)
            return _render(request, "portal/merchant.html", merchant, context)
        number = outcome.ticket.number
        already = outcome.ticket.pk in cart.cart_ids(request, merchant)
        if not cart.cart_add(request, merchant, outcome.ticket):
            context["outcome"] = Outcome("cart_full", _("Tu factura ya tiene el máximo de tickets; factúralos y "
                                                        "después agrega los demás."))
            return _render(request, "portal/merchant.html", merchant, context)
        # Said once on the cart (a flash): the lookup never jumps there silently.
        if already:
            flash(request, merchant.pk, _("El ticket %(number)s ya estaba en tu factura: no lo agregamos dos veces.")
                  % {"number": number})
        else:
            flash(request, merchant.pk, _("Agregamos el ticket %(number)s a tu factura.") % {"number": number})
        if outcome.kind == LATE_REQUEST:
            flash(request, merchant.pk, _("Ese ticket ya estaba en la factura global del comercio: abajo te "
                                          "explicamos qué pasará al facturarlo."))
        return redirect("shop-cart", slug=merchant.slug)
    if outcome.kind == INVOICED:
        return redirect("shop-invoiced", slug=merchant.slug, code=outcome.ticket.public_code)
    context["outcome"] = Outcome(outcome.kind, shopper_message(outcome.message), outcome.ticket, outcome.invoice)
    return _render(request, "portal/merchant.html", merchant, context)


@require_GET
def ticket_by_code(request, code: str):
    """The receipt's QR link (PUBLIC_BASE_URL/t/<public_code>): opens the ticket directly."""
    ticket = (Ticket.objects.select_related("merchant").filter(public_code=code, merchant__is_active=True).first()
              if len(code) <= 24 else None)
    allowed = ratelimit.hit("lookup_ip", ratelimit.client_ip(request))
    if ticket is None or not allowed:
        # Identical answer for a wrong code and for a blocked client: nothing to learn by probing.
        return render(request, "portal/code_not_found.html", {"blocked": not allowed},
                      status=429 if not allowed else 404)
    merchant = ticket.merchant
    outcome = ticket_outcome(merchant=merchant, ticket=ticket)
    context = {"form": LookupForm(merchant=merchant), "cart_count": len(cart.cart_ids(request, merchant))}
    return _after_outcome(request, merchant, outcome, context)


# --- Cart --------------------------------------------------------------------------------------------


def cart_page(request, slug: str):
    merchant = _merchant(slug)
    if request.method == "POST":
        cart.cart_remove(request, merchant, request.POST.get("ticket", ""))
        return redirect("shop-cart", slug=merchant.slug)
    tickets, dropped = cart.cart_tickets(request, merchant)
    return _render(request, "portal/cart.html", merchant, {
        "tickets": tickets, "dropped": dropped, "total": sum((t.total for t in tickets), 0),
        "form": LookupForm(merchant=merchant), "late": _late(merchant, tickets),
    })


def _late(merchant: Merchant, tickets) -> str:
    """The late-request explanation when some of ``tickets`` are already in a global ("" otherwise)."""
    numbers = [t.number for t in tickets if t.status == Ticket.Status.GLOBALIZED]
    return late_explanation(merchant, numbers) if numbers else ""


# --- Fiscal data ------------------------------------------------------------------------------------


def _remembered(request) -> dict:
    try:
        raw = request.get_signed_cookie(REMEMBER_COOKIE, salt=REMEMBER_SALT, max_age=REMEMBER_MAX_AGE)
        data = json.loads(raw)
    except (KeyError, signing.BadSignature, ValueError):
        return {}
    remembered = {k: str(data[k]) for k in FIELDS if k in data and k != "foreign"}
    return remembered | {"foreign": bool(data.get("foreign")), "remember": True}


def _initial(request) -> dict:
    prefill = request.session.get(PREFILL_KEY)
    if prefill:
        return prefill
    return _remembered(request)


def fiscal_data(request, slug: str):
    merchant = _merchant(slug)
    tickets, dropped = cart.cart_tickets(request, merchant)
    if not tickets:
        return redirect("merchant", slug=merchant.slug)
    context = {"tickets": tickets, "dropped": dropped, "total": sum((t.total for t in tickets), 0),
               "upload": ConstanciaForm(), "matrix": catalog_matrix()}
    if request.method == "POST":
        form = FiscalDataForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            data["emails"] = list(data["emails"])
            request.session[PENDING_KEY] = {
                "merchant": merchant.pk, "data": data, "warnings": [w.message for w in form.warnings],
                "key": secrets.token_urlsafe(16),
            }
            return redirect("shop-confirm", slug=merchant.slug)
        return _render(request, "portal/fiscal.html", merchant, {**context, "form": form}, status=400)
    # What the last Constancia upload found or why it failed: said once, on the page it redirected to.
    found = request.session.pop(CONSTANCIA_KEY, None) or {}
    if found.get("merchant") == merchant.pk:
        context.update(prefilled=found.get("prefilled", False), upload_error=found.get("error", ""))
    form = FiscalDataForm(initial=_initial(request))
    return _render(request, "portal/fiscal.html", merchant, {**context, "form": form})


@require_POST
def constancia_upload(request, slug: str):
    """Read an uploaded Constancia de Situación Fiscal and prefill the form with what was found; then back to the
    form (POST/redirect/GET: reloading it does not send the file again). Optional, never required."""
    merchant = _merchant(slug)
    tickets, _dropped = cart.cart_tickets(request, merchant)
    if not tickets:
        return redirect("merchant", slug=merchant.slug)
    upload = ConstanciaForm(request.POST, request.FILES)
    error = ""
    if not ratelimit.hit("upload_ip", ratelimit.client_ip(request)):
        error = str(RATE_LIMITED)  # kept in the session: a string, in the language of this request
    elif not upload.is_valid():
        error = next(iter(upload.errors.values()))[0]
    else:
        try:
            found = read_constancia(upload.cleaned_data["constancia"].read(2 * 1024 * 1024 + 1))
        except ConstanciaError as exc:
            error = str(exc)
        else:
            regimenes = found.pop("regimenes", [])
            initial = {**_initial(request), **found}
            if regimenes:
                initial.pop("tax_regime", None)  # the one the shopper picks, not one from before
            request.session[PREFILL_KEY] = {**initial, "remember": initial.get("remember", False)}
            if regimenes:
                request.session[CONSTANCIA_KEY] = {"merchant": merchant.pk, "regimenes": regimenes}
                return redirect("shop-constancia-regimen", slug=merchant.slug)
            request.session[CONSTANCIA_KEY] = {"merchant": merchant.pk, "prefilled": True}
            return redirect(reverse("shop-data", args=(merchant.slug,)) + "#fiscal")
    request.session[CONSTANCIA_KEY] = {"merchant": merchant.pk, "error": error}
    return redirect(reverse("shop-data", args=(merchant.slug,)) + "#constancia")


def constancia_regimen(request, slug: str):
    """The Constancia lists several regímenes: the shopper says which one this invoice is for."""
    merchant = _merchant(slug)
    found = request.session.get(CONSTANCIA_KEY) or {}
    regimenes = found.get("regimenes") if found.get("merchant") == merchant.pk else None
    if not regimenes or not cart.cart_ids(request, merchant):
        return redirect("shop-data", slug=merchant.slug)
    form = RegimenChoiceForm(request.POST or None, regimenes=regimenes)
    if request.method == "POST" and form.is_valid():
        prefill = dict(request.session.get(PREFILL_KEY) or {})
        prefill["tax_regime"] = form.cleaned_data["tax_regime"]
        prefill.pop("cfdi_use", None)  # chosen for another régimen, perhaps: the list changes with it
        request.session[PREFILL_KEY] = prefill
        request.session[CONSTANCIA_KEY] = {"merchant": merchant.pk, "prefilled": True}
        return redirect(reverse("shop-data", args=(merchant.slug,)) + "#fiscal")
    return _render(request, "portal/constancia_regimen.html", merchant, {"form": form},
                   status=400 if form.errors else 200)


def confirm(request, slug: str):
    merchant = _merchant(slug)
    pending = request.session.get(PENDING_KEY)
    if request.method == "POST" and (not pending or pending.get("merchant") != merchant.pk):
        # The confirmation is done: this POST is its twin (a double click) or a resubmission.
        confirmed = request.session.get(CONFIRMED_KEY)
        if confirmed and confirmed.get("merchant") == merchant.pk:
            return redirect("shop-invoice", slug=merchant.slug, code=confirmed["invoice"])
    if not pending or pending.get("merchant") != merchant.pk:
        return redirect("shop-data", slug=merchant.slug)
    if request.method == "POST":
        return _confirmed(request, merchant, pending)
    tickets, dropped = cart.cart_tickets(request, merchant)
    if not tickets:
        return redirect("merchant", slug=merchant.slug)
    return _render(request, "portal/confirm.html", merchant, _confirm_context(merchant, tickets, dropped, pending))


def _confirm_context(merchant, tickets, dropped, pending) -> dict:
    data = pending["data"]
    return {"tickets": tickets, "dropped": dropped, "total": sum((t.total for t in tickets), 0),
            "data": data, "pending": pending, "late": _late(merchant, tickets),
            "warnings": [shopper_message(w) for w in pending.get("warnings", ())],
            "regimen": REGIMENES_FISCALES.get(data["tax_regime"]), "uso": USOS_CFDI.get(data["cfdi_use"]),
            "regimen_name": regimen_name(data["tax_regime"], getattr(REGIMENES_FISCALES.get(data["tax_regime"]),
                                                                     "description", "")),
            "uso_name": uso_name(data["cfdi_use"], getattr(USOS_CFDI.get(data["cfdi_use"]), "description", "")),
            "country": country_name(data.get("foreign_country") or "")}


def confirmation_key(request, merchant: Merchant, pending: dict, ticket_ids: list[int]) -> str:
    """The Idempotency-Key of this confirmation: this session, this fiscal data form (its random key), these
    tickets and data. Every POST of it (a double click, a reload) replays the one invoice; another session, or
    a changed cart, is another request."""
    material = json.dumps([request.session.session_key, merchant.pk, pending["key"], sorted(ticket_ids),
                           pending["data"]], sort_keys=True, default=str)
    return "portal:" + hashlib.sha256(material.encode()).hexdigest()


def _confirmed(request, merchant: Merchant, pending: dict):
    # The tickets the shopper saw on this page, as they are in the cart: not re-filtered by status, because a
    # ticket the twin POST just invoiced is this confirmation's own invoice, which the key replays; a ticket
    # that someone else invoiced meanwhile is refused by the service, by name.
    ids = cart.cart_ids(request, merchant)
    if not ids:
        return redirect("merchant", slug=merchant.slug)
    data = pending["data"]
    receptor = ReceptorData(rfc=data["rfc"], name=data["name"], tax_regime=data["tax_regime"],
                            postal_code=data["postal_code"], cfdi_use=data["cfdi_use"], emails=tuple(data["emails"]),
                            foreign_country=data.get("foreign_country", ""),
                            foreign_tax_id=data.get("foreign_tax_id", ""))
    late = Ticket.objects.filter(merchant=merchant, pk__in=ids, status=Ticket.Status.GLOBALIZED).exists()
    # Without a late-request service invoice_issue refuses the globalized ticket by name.
    issue = (late_request_service(merchant) if late else None) or invoice_issue
    try:
        invoice = issue(merchant=merchant, ticket_ids=ids, receptor=receptor, actor="portal",
                        idempotency_key=confirmation_key(request, merchant, pending, ids),
                        language="" if is_default_language() else translation.get_language())
    except InvoicingError as exc:
        tickets, dropped = cart.cart_tickets(request, merchant)
        return _render(request, "portal/confirm.html", merchant,
                       {**_confirm_context(merchant, tickets, dropped, pending), "error": shopper_message(exc.message)},
                       status=exc.status if 400 <= exc.status < 500 else 409)
    cart.cart_clear(request, merchant)
    request.session.pop(PENDING_KEY, None)
    request.session.pop(PREFILL_KEY, None)
    request.session[CONFIRMED_KEY] = {"merchant": merchant.pk, "invoice": invoice.public_code}
    response = redirect("shop-invoice", slug=merchant.slug, code=invoice.public_code)
    if data.get("remember"):
        remembered = {k: data[k] for k in FIELDS if k in data}
        remembered["emails"] = ", ".join(data["emails"])
        response.set_signed_cookie(REMEMBER_COOKIE, json.dumps(remembered), salt=REMEMBER_SALT,
                                   max_age=REMEMBER_MAX_AGE, httponly=True, samesite="Lax",
                                   secure=not settings.DEBUG and request.is_secure())
    else:
        response.delete_cookie(REMEMBER_COOKIE)
    return response


# --- Invoice: progress, downloads, resend, fix ---------------------------------------------------------


def _downloads(invoice: Invoice) -> list[tuple[str, str]]:
    links = []
    for fmt, label in (("pdf", "PDF"), ("xml", "XML"), ("zip", _("ZIP (XML y PDF)"))):
        try:
            links.append((label, reverse("invoice-public-download", args=(invoice.public_code, fmt))))
        except NoReverseMatch:
            return []
    return links


def _fix_context(request, invoice: Invoice, form: ReceptorFixForm | None = None) -> dict:
    """A rejected invoice: which field the rejection points at, and the form to correct it on this page when the
    invoice can be retried with its folio (invoicing/services/receptor_retry.py)."""
    if invoice.status != Invoice.Status.FAILED:
        return {}
    field = error_field(invoice.last_error_code)
    context = {"fix_field": field, "fix_title": _FIX_TITLES.get(field, ""), "fix_hint": _FIX_HINTS.get(field, "")}
    if not field or receptor_retry_blocker(invoice):
        return context
    if form is None:
        data = {"rfc": invoice.receptor_rfc, "name": invoice.receptor_name, "tax_regime": invoice.receptor_tax_regime,
                "postal_code": invoice.receptor_postal_code, "cfdi_use": invoice.receptor_cfdi_use,
                "emails": ", ".join(invoice.receptor_emails)}
        form = ReceptorFixForm(data)
        form.is_valid()
        if field in form.fields:  # the field SAT refused, marked as any refused field is
            form.add_error(field, context["fix_hint"] or context["fix_title"])
            attrs = form.fields[field].widget.attrs
            attrs["aria-invalid"] = "true"
            attrs["aria-describedby"] = " ".join(filter(None, [attrs.get("aria-describedby"),
                                                               f"{form[field].auto_id}-error"]))
    return {**context, "fix_form": form, "matrix": catalog_matrix()}


@never_cache
def invoice_page(request, slug: str, code: str, fix_form: ReceptorFixForm | None = None, status: int = 200):
    merchant = _merchant(slug)
    invoice = _invoice(merchant, code)
    return _render(request, "portal/invoice.html", merchant, {
        "invoice": invoice,
        "done": invoice.status not in WAITING,
        "emails": mask_emails(invoice.receptor_emails),
        "progress": progress_state(invoice),
        "downloads": _downloads(invoice) if invoice.status in LEGAL else [],  # a cancelled CFDI too
        "failure_message": _failure_message(invoice),
        "corrected": request.GET.get("corregida") == "1",
        **_fix_context(request, invoice, fix_form),
        **correction_context(invoice),
    }, status=status)


def _failure_message(invoice: Invoice) -> str:
    """Why the invoice failed: the PAC's or the rules' words in Spanish; in English, the rule's message when it
    is one of ours, else the code (the hint below says what to change)."""
    message = invoice.last_error_message or ""
    if not message or is_default_language():
        return message
    translated = shopper_message(message)
    if translated != message:
        return translated
    return _("El servicio de timbrado rechazó la factura (%(code)s).") % {"code": invoice.last_error_code or "?"}


@never_cache
@require_GET
def invoice_status(request, slug: str, code: str):
    invoice = get_object_or_404(Invoice.objects.select_related("merchant").defer("sealed_xml", "stamped_xml"),
                                merchant__slug=slug, merchant__is_active=True, public_code=code,
                                kind=Invoice.Kind.INGRESO)
    progress = progress_state(invoice)
    return JsonResponse({"status": invoice.status, "done": invoice.status not in WAITING, **progress})


@require_POST
def invoice_retry(request, slug: str, code: str):
    """The PAC refused the invoice for the receptor's data: the corrected data, and the same invoice (same
    folio) goes back to the queue. On a refusal, the same page with the form and why."""
    merchant = _merchant(slug)
    invoice = _invoice(merchant, code)
    if invoice.status != Invoice.Status.FAILED:
        return redirect("shop-invoice", slug=merchant.slug, code=invoice.public_code)
    form = ReceptorFixForm(request.POST)
    if not ratelimit.hit("correction_ip", ratelimit.client_ip(request)):
        form.is_valid()
        form.add_error(None, RATE_LIMITED)
        return invoice_page(request, slug, code, fix_form=form, status=429)
    if not form.is_valid():
        return invoice_page(request, slug, code, fix_form=form, status=400)
    data = form.cleaned_data
    receptor = ReceptorData(rfc=data["rfc"], name=data["name"], tax_regime=data["tax_regime"],
                            postal_code=data["postal_code"], cfdi_use=data["cfdi_use"], emails=tuple(data["emails"]))
    try:
        invoice_receptor_retry(merchant=merchant, invoice_id=invoice.pk, receptor=receptor, actor="portal")
    except InvoicingError as exc:
        field = exc.details.get("field") if isinstance(exc.details, dict) else None
        form.add_error(field if field in form.fields else None, shopper_message(exc.message))
        return invoice_page(request, slug, code, fix_form=form, status=exc.status if 400 <= exc.status < 500 else 409)
    flash(request, merchant.pk, _("Corregimos tus datos y volvimos a enviar tu factura a timbrar, con el mismo "
                                  "folio."))
    return redirect("shop-invoice", slug=merchant.slug, code=invoice.public_code)


@require_POST
def invoice_resend(request, slug: str, code: str):
    merchant = _merchant(slug)
    invoice = _invoice(merchant, code)
    return _resend(request, merchant, invoice, reverse("shop-invoice", args=(merchant.slug, invoice.public_code)))


def _resend(request, merchant: Merchant, invoice: Invoice | None, back: str):
    """Send the stamped invoice again to the email(s) on file (never to an address typed here)."""
    if invoice is None or invoice.status != Invoice.Status.STAMPED:
        raise Http404
    if not ratelimit.hit("resend_ip", ratelimit.client_ip(request)):
        return _render(request, "portal/message.html", merchant, {"title": _("Espera un momento"),
                                                                  "message": RATE_LIMITED}, status=429)
    invoice_email_resend_enqueue(invoice=invoice, actor="portal")  # queued: the PDF may take long to render
    # Said once (a flash), not on every reload of the page it goes back to.
    flash(request, merchant.pk, _("Listo: te la reenviamos a %(emails)s.")
          % {"emails": ", ".join(mask_emails(invoice.receptor_emails))})
    return redirect(back)


@require_POST
def invoice_fix(request, slug: str, code: str):
    """After a failed stamp: put the released tickets back in the cart and the typed data back in the form."""
    merchant = _merchant(slug)
    invoice = _invoice(merchant, code)
    if invoice.status != Invoice.Status.FAILED:
        return redirect("shop-invoice", slug=merchant.slug, code=invoice.public_code)
    ids = list(invoice.ticket_links.filter(ticket__status=Ticket.Status.OPEN).values_list("ticket_id", flat=True))
    cart.cart_set(request, merchant, ids + cart.cart_ids(request, merchant))
    request.session[PREFILL_KEY] = {
        "rfc": invoice.receptor_rfc, "name": invoice.receptor_name, "tax_regime": invoice.receptor_tax_regime,
        "postal_code": invoice.receptor_postal_code, "cfdi_use": invoice.receptor_cfdi_use,
        "emails": ", ".join(invoice.receptor_emails), "remember": bool(_remembered(request)),
    }
    return redirect("shop-data", slug=merchant.slug)


# --- A ticket that was already invoiced --------------------------------------------------------------


def invoiced_ticket(request, slug: str, code: str):
    """Already invoiced: the files after re-entering the invoice's RFC, or a resend to the email on file."""
    merchant = _merchant(slug)
    ticket = get_object_or_404(Ticket, merchant=merchant, public_code=code)
    outcome = ticket_outcome(merchant=merchant, ticket=ticket)
    if outcome.kind != INVOICED:
        if outcome.kind == OK:
            return redirect("merchant", slug=merchant.slug)
        return _render(request, "portal/message.html", merchant, {"title": _("Tu ticket"),
                                                                  "message": shopper_message(outcome.message)})
    invoice = outcome.invoice
    form = RfcCheckForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not ratelimit.hit("rfc_ip", ratelimit.client_ip(request)):
            form.is_valid()
            form.add_error(None, RATE_LIMITED)
            status = 429
        elif form.is_valid():
            if invoice is not None and secrets.compare_digest(form.cleaned_data["rfc"], invoice.receptor_rfc):
                return redirect("shop-invoice", slug=merchant.slug, code=invoice.public_code)
            form.add_error("rfc", _("Ese RFC no es el de la factura de este ticket. Escribe el RFC con el que "
                                    "facturaste, o pide que te la reenviemos al correo registrado."))
            status = 400
        else:
            status = 400
    return _render(request, "portal/invoiced.html", merchant, {
        "ticket": ticket, "invoice": invoice, "form": form,
        "emails": mask_emails(invoice.receptor_emails if invoice else []),
        "can_resend": invoice is not None and invoice.status == Invoice.Status.STAMPED and invoice.receptor_emails,
    }, status=status)


@require_POST
def invoiced_resend(request, slug: str, code: str):
    """Resend from the already-invoiced page: addressed by the ticket's code, so the invoice's code (which
    opens the downloads) is never shown to someone who has not re-entered the RFC."""
    merchant = _merchant(slug)
    ticket = get_object_or_404(Ticket, merchant=merchant, public_code=code, status=Ticket.Status.INVOICED)
    outcome = ticket_outcome(merchant=merchant, ticket=ticket)
    return _resend(request, merchant, outcome.invoice, reverse("shop-invoiced", args=(merchant.slug, code)))


# --- Aviso de privacidad --------------------------------------------------------------------------------


@require_GET
def privacy(request, slug: str):
    """The merchant's aviso de privacidad (its own text, or the default built from its data)."""
    merchant = _merchant(slug)
    return _render(request, "portal/privacy.html", merchant, {"notice": privacy_notice(merchant)})
