"""Catalog keys sent as objects or lists are a 400 naming the field, never a 500 (found by schemathesis)."""

import pytest

from tickets.models import Ticket


@pytest.mark.parametrize("mutate,field", [
    (lambda p: p.update(payment_form={"01": True}), "payment_form"),
    (lambda p: p.update(currency=["MXN"]), "currency"),
    (lambda p: p["lines"][0].update(tax_object=["02"]), "lines[0].tax_object"),
    (lambda p: p["lines"][0]["taxes"][0].update(factor={"Tasa": 1}), "lines[0].taxes[0].factor"),
    (lambda p: p["lines"][0]["taxes"][0].update(tax=["002"]), "lines[0].taxes[0].tax"),
])
def test_structured_value_for_a_catalog_key_is_a_400(api_client, payload, mutate, field):
    body = payload()
    mutate(body)
    response = api_client.post("/api/v1/tickets", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not Ticket.objects.exists()
