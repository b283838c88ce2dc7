"""The shoppers' language: Spanish (es-MX) unless the shopper switches to English.

Only an explicit choice counts: the switch on every shopper page (``language_switch``, a POST that stores a
cookie) or ``?lang=en`` in a link we send (the invoice email of a shopper who chose English). A browser's
Accept-Language does not: a Mexican shopper on a phone set to English still gets the Spanish site she expects.
The back office and the API are always Spanish (merchants read Spanish; the API's messages are part of its
contract).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpResponseRedirect
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

COOKIE_MAX_AGE = 365 * 24 * 3600
_SPANISH_ONLY = ("/admin/", "/api/", "/api")


def supported(code: str | None) -> str | None:
    """``code`` if it is one of settings.LANGUAGES (case-insensitive), else None."""
    if not code:
        return None
    code = str(code).lower()
    return code if any(code == c for c, _ in settings.LANGUAGES) else None


def shopper_language(request) -> str:
    if request.path.startswith(_SPANISH_ONLY):
        return settings.LANGUAGE_CODE
    return (supported(request.GET.get("lang")) or supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
            or settings.LANGUAGE_CODE)


def _remember(response, language: str) -> None:
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=COOKIE_MAX_AGE, samesite="Lax",
                        secure=settings.SESSION_COOKIE_SECURE, httponly=True)


class ShopperLanguageMiddleware:
    """Activates the request's language for the view, its templates and error pages, and only for them: the
    next request (or a task run in the same thread by a test) starts from the default again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = shopper_language(request)
        request.LANGUAGE_CODE = language
        with translation.override(language):
            response = self.get_response(request)
        if supported(request.GET.get("lang")) == language and request.COOKIES.get(
                settings.LANGUAGE_COOKIE_NAME) != language and not request.path.startswith(_SPANISH_ONLY):
            _remember(response, language)
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ("Cookie",))
        return response


@csrf_exempt  # a language preference is no secret to forge, and the error pages (no CSRF token) carry the switch
@require_POST
def language_switch(request):
    """The switch's form: ``language`` and ``next`` (the page it was on); back there in that language."""
    language = supported(request.POST.get("language")) or settings.LANGUAGE_CODE
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()) or target.startswith(_SPANISH_ONLY):
        target = "/"
    parts = urlsplit(target)  # a ?lang= left in the page's address would switch it right back
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"])
    response = HttpResponseRedirect(urlunsplit(("", "", parts.path, query, parts.fragment)))
    _remember(response, language)
    return response
