"""Branded error pages (400, 403, 404, 500 and CSRF) for the shoppers' portal and the back office, DEBUG on or off.

The pages are self-contained (inline CSS, no static files, no database): a 500 may come from a database that is
down or a static manifest that is missing, and its page must still render. A 400, 403 or 404 under a merchant's
portal (/<slug>/…) adds that merchant's contact and links (one query, left out when it fails); a 500 never asks.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from tickets.models import Merchant

log = logging.getLogger(__name__)

# In the shopper's language on the shoppers' pages (portal/language.py); the back office's are always Spanish.
PAGES = {
    400: (_("Solicitud no válida"), _("No pudimos entender la solicitud. Revisa la dirección o vuelve a intentarlo.")),
    403: (_("Sin permiso"), _("No tienes permiso para ver esta página. Si crees que es un error, pide acceso a quien "
                              "administra tu comercio.")),
    404: (_("Página no encontrada"), _("La página que buscas no existe o ya no está disponible.")),
    500: (_("Algo salió mal"), _("Tuvimos un problema al atender tu solicitud. Ya quedó registrado; intenta de nuevo "
                                 "en unos minutos.")),
}
CSRF_TITLE = _("No pudimos enviar el formulario")
CSRF_MESSAGE = _("Tu sesión caducó o el formulario se envió desde otra página. Vuelve a la página anterior, "
                 "recárgala e intenta de nuevo.")


# First path segments that are not a merchant's portal (tickets.models.RESERVED_SLUGS, as strings: this module must
# not need the database or the models to render).
_NOT_MERCHANT = {"t", "f", "admin", "api", "healthz", "static", "media", "idioma", ""}


def _merchant_contact(request) -> dict | None:
    """The merchant whose portal the failing URL is under (/<slug>/…), for its contact on the page; None when the
    URL is not a merchant's, or the database cannot say."""
    slug = (request.path.strip("/").split("/") or [""])[0] if request is not None else ""
    if slug in _NOT_MERCHANT or len(slug) > 60:
        return None
    try:
        merchant = Merchant.objects.filter(slug=slug, is_active=True).only(
            "slug", "legal_name", "customer_email", "customer_phone").first()
    except Exception:  # noqa: BLE001 - the error page must render without its extras
        return None
    if merchant is None:
        return None
    return {"name": merchant.legal_name, "email": merchant.customer_email, "phone": merchant.customer_phone,
            "home": reverse("merchant", args=(merchant.slug,)),
            "privacy": reverse("shop-privacy", args=(merchant.slug,))}


def _page(request, status: int, *, title: str | None = None, message: str | None = None) -> HttpResponse:
    default_title, default_message = PAGES[status]
    back_office = bool(request is not None and request.path.startswith("/admin/"))
    # Not on a 500: the database may be what failed, and that page must come back at once.
    merchant = None if back_office or status >= 500 else _merchant_contact(request)
    context = {"status": status, "title": title or default_title, "message": message or default_message,
               "back_office": back_office, "home": merchant["home"] if merchant else "/admin/" if back_office else "/",
               "merchant": merchant,
               "path": request.get_full_path() if request is not None and request.method == "GET" else "/"}
    try:
        body = render_to_string("errors/page.html", context)
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        log.exception("error page %s could not be rendered", status)
        body = f"<!doctype html><html lang='es-MX'><title>{context['title']}</title><h1>{context['title']}</h1>" \
               f"<p>{context['message']}</p></html>"
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def bad_request(request, exception=None):
    return _page(request, 400)


def permission_denied(request, exception=None):
    return _page(request, 403)


def not_found(request, exception=None):
    return _page(request, 404)


def server_error(request):
    return _page(request, 500)


def csrf_failure(request, reason=""):
    return _page(request, 403, title=CSRF_TITLE, message=CSRF_MESSAGE)
