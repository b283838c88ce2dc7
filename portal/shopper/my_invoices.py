""""Mis facturas": a shopper who lost the emails gets her invoices at one merchant back with a one-time link.

She types her RFC and an email address that received one of her invoices at this merchant. The page answers
the same, and does the same work (one row, one task on the deliver queue), whether the pair exists or not: the
task checks the pair in the worker and emails a link only when it matches, so neither the answer nor its timing
says whether someone invoiced there. The link is random, single use, expires after MY_INVOICES_LINK_MINUTES;
only its SHA-256 is stored. Opening it (a POST from the page the link shows, so a mail scanner that follows
links does not use it up) scopes this browser's session to that RFC at that merchant for
MY_INVOICES_SESSION_MINUTES; the list and every download are checked against that scope.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets

from django import forms
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from infra.queues import DELIVER, enqueue_on_commit
from invoicing.cfdi.rfc import normalize_rfc
from invoicing.downloads import FORMATS, document_response, pdf_pending_response
from invoicing.lifecycle import LEGAL
from invoicing.models import Invoice
from invoicing.services.documents import PdfNotReady, is_downloadable
from portal import ratelimit
from portal.forms import AccessibleForm
from portal.models import InvoiceAccessRequest
from portal.shopper.pages import RATE_LIMITED, _merchant, _render
from tickets.models import Merchant

log = logging.getLogger(__name__)

SESSION_KEY = "portal_my_invoices"
TASK = "portal.tasks.send_my_invoices_link"
LIST_LIMIT = 200  # the newest; a shopper with more asks the merchant


def link_minutes() -> int:
    return getattr(settings, "MY_INVOICES_LINK_MINUTES", 30)


def session_minutes() -> int:
    return getattr(settings, "MY_INVOICES_SESSION_MINUTES", 30)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- Services ------------------------------------------------------------------------------------------


def access_request(*, merchant: Merchant, rfc: str, email: str, language: str = "") -> None:
    """Record the request and queue its check; the same work whatever the pair (see the module's doc)."""
    with transaction.atomic():
        row = InvoiceAccessRequest.objects.create(merchant=merchant, rfc=rfc[:13], email=email[:254],
                                                  language=language[:8])
        enqueue_on_commit(TASK, row.pk, queue=DELIVER, group="email")


def _matches(merchant_id: int, rfc: str, email: str) -> bool:
    email = email.strip().lower()
    received = (Invoice.objects.filter(merchant_id=merchant_id, receptor_rfc=rfc, kind=Invoice.Kind.INGRESO,
                                       status__in=LEGAL)
                .order_by("-pk").values_list("receptor_emails", flat=True)[:LIST_LIMIT])
    return any(email in (str(e).strip().lower() for e in emails or ()) for emails in received)


def access_link_send(*, request_id: int) -> bool:
    """The task: email a fresh link if the RFC and the email match an invoice of the merchant; else forget the
    request. Returns whether a link went out. The raw token exists only here and in the email."""
    row = InvoiceAccessRequest.objects.select_related("merchant").filter(pk=request_id).first()
    if row is None or row.token_hash or not row.email:
        return False  # already handled (a retried task)
    _forget_old()
    if not _matches(row.merchant_id, row.rfc, row.email):
        row.delete()
        return False
    token = secrets.token_urlsafe(32)
    row.token_hash = token_hash(token)
    row.expires_at = timezone.now() + dt.timedelta(minutes=link_minutes())
    email, row.email = row.email, ""  # the address is not needed once the link is on its way
    merchant = row.merchant
    url = settings.PUBLIC_BASE_URL + reverse("shop-my-invoices-open", args=(merchant.slug, token))
    if row.language and row.language != settings.LANGUAGE_CODE:
        url += f"?lang={row.language}"
    with translation.override(row.language or settings.LANGUAGE_CODE):
        context = {"merchant": merchant, "url": url, "minutes": link_minutes(), "rfc": row.rfc}
        subject = _("Tus facturas en %(merchant)s") % {"merchant": merchant.legal_name}
        body = render_to_string("email/my_invoices_link.txt", context)
    # Stored before sending: a link that went out always opens; a send that fails leaves a link nobody has.
    row.save(update_fields=["token_hash", "expires_at", "email"])
    EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[email],
                 reply_to=[merchant.contact_email] if merchant.contact_email else None).send(fail_silently=False)
    return True


def _forget_old() -> None:
    """Requests past their link's life (and a day's grace) are of no use to anyone."""
    cutoff = timezone.now() - dt.timedelta(minutes=link_minutes()) - dt.timedelta(days=1)
    InvoiceAccessRequest.objects.filter(created_at__lt=cutoff).delete()


def access_link_valid(*, merchant: Merchant, token: str) -> bool:
    return _usable(merchant, token).exists()


def _usable(merchant: Merchant, token: str):
    return InvoiceAccessRequest.objects.filter(merchant=merchant, token_hash=token_hash(token), used_at__isnull=True,
                                               expires_at__gt=timezone.now())


def access_link_use(*, merchant: Merchant, token: str) -> str | None:
    """Use the link up (once: a guarded update); its RFC, or None when it is unknown, used, expired or another
    merchant's."""
    if not token or len(token) > 100:
        return None
    rows = _usable(merchant, token)
    rfc = rows.values_list("rfc", flat=True).first()
    if rfc is None or rows.update(used_at=timezone.now()) != 1:
        return None
    return rfc


def my_invoices(*, merchant: Merchant, rfc: str) -> list[Invoice]:
    return list(Invoice.objects.filter(merchant=merchant, receptor_rfc=rfc, kind=Invoice.Kind.INGRESO,
                                       status__in=LEGAL, uuid__isnull=False)
                .only("public_code", "serie", "folio", "uuid", "total", "currency", "status", "stamped_at",
                      "created_at", "merchant_id")
                .order_by("-stamped_at", "-pk")[:LIST_LIMIT])


# --- Session scope --------------------------------------------------------------------------------------


def scope_open(request, merchant: Merchant, rfc: str) -> None:
    until = timezone.now() + dt.timedelta(minutes=session_minutes())
    scopes = dict(request.session.get(SESSION_KEY) or {})
    scopes[str(merchant.pk)] = {"rfc": rfc, "until": until.timestamp()}
    request.session.cycle_key()  # a session id someone planted before the link was opened is not the one scoped
    request.session[SESSION_KEY] = scopes


def scope_rfc(request, merchant: Merchant) -> str | None:
    scope = (request.session.get(SESSION_KEY) or {}).get(str(merchant.pk))
    if not scope or scope.get("until", 0) < timezone.now().timestamp():
        return None
    return scope.get("rfc")


# --- Pages -----------------------------------------------------------------------------------------------


class MyInvoicesForm(AccessibleForm):
    rfc = forms.CharField(label=gettext_lazy("RFC"), max_length=20,
                          widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters",
                                                        "spellcheck": "false"}),
                          help_text=gettext_lazy("El RFC con el que facturaste."),
                          error_messages={"required": gettext_lazy("Escribe tu RFC.")})
    email = forms.EmailField(label=gettext_lazy("Correo electrónico"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}),
                             help_text=gettext_lazy("Uno al que te llegó alguna factura de este comercio."),
                             error_messages={"required": gettext_lazy("Escribe tu correo electrónico."),
                                             "invalid": gettext_lazy("Escribe un correo válido, por ejemplo "
                                                                     "nombre@ejemplo.com.")})

    def clean_rfc(self) -> str:
        rfc = normalize_rfc(self.cleaned_data["rfc"])
        if not 12 <= len(rfc) <= 13:
            raise forms.ValidationError(_("Un RFC tiene 12 caracteres (empresa) o 13 (persona física)."))
        return rfc


@never_cache
def my_invoices_request(request, slug: str):
    merchant = _merchant(slug)
    form = MyInvoicesForm(request.POST or None)
    context = {"form": form, "sent": request.GET.get("enviado") == "1", "minutes": link_minutes()}
    if request.method != "POST":
        return _render(request, "portal/my_invoices.html", merchant, context)
    ip = ratelimit.client_ip(request)
    if not ratelimit.hit("my_invoices_ip", ip):
        form.is_valid()
        form.add_error(None, RATE_LIMITED)
        return _render(request, "portal/my_invoices.html", merchant, context, status=429)
    if not form.is_valid():
        return _render(request, "portal/my_invoices.html", merchant, context, status=400)
    rfc, email = form.cleaned_data["rfc"], form.cleaned_data["email"]
    # Per RFC too: nobody fills someone's inbox with links by changing addresses.
    if not ratelimit.hit("my_invoices_rfc", f"{merchant.pk}:{rfc}"):
        form.add_error(None, RATE_LIMITED)
        return _render(request, "portal/my_invoices.html", merchant, context, status=429)
    access_request(merchant=merchant, rfc=rfc, email=email, language=translation.get_language() or "")
    return redirect(reverse("shop-my-invoices", args=(merchant.slug,)) + "?enviado=1")


@never_cache
def my_invoices_open(request, slug: str, token: str):
    """GET shows a button (mail scanners that follow links must not use it up); POST uses the link."""
    merchant = _merchant(slug)
    if request.method == "POST":
        rfc = access_link_use(merchant=merchant, token=token)
        if rfc is not None:
            scope_open(request, merchant, rfc)
            return redirect("shop-my-invoices-list", slug=merchant.slug)
        valid = False
    else:
        valid = access_link_valid(merchant=merchant, token=token) if len(token) <= 100 else False
    return _render(request, "portal/my_invoices_open.html", merchant, {"valid": valid},
                  status=200 if valid else 410)


@never_cache
def my_invoices_list(request, slug: str):
    merchant = _merchant(slug)
    rfc = scope_rfc(request, merchant)
    if rfc is None:
        return redirect("shop-my-invoices", slug=merchant.slug)
    invoices = my_invoices(merchant=merchant, rfc=rfc)
    return _render(request, "portal/my_invoices_list.html", merchant, {"rfc": rfc, "invoices": invoices})


@never_cache
def my_invoices_download(request, slug: str, code: str, fmt: str):
    """A download from the list: only an invoice of the RFC this session was opened for, at this merchant."""
    merchant = _merchant(slug)
    rfc = scope_rfc(request, merchant)
    if rfc is None or fmt not in FORMATS:
        raise Http404
    invoice = Invoice.objects.filter(merchant=merchant, public_code=code, receptor_rfc=rfc,
                                     kind=Invoice.Kind.INGRESO).first()
    if invoice is None or not is_downloadable(invoice):
        raise Http404
    try:
        return document_response(invoice, fmt)
    except PdfNotReady as exc:
        return pdf_pending_response(request, invoice, exc)
