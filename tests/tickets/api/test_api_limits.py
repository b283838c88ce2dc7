"""Hostile and oversized input to the API is a clear 4xx, never a 500 (issue 14: findings 3 and the Low ones).

Bad text in any field, JSON nested 100,000 deep, bodies above Django's page limit but below ours, bodies
above ours, unknown /api/ URLs with any method, and sale times without a UTC offset.
"""

import io
import json
import zipfile

import pytest
from django.test import Client
from ticket_api_helpers import make_zip

from infra.jsontext import MAX_DEPTH, too_deep
from tickets.ingest import tasks
from tickets.models import Batch, Ticket

# --- bad text: a per-ticket 400 naming the field -------------------------------------------------------------


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda p: p.update(number="A-\ud800"), "number"),
    (lambda p: p.update(branch="CENTRO\udfff"), "branch"),
    (lambda p: p["lines"][0].update(description="REFRESCO \ud83d"), "lines[0].description"),
    (lambda p: p["lines"][1].update(sku="SKU\x00"), "lines[1].sku"),
    (lambda p: p["lines"][2].update(description="CUADERNO\uffff"), "lines[2].description"),
    (lambda p: p["lines"][0].update(quantity="2\ud800"), "lines[0].quantity"),
    (lambda p: p.update(total="163.50\ud800"), "total"),
    (lambda p: p.update(sold_at="2026-05-31T13:45:00\ud800"), "sold_at"),
    (lambda p: p.update(payment_form="0\ud800"), "payment_form"),
])
def test_text_that_cannot_be_encoded_is_a_field_error(api_client, payload, mutate, field):
    body = payload()
    mutate(body)
    # json.dumps escapes the surrogate as \ud800, as a POS would send it; the parser turns it back into one.
    response = api_client.post("/api/v1/tickets", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_ticket" and field in error["details"], error
    assert not Ticket.objects.exists()


def test_lone_surrogate_message_says_what_is_wrong(api_client, payload):
    response = api_client.post("/api/v1/tickets", json.dumps(payload(number="\ud800")), content_type="application/json")
    assert "Unicode" in response.json()["error"]["details"]["number"][0]


def test_bad_text_in_a_small_batch_is_one_rejection(api_client, payload):
    tickets = [payload(number="OK-1"), payload(number="X\ud800"), payload(number="OK-2")]
    response = api_client.post("/api/v1/tickets/batch", json.dumps({"batch_id": "txt", "tickets": tickets}),
                               content_type="application/json")
    assert response.status_code == 207, response.content
    report = response.json()["report"]
    assert [e["status"] for e in report] == ["created", "rejected", "created"]
    assert report[1]["number"] == "X" and "number" in report[1]["errors"]
    assert Batch.objects.get().report[1]["code"] == "invalid_ticket"  # the stored report encodes too


# --- JSON nesting ------------------------------------------------------------------------------------------


def test_json_nested_100000_deep_is_a_400_not_a_recursion_error(api_client):
    deep = "[" * 100_000 + "]" * 100_000
    for url in ("/api/v1/tickets", "/api/v1/tickets/batch", "/api/v1/invoices"):
        response = api_client.post(url, deep, content_type="application/json")
        assert response.status_code == 400, (url, response.content)
        assert response.json()["error"]["code"] == "malformed_request"
        assert "niveles" in response.json()["error"]["message"]


def test_deep_json_inside_a_zip_member_is_that_members_error(api_client, payload):
    deep = "{\"a\":" * 50_000 + "1" + "}" * 50_000
    data = make_zip({"ok.json": json.dumps(payload(number="Z-OK")), "deep.json": deep}, zipfile.ZIP_STORED)
    upload = io.BytesIO(data)
    upload.name = "t.zip"
    response = api_client.post("/api/v1/tickets/batch", {"batchId": "zipdeep", "file[0]": upload}, format="multipart")
    assert response.status_code == 207, response.content
    statuses = {e["file"]: e["status"] for e in response.json()["report"]}
    assert statuses == {"ok.json": "created", "deep.json": "rejected"}


def test_nesting_check_counts_only_real_brackets():
    assert not too_deep(json.dumps({"tickets": [{"lines": [{"taxes": [{"rate": "0.16"}]}]}]}).encode())
    assert not too_deep(json.dumps({"d": "[[[[{{{{" * 100, "e": "\\\"[[[", "f": ["]]]\\"]}).encode())
    nested = "x"
    for i in range(MAX_DEPTH):  # lists and objects alternating, exactly MAX_DEPTH levels
        nested = [nested] if i % 2 else {"k": nested}
    assert not too_deep(json.dumps(nested).encode())
    assert too_deep(("[" * (2 * MAX_DEPTH + 1) + "]" * (2 * MAX_DEPTH + 1)).encode())
    assert not too_deep(b"[[[")  # malformed: the parser reports it, not the depth check


# --- body size ----------------------------------------------------------------------------------------------


def _minimal_tickets(count: int) -> list[dict]:
    line = {"product_code": "01010101", "unit_code": "H87", "description": "VENTA", "quantity": "1",
            "unit_price": "116.00", "taxes": [{"tax": "002", "rate": "0.160000"}]}
    return [{"branch": "CENTRO", "number": f"N-{i:07d}", "sold_at": "2026-01-02T10:00:00-06:00", "total": "116.00",
             "lines": [line]} for i in range(count)]


@pytest.mark.slow
def test_batch_of_10000_minimal_tickets_above_djangos_page_limit_is_accepted(
        api_client, settings, queued_tasks, django_capture_on_commit_callbacks):
    body = json.dumps({"batch_id": "diez-mil", "tickets": _minimal_tickets(10_000)})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # ~3.3 MB: Django's limit for pages is 2.5 MiB
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/tickets/batch", body, content_type="application/json")
    assert response.status_code == 202, response.content[:500]
    assert response.json()["total_count"] == 10_000
    [(queue, func, args)] = queued_tasks
    assert (queue, func) == ("bulk", "tickets.ingest.tasks.process_batch")
    assert tasks.process_batch(*args) == "done"
    batch = Batch.objects.get()
    assert (batch.status, batch.created_count, batch.rejected_count) == ("done", 10_000, 0)


def test_body_above_the_api_cap_is_a_413_envelope(api_client, settings):
    settings.API_MAX_BODY_BYTES = 1024 * 1024
    body = json.dumps({"batch_id": "grande", "tickets": _minimal_tickets(4_000)})
    assert len(body) > settings.API_MAX_BODY_BYTES
    for url in ("/api/v1/tickets/batch", "/api/v1/invoices"):
        response = api_client.post(url, body, content_type="application/json")
        assert response.status_code == 413, (url, response.content[:300])
        error = response.json()["error"]
        assert error["code"] == "payload_too_large" and "excede" in error["message"]
    assert not Batch.objects.exists()


def test_zip_upload_above_the_api_cap_is_refused_before_it_is_read(api_client, settings):
    settings.API_MAX_BODY_BYTES = 64 * 1024
    upload = io.BytesIO(b"PK" + b"\0" * (128 * 1024))
    upload.name = "t.zip"
    response = api_client.post("/api/v1/tickets/batch", {"batchId": "zipbig", "file[0]": upload}, format="multipart")
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_other_api_endpoints_take_bodies_above_the_page_limit_too(api_client, settings):
    # Not a 500 (RequestDataTooBig): the invoices endpoint reads it and answers about its content.
    body = json.dumps({"tickets": [1], "padding": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)})
    response = api_client.post("/api/v1/invoices", body, content_type="application/json")
    assert 400 <= response.status_code < 500 and response.status_code != 413, response.content[:300]
    assert "error" in response.json()


def test_pages_keep_djangos_limit_and_answer_it_without_a_500(settings, db):
    client = Client(raise_request_exception=False)
    big = {"username": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10), "password": "y"}
    response = client.post("/admin/login/", big)
    assert response.status_code == 400


# --- unknown /api/ URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("url", ["/api/v1/nada", "/api/v2/tickets", "/api/v1/tickets/1/nada", "/api", "/api/"])
def test_unknown_api_url_is_a_json_404_for_any_method(method, url, db):
    client = Client(enforce_csrf_checks=True)  # like a real POS: no CSRF cookie, no token
    response = client.generic(method.upper(), url, data="{}", content_type="application/json")
    assert response.status_code == 404, response.content[:200]
    assert response.json()["error"]["code"] == "not_found"


def test_pages_still_check_csrf(db):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/admin/login/", {"username": "a", "password": "b"}).status_code == 403


# --- sold_at must carry its UTC offset ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2026-01-02T10:00:00", "2026-01-02", "2026-01-02 10:00"])
def test_sold_at_without_utc_offset_is_refused(api_client, payload, value):
    response = api_client.post("/api/v1/tickets", payload(sold_at=value), format="json")
    assert response.status_code == 400, response.json()
    message = response.json()["error"]["details"]["sold_at"][0]
    assert "diferencia de UTC" in message and "-06:00" in message


@pytest.mark.parametrize("value", ["2026-01-02T10:00:00-06:00", "2026-01-02T16:00:00Z", "2026-01-02T16:00:00+00:00"])
def test_sold_at_with_offset_is_the_same_moment_whatever_the_zone(api_client, payload, value):
    response = api_client.post("/api/v1/tickets", payload(sold_at=value), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["sold_at"] == "2026-01-02T10:00:00-06:00"
