"""A debug 500 page (DEBUG=1, `make run`'s default) never shows connection URLs or their passwords."""

import pytest
from django.test import Client
from django.urls import path

from portal.debug import SafeReporterFilter, mask_url_credentials


def _boom(request):
    dsn = f"postgres://worker:{LOCAL_PASSWORD}@db.internal/app"  # a frame's local variable
    raise RuntimeError(f"cannot reach {dsn.split('@')[1]}")


class _Urls:
    urlpatterns = [path("boom", _boom)]


# The page quotes the source around the failing line: the values below stay out of its reach.
SECRETS = {
    "DATABASE_URL": "postgres://app:s3cr3t-db-pw@db.internal:5432/app",
    "REDIS_URL": "redis://:r3d1s-pw@cache.internal:6379/0",
    "CACHE_URL": "redis://default:c4che-pw@cache.internal:6379/1",
    "EMAIL_HOST_PASSWORD": "m41l-pw",
    "ERP_SYNC_URL": "https://erp:3rp-pw@erp.example.com/api",  # any other URL with a password in it
}
LOCAL_PASSWORD = "l0cal-pw"


@pytest.fixture
def debug_site(settings):
    settings.DEBUG = True
    settings.ROOT_URLCONF = _Urls
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": SECRETS["REDIS_URL"]}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "redis://:l0cati0n-pw@cache.internal:6379/2"}}
    return settings


def test_debug_500_page_masks_connection_urls_and_passwords(debug_site, db):
    # runserver copies the environment into request.META: the URLs are there too.
    response = Client(raise_request_exception=False).get("/boom", DATABASE_URL=SECRETS["DATABASE_URL"],
                                                         REDIS_URL=SECRETS["REDIS_URL"])
    assert response.status_code == 500
    html = response.content.decode()
    assert "RuntimeError" in html and "DATABASE_URL" in html  # still a useful debug page
    for secret in ("s3cr3t-db-pw", "r3d1s-pw", "c4che-pw", "m41l-pw", "3rp-pw", "l0cal-pw", "l0cati0n-pw",
                   "db.internal:5432", "cache.internal:6379"):
        assert secret not in html, secret


def test_url_credentials_are_masked_wherever_they_appear():
    assert mask_url_credentials("a redis://u:pw@h:1/0 and https://x:y@z/p", "***") == \
        "a redis://u:***@h:1/0 and https://x:***@z/p"
    assert mask_url_credentials("https://example.com/a@b", "***") == "https://example.com/a@b"
    cleansed = SafeReporterFilter().cleanse_setting("SOMETHING", {"nested": ["amqp://guest:gu3st@mq/"]})
    assert "gu3st" not in str(cleansed)
