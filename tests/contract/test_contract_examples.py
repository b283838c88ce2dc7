"""The schema as documentation: every operation has examples of what it takes and what it answers, every example
is valid against the schema it illustrates, every operation sits under a resource tag, and the description page
says what a developer needs (in Spanish). A new endpoint without examples fails here."""

from __future__ import annotations

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from infra.api.schema import TAGS
from portal.api_errors import CATALOGUE

METHODS = ("get", "post", "put", "patch", "delete")
BASE = "urn:autofactura:openapi"


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        for part in node["$ref"].removeprefix("#/").split("/"):
            schema = schema[part.replace("~1", "/").replace("~0", "~")]
        node = schema
    return node


def _media(schema: dict, operation: dict):
    """(where, media type object) of the request body and of every response, resolved."""
    body = operation.get("requestBody")
    if body:
        for media_type, media in _resolve(schema, body)["content"].items():
            yield "request", media_type, media
    for status, response in operation["responses"].items():
        for media_type, media in (_resolve(schema, response).get("content") or {}).items():
            yield status, media_type, media


def test_every_operation_has_request_and_response_examples(schema_dict):
    missing = []
    for label, operation in operations(schema_dict):
        body = operation.get("requestBody")
        if body:
            for media_type, media in body["content"].items():
                if not media.get("examples"):
                    missing.append(f"{label}: sin ejemplo de solicitud ({media_type})")
        answers = {status: _resolve(schema_dict, r) for status, r in operation["responses"].items()}
        for status, response in answers.items():
            content = {k: m for k, m in (response.get("content") or {}).items()
                       if m.get("schema", {}).get("format") != "binary"}  # a PDF or a ZIP has no example to show
            if content and not any(m.get("examples") for m in content.values()):
                missing.append(f"{label}: respuesta {status} sin ejemplo")
        if not any(m.get("examples") for r in answers.values() for m in (r.get("content") or {}).values()):
            missing.append(f"{label}: ninguna respuesta con ejemplo")
    assert not missing, "\n".join(missing)


def test_every_example_is_valid_against_its_schema(schema_dict):
    registry = Registry().with_resource(BASE, Resource(contents=schema_dict, specification=DRAFT202012))
    problems, checked = [], 0
    for path, item in schema_dict["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if not operation:
                continue
            places = []
            if "requestBody" in operation:
                places.append(("request", ("paths", path, method, "requestBody")))
            places += [(status, ("paths", path, method, "responses", status)) for status in operation["responses"]]
            for where, parts in places:
                node = operation["requestBody"] if where == "request" else operation["responses"][where]
                if "$ref" in node:
                    parts = tuple(node["$ref"].removeprefix("#/").split("/"))
                    node = _resolve(schema_dict, node)
                for media_type, media in (node.get("content") or {}).items():
                    if "schema" not in media:
                        continue
                    validator = jsonschema.Draft202012Validator(
                        {"$ref": BASE + _pointer(*parts, "content", media_type, "schema")}, registry=registry,
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
                    for name, example in (media.get("examples") or {}).items():
                        checked += 1
                        for error in validator.iter_errors(example["value"]):
                            problems.append(f"{method.upper()} {path} {where} {media_type} «{name}»: "
                                            f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}")
    assert checked > 100
    assert not problems, "\n".join(problems)


def test_every_operation_is_under_a_resource_tag_and_has_a_unique_id(schema_dict):
    names = [name for name, _ in TAGS]
    assert [t["name"] for t in schema_dict["tags"]] == names
    ids = []
    for label, operation in operations(schema_dict):
        assert operation.get("tags") and set(operation["tags"]) <= set(names), label
        assert operation.get("summary"), f"{label}: sin resumen"
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)) and not any(i.startswith("v1_") for i in ids)
    assert "v1" not in names


def test_the_description_page_covers_what_a_pos_developer_needs(schema_dict):
    text = schema_dict["info"]["description"]
    for heading in ("## Autenticación", "## Idempotencia", "## Errores", "## Límites de solicitudes",
                    "## Paginación", "## Webhooks"):
        assert heading in text
    for code in CATALOGUE:  # the catalogue is generated from portal/api_errors.py, whole
        assert f"`{code}`" in text, code
    assert "<!--" not in text  # every placeholder was filled in
    assert "invoice.stamped" in text and "Idempotency-Key" in text and "X-RateLimit-Remaining" in text


@pytest.mark.parametrize("field", ["currency"])
def test_currency_is_a_pattern_the_validator_enforces_not_a_short_enum(schema_dict, field):
    ticket = schema_dict["components"]["schemas"]["TicketInRequest"]["properties"][field]
    assert "enum" not in ticket and ticket["pattern"] == "^[A-Za-z]{3}$" and "c_Moneda" in ticket["description"]


def test_downloads_document_their_content_types(schema_dict):
    document = schema_dict["paths"]["/api/v1/invoices/{id}/{fmt}"]["get"]
    fmt = next(p for p in document["parameters"] if p["name"] == "fmt")
    assert fmt["schema"]["pattern"] == "^(xml|pdf|zip)$"
    assert set(document["responses"]["200"]["content"]) == {"application/xml", "application/pdf", "application/zip"}
    assert "Retry-After" in document["responses"]["202"]["headers"]
    export = schema_dict["paths"]["/api/v1/exports/{id}/download"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"application/zip"}
    csv = schema_dict["paths"]["/api/v1/batches/{batch_id}/report.csv"]["get"]
    assert set(csv["responses"]["200"]["content"]) == {"text/csv"}


def test_lists_are_envelopes_not_arrays(schema_dict):
    for path in ("/api/v1/tickets", "/api/v1/invoices", "/api/v1/global-invoices"):
        ok = _resolve(schema_dict, schema_dict["paths"][path]["get"]["responses"]["200"]["content"]
                      ["application/json"]["schema"])
        assert ok["type"] == "object" and {"count", "limit", "offset", "results"} <= set(ok["properties"]), path


def test_swagger_ui_and_redoc_are_served_from_this_site(client):
    for url in ("/api/docs/", "/api/redoc/"):
        page = client.get(url).content.decode()
        assert "/api/schema/" in page
        assert "cdn." not in page and "unpkg" not in page and "jsdelivr" not in page, url
        assert "/static/drf_spectacular_sidecar/" in page, url
