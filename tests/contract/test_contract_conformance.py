"""Real answers of EVERY operation, validated against the published schema (/api/schema/) by openapi-core: status
code, content type, headers and body. A schema that says one thing while the code answers another fails here.

Requests go through Django's test client; openapi-core reads them as a client would see them. Each operation's
calls are in contract_scenarios.py; on top of them every operation is asked without a key (401), with a key that
lacks its scope (403) and, when it takes an id, by another merchant (404).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from contract_scenarios import SCOPES, Call, scenarios
from django.test.client import encode_multipart
from django.utils import timezone
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from rest_framework.test import APIClient

from tickets.services import api_key_create

METHODS = ("get", "post", "put", "patch", "delete")
# Deprecated in 3.1 but the one way to say what the API does: an empty query parameter is an absent one.
pytestmark = pytest.mark.filterwarnings("ignore:Use of allowEmptyValue:DeprecationWarning")
BOUNDARY = "AutofacturaContrato"


MAGIC = {"application/pdf": b"%PDF-", "application/zip": b"PK\x03\x04"}


def _text(data: bytes, **_) -> str:
    return data.decode("utf-8")


def _octets(media_type: str):
    def read(data: bytes, **_) -> str:
        assert data.startswith(MAGIC[media_type]), f"no es {media_type}: {data[:20]!r}"
        return data.decode("latin-1")  # binary: a string of octets, as the schema says

    return read


def openapi_for(schema: dict) -> OpenAPI:
    """openapi-core reads the XML and the CSV as the text a client receives (it would parse XML otherwise), and a
    PDF or a ZIP as octets, after checking they really are one."""
    return OpenAPI.from_dict(schema, config=Config(extra_media_type_deserializers={
        "application/xml": _text, "text/csv": _text, **{m: _octets(m) for m in MAGIC}}))


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _send(client: APIClient, call: Call):
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in call.headers.items()}
    method = getattr(client, call.method.lower())
    if call.multipart:
        from django.core.files.uploadedfile import SimpleUploadedFile

        data = {k: (SimpleUploadedFile("tickets.zip", v, content_type="application/zip") if isinstance(v, bytes)
                    else v) for k, v in call.body.items()}
        body = encode_multipart(BOUNDARY, data)
        response = method(call.path, body, content_type=f"multipart/form-data; boundary={BOUNDARY}", **headers)
        return response, body, f"multipart/form-data; boundary={BOUNDARY}"
    if call.body is None:
        return method(call.path, **headers), b"", ""
    body = json.dumps(call.body).encode()
    return method(call.path, body, content_type="application/json", **headers), body, "application/json"


def _content(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def validate(openapi: OpenAPI, call: Call, response, body: bytes, content_type: str, headers: dict) -> None:
    url = urlsplit(call.path)
    request = MockRequest("http://testserver", call.method, url.path, args=parse_qsl(url.query), headers=headers,
                          data=body, content_type=content_type or "")
    if call.valid_request:
        openapi.validate_request(request)
    mock = MockResponse(_content(response), status_code=response.status_code, headers=dict(response.headers),
                        content_type=response.get("Content-Type", ""))
    openapi.validate_response(request, mock)


def _call(openapi, client, call: Call, auth: dict, failures: list, operation_id: str) -> None:
    response, body, content_type = _send(client, call)
    label = f"{operation_id}: {call.method} {call.path} → {response.status_code}"
    if response.status_code != call.status:
        failures.append(f"{label}, se esperaba {call.status}: {_content(response)[:300]!r}")
        return
    try:
        validate(openapi, call, response, body, content_type, {**auth, **call.headers})
    except Exception as exc:  # noqa: BLE001 - every mismatch is reported, all operations at once
        failures.append(f"{label}: {_explain(exc)[:900]}")


def _explain(exc: BaseException) -> str:
    """openapi-core's error and its causes, down to the JSON Schema messages with their paths."""
    parts = []
    while exc is not None:
        errors = getattr(exc, "schema_errors", None)
        if errors:
            parts += [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
        else:
            parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return " ← ".join(parts)


def test_every_operation_answers_as_the_schema_says(schema_dict, world):
    openapi = openapi_for(schema_dict)
    plan = scenarios(world, timezone.now().replace(microsecond=0).isoformat())
    failures: list[str] = []
    seen = set()
    auth = {"Authorization": f"Bearer {world.key}"}
    for _path, _method, operation in operations(schema_dict):
        op_id = operation["operationId"]
        seen.add(op_id)
        if op_id not in plan:
            failures.append(f"{op_id}: sin escenario en tests/contract/contract_scenarios.py")
            continue
        for call in plan[op_id]:
            _call(openapi, world.api, call, auth, failures, op_id)
    assert not failures, "\n".join(failures)
    assert not set(plan) - seen, f"escenarios de operaciones que ya no existen: {set(plan) - seen}"


def test_every_operation_refuses_without_key_without_scope_and_across_merchants(schema_dict, world):
    """The answers every operation shares: 401 without a key, 403 without the scope, 404 for another merchant's."""
    openapi = openapi_for(schema_dict)
    plan = scenarios(world, timezone.now().replace(microsecond=0).isoformat())
    one_scope = {}
    for scope in SCOPES:
        _, plain = api_key_create(merchant=world.merchant, name=f"Solo {scope}", scopes=[scope])
        one_scope[scope] = plain
    failures: list[str] = []
    for path, _method, operation in operations(schema_dict):
        op_id = operation["operationId"]
        main = plan[op_id][0]
        call = Call(main.method, main.path, 401, main.body, multipart=main.multipart, valid_request=False)
        _call(openapi, APIClient(), call, {}, failures, op_id)
        needed = {scope for requirement in operation["security"] for scope in next(iter(requirement.values()))}
        assert len(needed) == 1, f"{op_id}: el esquema no dice qué permiso pide ({operation['security']})"
        other = one_scope[next(s for s in SCOPES if s not in needed)]
        wrong = APIClient()
        wrong.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
        _call(openapi, wrong, Call(main.method, main.path, 403, main.body, multipart=main.multipart),
              {"Authorization": f"Bearer {other}"}, failures, op_id)
        if "{" in path and op_id != "batches_create":
            _call(openapi, world.other_api, Call(main.method, main.path, 404, main.body, multipart=main.multipart),
                  {"Authorization": "Bearer otra"}, failures, op_id)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("header", ["Authorization", "X-Access-Token"])
def test_either_auth_header_alone_is_enough(schema_dict, world, header):
    """The two security schemes are alternatives: each one alone authenticates."""
    for *_, operation in operations(schema_dict):
        assert [set(requirement) for requirement in operation["security"]] == [{"BearerApiKey"}, {"AccessToken"}]
    value = f"Bearer {world.key}" if header == "Authorization" else world.key
    response = APIClient().get("/api/v1/tickets", **{f"HTTP_{header.upper().replace('-', '_')}": value})
    assert response.status_code == 200


def test_a_nul_character_is_refused_before_any_query(world):
    """PostgreSQL holds no NUL in text: in a path it is a 404, in a parameter or Idempotency-Key a 400, never a 500
    (schemathesis met one on /exchange-rates?currency=%00…)."""
    api = world.api
    assert api.get("/api/v1/batches/LOTE%00").status_code == 404
    for url in ("/api/v1/exchange-rates?currency=%00US", "/api/v1/invoices?rfc=EKU%00", "/api/v1/tickets?number=A%00",
                "/api/v1/global-invoices/eligible?period=2026-05&branch=CEN%00"):
        response = api.get(url)
        assert response.status_code == 400, url
        assert response.json()["error"]["code"] == "validation_error"
    response = api.post("/api/v1/invoices", {"ticket_ids": [world.ids["open"]], "receptor": {}}, format="json",
                        HTTP_IDEMPOTENCY_KEY="venta\x001")
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["error"]["details"]
    assert api.get("/api/v1/exchange-rates?currency=usd").status_code == 200
    assert api.get("/api/v1/exchange-rates?currency=US").status_code == 400
