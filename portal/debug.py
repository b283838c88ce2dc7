"""What debug pages and error reports may show: Django's filter, plus connection URLs.

Django hides settings whose name says KEY, SECRET, PASS, TOKEN…, but ``DATABASE_URL`` and ``REDIS_URL`` carry a
password inside a value whose name says nothing of the sort, and they show up three times on a debug page: as
settings, inside ``DATABASES``/``CACHES``/``Q_CLUSTER``, and in ``request.META`` (runserver copies the
environment there). Those names are hidden whole, and any other value holding ``scheme://user:password@`` has the
password masked, wherever it appears (settings, META, a frame's local variables).
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

_CREDENTIALS_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)


def mask_url_credentials(text: str, substitute: str) -> str:
    # str(): lazy strings (django-axes keeps some settings as lazy objects) pass isinstance(…, str) but not re.
    return _CREDENTIALS_IN_URL.sub(lambda m: f"{m['head']}{substitute}@", str(text))


class SafeReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern
        + "|DATABASE_URL|REDIS|CACHE_URL|BROKER|LOCATION|DSN|CONNECTION_STRING",
        flags=re.IGNORECASE,
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):  # lazy strings too (django-axes' settings): masked as their text
            return mask_url_credentials(str(cleansed), self.cleansed_substitute)
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, mask_url_credentials(str(value), self.cleansed_substitute) if isinstance(value, str) else value)
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]
