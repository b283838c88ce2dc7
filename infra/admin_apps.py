"""The admin app with the project's site: every model admin merchant-scoped or superuser-only.

Named in INSTALLED_APPS in place of ``django.contrib.admin``; kept apart from ``infra.admin_scope`` because an
AppConfig is imported before the models are ready.
"""

from django.contrib.admin.apps import AdminConfig


class ScopedAdminConfig(AdminConfig):
    default_site = "infra.admin_scope.MerchantAdminSite"
