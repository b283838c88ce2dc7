import datetime as dt
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from infra.api.auth import hash_key
from tickets.models import ApiKey
from tickets.services import api_key_create, api_key_revoke


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def test_key_is_stored_hashed_and_looked_up_by_prefix(api_key):
    key, plain = api_key
    assert plain.startswith(key.prefix) and key.key_hash == hash_key(plain)
    assert plain not in str(ApiKey.objects.filter(pk=key.pk).values().get())


def test_missing_key_is_401_with_envelope(db):
    response = APIClient().get("/api/v1/tickets")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer afk_nope1234secret", "Bearer x", "Basic abc", "Bearer "])
def test_wrong_key_is_401(api_key, header):
    response = APIClient().get("/api/v1/tickets", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("invalid_api_key", "not_authenticated")


def test_key_with_right_prefix_and_wrong_secret_is_401(api_key):
    key, plain = api_key
    response = APIClient().get("/api/v1/tickets", HTTP_AUTHORIZATION=f"Bearer {key.prefix}{'x' * 40}")
    assert response.status_code == 401


def test_x_access_token_header_is_accepted(api_key, branch):
    response = APIClient().get("/api/v1/tickets", HTTP_X_ACCESS_TOKEN=api_key[1])
    assert response.status_code == 200


def test_revoked_key_is_refused(api_key):
    api_key_revoke(api_key=api_key[0])
    response = APIClient().get("/api/v1/tickets", HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


def test_key_without_the_tickets_scope_is_403(merchant):
    _, plain = api_key_create(merchant=merchant, name="solo facturas", scopes=["invoices"])
    response = APIClient().get("/api/v1/tickets", HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert response.status_code == 403
    assert "tickets" in response.json()["error"]["message"]


def test_last_used_is_written_at_most_once_a_minute(api_client, api_key):
    api_client.get("/api/v1/tickets")
    first = ApiKey.objects.get(pk=api_key[0].pk).last_used_at
    assert first is not None
    api_client.get("/api/v1/tickets")
    assert ApiKey.objects.get(pk=api_key[0].pk).last_used_at == first
    ApiKey.objects.filter(pk=api_key[0].pk).update(last_used_at=timezone.now() - dt.timedelta(minutes=2))
    api_client.get("/api/v1/tickets")
    assert ApiKey.objects.get(pk=api_key[0].pk).last_used_at > first


def test_throttling_per_key_answers_429_with_retry_after(api_client, other_api_client, settings):
    settings.API_RATE_LIMIT = "2/min"
    assert api_client.get("/api/v1/tickets").status_code == 200
    assert api_client.get("/api/v1/tickets").status_code == 200
    response = api_client.get("/api/v1/tickets")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert other_api_client.get("/api/v1/tickets").status_code == 200  # the limit is per key


@pytest.mark.parametrize("scopes", [["nope"], []])
def test_api_key_create_refuses_unknown_scopes(merchant, scopes):
    from infra.errors import InvalidInput

    with pytest.raises(InvalidInput):
        api_key_create(merchant=merchant, name="x", scopes=scopes)


def test_command_prints_a_working_key(merchant, branch):
    out = io.StringIO()
    call_command("api_key_create", "--merchant", "kemper", "--name", "POS", "--scopes", "tickets,invoices",
                 stdout=out, stderr=io.StringIO())
    plain = out.getvalue().strip()
    assert APIClient().get("/api/v1/tickets", HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 200
    assert ApiKey.objects.get().scopes == ["tickets", "invoices"]




def _apikey_permissions():
    return Permission.objects.filter(content_type__app_label="tickets", codename__endswith="apikey")


def test_admin_creates_a_key_showing_it_once_and_revokes_it(client, merchant, other_merchant, make_staff):
    client.force_login(make_staff(merchant, "staff", _apikey_permissions()))
    response = client.post("/admin/tickets/apikey/add/", {"name": "POS caja 1", "scopes": ["tickets"]}, follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert key.merchant == merchant and key.scopes == ["tickets"]
    shown = [str(m) for m in response.context["messages"]]
    plain = next(m for m in shown if key.prefix in m).split("<code>")[1].split("</code>")[0]
    assert hash_key(plain) == key.key_hash
    page = client.get(f"/admin/tickets/apikey/{key.pk}/change/").content.decode()
    assert plain not in page
    client.post("/admin/tickets/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert ApiKey.objects.get().revoked_at is not None


def test_admin_shows_only_the_staff_merchant_keys(client, merchant, other_merchant, make_staff):
    api_key_create(merchant=other_merchant, name="ajena", scopes=["tickets"])
    client.force_login(make_staff(merchant, "staff", _apikey_permissions()))
    page = client.get("/admin/tickets/apikey/").content.decode()
    assert "ajena" not in page
