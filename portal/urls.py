from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from infra.api.errors import api_not_found
from portal import health, language, media, metrics, views

# Branded, Spanish error pages for the portal and the back office (portal/errors.py), with DEBUG on or off.
handler400 = "portal.errors.bad_request"
handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.not_found"
handler500 = "portal.errors.server_error"

admin.site.site_header = "Autofactura · administración"
admin.site.site_title = "Autofactura"
admin.site.index_title = "Back office"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    # Invited staff choose their password here (tickets/staff.py); before admin/, whose catch-all would answer.
    path("admin/clave/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("admin/clave/lista/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("admin/", admin.site.urls),
    # invoicing's first: its /tickets/{id}/refunds would otherwise meet the tickets API's catch-all 404.
    path("api/v1/", include("invoicing.api.urls")),
    path("api/v1/", include("tickets.api.urls")),
    path("f/", include("invoicing.public_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    re_path(r"^api(?:/|$)", api_not_found),  # any other /api/ URL answers the JSON error envelope, not an HTML page
    path("idioma/", language.language_switch, name="language-switch"),
    path("", views.home, name="home"),
]

if settings.MEDIA_URL.startswith("/"):  # local media: logos only, by content (portal/media.py)
    urlpatterns.append(path(f"{settings.MEDIA_URL.strip('/')}/logos/<path:name>", media.merchant_logo,
                            name="merchant-logo"))

# Shoppers' pages (/t/<code> from the receipt's QR, /<slug>/carrito/, …): portal/shopper/urls.py.
urlpatterns.append(path("", include("portal.shopper.urls")))

# Merchant slugs are the last, catch-all pattern: every fixed prefix above wins.
urlpatterns.append(path("<slug:slug>/", views.merchant_landing, name="merchant"))
