"""Fixtures for the tickets API: keys and clients for two merchants, ticket payloads, ZIP builders."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from ticket_api_helpers import line

from tickets.services import api_key_create


@pytest.fixture
def api_key(merchant):
    return api_key_create(merchant=merchant, name="POS centro", scopes=["tickets", "invoices"])


@pytest.fixture
def api_client(api_key, branch):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    return client


@pytest.fixture
def other_api_client(other_merchant, other_branch):
    _, plain = api_key_create(merchant=other_merchant, name="POS otro", scopes=["tickets"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def payload():
    """A valid three-line ticket; ``payload(number=…, total=…)`` overrides fields."""

    def make(number="A-1", **overrides):
        data = {
            "branch": "CENTRO",
            "number": number,
            "sold_at": (timezone.now() - dt.timedelta(hours=2)).isoformat(),
            "payment_form": "04",
            "total": "163.50",
            "lines": [line(), line("PAN BLANCO", "48.50", "1", "0.000000"), line("CUADERNO", "71.00", "1")],
        }
        data.update(overrides)
        return data

    return make
