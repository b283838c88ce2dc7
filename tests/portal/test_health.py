import json
from unittest import mock

import pytest

TOKEN = "hz-2f9c1e7a55b04d"


@pytest.fixture
def healthz_token(settings):
    settings.HEALTHZ_TOKEN = TOKEN
    return TOKEN


def test_outsiders_get_only_up(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_outsiders_get_only_down_without_the_internal_error(client, db, healthz_token):
    failing = mock.Mock(side_effect=RuntimeError("db.internal:5432 refused"))
    with mock.patch("portal.health._check_database", failing):
        anonymous = client.get("/healthz")
        wrong_token = client.get("/healthz", HTTP_X_HEALTHZ_TOKEN=TOKEN[:-1] + "x")
    for response in (anonymous, wrong_token):
        assert response.status_code == 503
        assert response.json() == {"status": "error"}
        assert b"db.internal" not in response.content


def test_a_broker_that_is_down_degrades_but_keeps_the_web_up(client, db, healthz_token):
    # Pulling every web process out of the balancer because the broker is away would be a total outage.
    with mock.patch("django_q.brokers.get_broker", side_effect=ConnectionError("redis.internal:6379 refused")):
        anonymous = client.get("/healthz")
        detailed = client.get("/healthz", HTTP_X_HEALTHZ_TOKEN=TOKEN)
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "ok"})
    assert b"redis.internal" not in anonymous.content
    assert detailed.status_code == 200 and detailed.json()["status"] == "degraded"
    assert detailed.json()["checks"]["queue"] == {"ok": False, "error": "ConnectionError: redis.internal:6379 refused"}


def test_the_token_shows_every_check_and_its_error(client, db, healthz_token):
    body = client.get("/healthz", HTTP_X_HEALTHZ_TOKEN=TOKEN).json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["queue"]["ok"]
    assert set(body["checks"]["queue"]["queued"]) == {"stamp", "deliver", "bulk"}
    assert body["checks"]["cache"]["ok"] and body["checks"]["cache"]["backend"] == "LocMemCache"
    with mock.patch("portal.health._check_database", mock.Mock(side_effect=RuntimeError("db down"))):
        response = client.get("/healthz", HTTP_X_HEALTHZ_TOKEN=TOKEN)
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["checks"]["database"] == {"ok": False, "error": "RuntimeError: db down"}


def test_without_a_configured_token_no_header_opens_the_details(client, db, settings):
    settings.HEALTHZ_TOKEN = ""
    assert client.get("/healthz", HTTP_X_HEALTHZ_TOKEN="").json() == {"status": "ok"}


def test_logged_in_staff_see_the_details_other_users_do_not(client, merchant, make_staff, django_user_model):
    client.force_login(make_staff(merchant))
    assert "checks" in client.get("/healthz").json()
    client.force_login(django_user_model.objects.create_user("shopper", password="x"))
    assert client.get("/healthz").json() == {"status": "ok"}


def test_a_redis_cache_that_is_down_degrades_but_keeps_the_process_up(client, db, healthz_token, redis_down):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/healthz", HTTP_X_HEALTHZ_TOKEN=TOKEN)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    cache = body["checks"]["cache"]
    assert cache["ok"] is False and cache["rate_limits"] == "per-process fallback"
    assert "127.0.0.1:1" in cache["error"] and cache["down_since"]
    assert "127.0.0.1:1" not in json.dumps(client.get("/healthz").json())


def test_merchant_landing_page_is_in_spanish_and_branded(client, merchant):
    response = client.get(f"/{merchant.slug}/")
    assert response.status_code == 200
    assert "Factura tu compra" in response.content.decode()
    assert merchant.brand_color in response.content.decode()


def test_unknown_merchant_is_404(client, db):
    assert client.get("/no-existe/").status_code == 404
