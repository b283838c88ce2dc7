"""PostgreSQL (or the broker) away answers 503 with Retry-After, never 500: the JSON envelope on the API, a short
Spanish page elsewhere. An error of a database that answered (a lock timeout) stays a 500."""

import json

import psycopg
import pytest
from django.db import InterfaceError, OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from infra.outages import broker_unavailable, database_unavailable, database_wait
from tickets.services import api_key_create


def _as_django(driver_error: Exception) -> Exception:
    """What Django raises for a driver error (django.db.utils.DatabaseErrorWrapper)."""
    wrapped = (InterfaceError if isinstance(driver_error, psycopg.InterfaceError) else OperationalError)(
        *driver_error.args)
    wrapped.__cause__ = driver_error
    return wrapped


REFUSED = psycopg.OperationalError(
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused')


@pytest.fixture
def database_down(db):
    """``database_down()``: every query from then on fails as it does while PostgreSQL is stopped (the server
    refuses connections), until the test ends (before the test database is cleaned up)."""
    from unittest import mock

    def refuse(*args, **kwargs):
        raise _as_django(REFUSED)

    patch = mock.patch.object(CursorWrapper, "execute", refuse)
    yield patch.start
    patch.stop()


@pytest.fixture
def api(merchant, branch):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant, name='POS', scopes=['tickets', 'invoices'])[1]}")
    return client


def _assert_json_503(response):
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    body = json.loads(response.content)
    assert body["error"]["code"] == "service_unavailable"
    assert "no está disponible" in body["error"]["message"]
    assert body["error"]["details"] == {}


def test_api_with_the_database_down_answers_503_envelope(api, database_down):
    database_down()
    _assert_json_503(api.get("/api/v1/tickets"))  # the API key's lookup is the first query: DRF's handler
    _assert_json_503(api.post("/api/v1/tickets", {"branch": "CENTRO"}, format="json"))


def test_middleware_answers_the_envelope_under_api_and_a_page_elsewhere(rf):
    """Views that are not DRF's (its handler has its own branch): the middleware picks the form by the path."""
    from portal.middleware import ServiceUnavailableMiddleware

    middleware = ServiceUnavailableMiddleware(lambda request: None)
    _assert_json_503(middleware.process_exception(rf.post("/api/v1/tickets/batch"), _as_django(REFUSED)))
    page = middleware.process_exception(rf.post("/kemper/confirmar/"), _as_django(REFUSED))
    assert page.status_code == 503 and "Servicio no disponible" in page.content.decode()
    assert "Intentar de nuevo" not in page.content.decode()  # a POST is not re-sent by a link
    assert middleware.process_exception(rf.get("/kemper/"), ValueError("a bug")) is None  # Django's 500


def test_page_with_the_database_down_answers_503_spanish_page(merchant, database_down):
    database_down()
    response = Client().get(f"/{merchant.slug}/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Servicio no disponible por un momento" in page and "vuelve a intentarlo" in page
    assert f'href="/{merchant.slug}/"' in page  # a GET can simply be tried again


def test_outage_outside_the_view_answers_503_too(merchant, monkeypatch):
    """The session saved on the way out (after the view) meets the outage: Django turned it into its 500
    response before our middleware saw it; the request is marked and answered 503."""
    from django.contrib.sessions.middleware import SessionMiddleware

    def save_fails(self, request, response):
        raise _as_django(psycopg.errors.AdminShutdown("terminating connection due to administrator command"))

    monkeypatch.setattr(SessionMiddleware, "process_response", save_fails)
    response = Client(raise_request_exception=False).get(f"/{merchant.slug}/")
    assert response.status_code == 503
    assert "Servicio no disponible" in response.content.decode()


def test_lock_timeout_is_not_an_outage(api):
    """A database that answered "lock timeout" is up: that stays the API's logged 500, not a 503 inviting a
    blind resend."""
    from unittest import mock

    def lock_timeout(*args, **kwargs):
        raise _as_django(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"))

    with mock.patch.object(CursorWrapper, "execute", lock_timeout):
        response = api.get("/api/v1/tickets")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


@pytest.mark.django_db(transaction=True)
def test_resend_with_the_broker_down_answers_503(api, ticket, certificate, monkeypatch):
    """A person's resend lives only in the broker: if it cannot be queued, say so (503), not 202 nor 500.
    (A transactional test: the resend is queued on commit, which a request in autocommit runs at once.)"""
    from invoicing.services.stamping import invoice_stamp

    receptor = {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612",
                "postal_code": "36257", "cfdi_use": "G03", "emails": ["xochilt@example.com"]}
    monkeypatch.setattr("infra.queues.enqueue", lambda *a, **k: "task")
    created = api.post("/api/v1/invoices", {"ticket_ids": [ticket.pk], "receptor": receptor}, format="json")
    assert created.status_code == 202, created.content
    invoice_stamp(invoice_id=created.json()["id"])

    def refused(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("infra.queues.enqueue", refused)
    _assert_json_503(api.post(f"/api/v1/invoices/{created.json()['id']}/resend", {}, format="json"))


@pytest.mark.parametrize(("error", "unavailable"), [
    (REFUSED, True),
    (psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"), True),
    (psycopg.OperationalError("the connection is closed"), True),
    (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
    (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
    (psycopg.errors.TooManyConnections("sorry, too many clients already"), True),
    (psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"), False),
    (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
    (psycopg.errors.DeadlockDetected("deadlock detected"), False),
    (psycopg.errors.SerializationFailure("could not serialize access"), False),
    (psycopg.errors.UniqueViolation("duplicate key"), False),
])
def test_what_counts_as_the_database_being_away(error, unavailable):
    assert database_unavailable(_as_django(error)) is unavailable
    assert database_unavailable(ValueError("no")) is False


def test_sqlite_locked_is_not_away_but_cannot_open_is():
    import sqlite3

    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorname = "SQLITE_BUSY"
    cannot_open = sqlite3.OperationalError("unable to open database file")
    cannot_open.sqlite_errorname = "SQLITE_CANTOPEN"
    assert database_unavailable(_as_django(locked)) is False
    assert database_unavailable(_as_django(cannot_open)) is True


def test_broker_errors_found_through_the_chain():
    try:
        try:
            raise RedisConnectionError("Connection closed by server.")
        except RedisConnectionError as exc:
            raise RuntimeError("enqueue failed") from exc
    except RuntimeError as outer:
        assert broker_unavailable(outer)
    assert not broker_unavailable(RuntimeError("x"))


@pytest.mark.django_db(transaction=True)
def test_database_wait_returns_at_once_when_the_database_answers():
    assert database_wait(5) is True
