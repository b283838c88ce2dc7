from unittest import mock


def test_healthz_reports_database_and_queue(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["queue"]["ok"]


def test_healthz_answers_503_when_the_queue_is_unreachable(client, db):
    with mock.patch("django_q.brokers.get_broker", side_effect=ConnectionError("redis down")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["queue"] == {"ok": False, "error": "ConnectionError: redis down"}


def test_merchant_landing_page_is_in_spanish_and_branded(client, merchant):
    response = client.get(f"/{merchant.slug}/")
    assert response.status_code == 200
    assert "Factura tu compra" in response.content.decode()
    assert merchant.brand_color in response.content.decode()


def test_unknown_merchant_is_404(client, db):
    assert client.get("/no-existe/").status_code == 404
