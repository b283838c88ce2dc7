"""Merchant API keys: authentication, scope permissions and per-key throttling, for every API of the project.

A key is ``prefix + secret`` (``afk_`` + 8 characters, then 40): the prefix is stored in clear to find the
row, only the SHA-256 of the whole key is stored, and it is compared in constant time. Use it in another app::

    from infra.api.auth import HasScope
    class InvoiceList(APIView):
        permission_classes = [HasScope("invoices")]

Authentication and throttling are the REST_FRAMEWORK defaults (settings), so ``request.auth`` is the
``ApiKey`` (with ``merchant`` loaded) and ``request.user`` an ``ApiClient``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math

from django.apps import apps
from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from infra import ratelimit
from infra.logcontext import bind

KEY_PREFIX_TAG = "afk_"
PREFIX_LENGTH = len(KEY_PREFIX_TAG) + 8
LAST_USED_EVERY = dt.timedelta(minutes=1)


def api_key_model():
    """The model keys are looked up in (``settings.API_KEY_MODEL``, the tickets app's ``ApiKey``): it has ``prefix``,
    ``key_hash``, ``scopes``, ``merchant``, ``revoked_at`` and ``last_used_at``. Named by setting, as Django names
    the user model, because this package sits below the apps and imports none of them."""
    return apps.get_model(settings.API_KEY_MODEL)


def hash_key(plain_key: str) -> str:
    return hashlib.sha256(plain_key.encode()).hexdigest()


class ApiClient:
    """``request.user`` for API calls: the key's merchant, never a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.merchant = api_key.merchant
        self.pk = None

    def __str__(self):
        return f"api:{self.api_key.prefix}"


def _key_from_request(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        kind, _, value = header.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise exceptions.AuthenticationFailed(
                "Usa el encabezado «Authorization: Bearer <llave>» o «X-Access-Token: <llave>»."
            )
        return value.strip()
    token = request.META.get("HTTP_X_ACCESS_TOKEN", "").strip()
    return token or None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        plain = _key_from_request(request)
        if plain is None:
            return None
        invalid = exceptions.AuthenticationFailed("La llave de API no es válida.", code="invalid_api_key")
        if len(plain) <= PREFIX_LENGTH or len(plain) > 200 or not plain.startswith(KEY_PREFIX_TAG):
            raise invalid
        key = api_key_model().objects.select_related("merchant").filter(prefix=plain[:PREFIX_LENGTH]).first()
        if key is None or not hmac.compare_digest(key.key_hash, hash_key(plain)):
            raise invalid
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("La llave de API fue revocada.", code="revoked_api_key")
        if not key.merchant.is_active:
            raise exceptions.AuthenticationFailed("El comercio está inactivo.", code="inactive_merchant")
        _touch(key)
        bind(merchant_id=key.merchant_id)  # on every log line of this request
        return ApiClient(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def _touch(key) -> None:
    """Record use at most once a minute per key: one cheap UPDATE, never on every request."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        api_key_model().objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def HasScope(scope: str) -> type[BasePermission]:  # noqa: N802 - reads like a class in permission_classes
    """Permission class: an API key of an active merchant, holding ``scope`` (tickets, invoices, webhooks)."""

    class _HasScope(BasePermission):
        message = f"La llave de API no tiene el permiso «{scope}»."
        code = "missing_scope"

        def has_permission(self, request, view):
            key = request.auth
            if not isinstance(key, api_key_model()):
                raise exceptions.NotAuthenticated(
                    "Falta la llave de API: envía «Authorization: Bearer <llave>»."
                )
            return scope in (key.scopes or [])

    _HasScope.__name__ = f"HasScope_{scope}"
    _HasScope.scope = scope
    return _HasScope


class ApiKeyRateThrottle(BaseThrottle):
    """Fixed-window counter per key prefix (infra.ratelimit: shared through Redis when it is configured, per
    process while it is away). The rate comes from settings.API_RATE_LIMIT, e.g. "6000/min".
    """

    def __init__(self):
        self._wait = 0.0

    @staticmethod
    def parse_rate(rate: str) -> tuple[int, int]:
        num, _, period = rate.partition("/")
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[0]]
        return int(num), seconds

    def allow_request(self, request, view):
        key = getattr(request, "auth", None)
        rate = getattr(settings, "API_RATE_LIMIT", "")
        if not isinstance(key, api_key_model()) or not rate:
            return True
        limit, period = self.parse_rate(rate)
        verdict = ratelimit.hit("api", key.prefix, limit=limit, window=period)
        self._wait = verdict.retry_after
        # Every answer tells the client where it stands (rate_limit_headers, added by portal's middleware).
        request._request.api_rate_limit = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - verdict.count)),
            "X-RateLimit-Reset": str(max(0, math.ceil(verdict.retry_after))),
        }
        return verdict.allowed

    def wait(self):
        return max(1, math.ceil(self._wait))


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The two accepted headers in the OpenAPI schema, as alternatives: either one alone authenticates."""

    target_class = ApiKeyAuthentication
    name = ["BearerApiKey", "AccessToken"]

    def get_security_requirement(self, auto_schema):
        # A list of requirements is OR (one dict of both would be AND). OpenAPI 3.1 lets a requirement name the
        # roles it needs: the key's scope (tickets, invoices, webhooks) that the view's HasScope asks for.
        scopes = [p.scope for p in getattr(auto_schema.view, "permission_classes", [])
                  if hasattr(p, "scope")]
        return [{name: scopes} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer",
             "description": "La llave de API del comercio en «Authorization: Bearer afk_…». Se crea en la "
                            "administración (Llaves de API) y se muestra una sola vez."},
            {"type": "apiKey", "in": "header", "name": "X-Access-Token",
             "description": "La misma llave en «X-Access-Token: afk_…», para puntos de venta que no pueden enviar "
                            "Authorization. Basta uno de los dos; si llegan ambos, cuenta Authorization."},
        ]
