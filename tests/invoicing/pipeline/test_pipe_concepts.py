"""The cap on concepts per invoice (INVOICE_MAX_CONCEPTS): every path that issues a nominative invoice refuses
more with a 400 and a Spanish message, before anything is written."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services import invoice_issue
from invoicing.services.late_request import late_request_issue
from tickets.catalogs import PostalCode
from tickets.models import Ticket
from tickets.services import LineInput, api_key_create, ticket_create


@pytest.fixture(autouse=True)
def _cap(settings):
    settings.INVOICE_MAX_CONCEPTS = 3


@pytest.fixture
def two_line_tickets(branch):
    """Two tickets of two lines each: four concepts, one over the cap."""
    line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                     unit_price=Decimal("58.00"))
    return [ticket_create(merchant=branch.merchant, branch=branch, number=f"L{i}",
                          sold_at=timezone.now() - dt.timedelta(hours=1), lines=[line, line]) for i in range(2)]


def _nothing_written(tickets):
    assert not Invoice.objects.exists()
    assert {t.status for t in Ticket.objects.filter(pk__in=[t.pk for t in tickets])} == {Ticket.Status.OPEN}


def test_the_service_refuses_more_concepts_than_the_cap(merchant, two_line_tickets, receptor):
    with pytest.raises(InvoicingError) as caught:
        invoice_issue(merchant=merchant, ticket_ids=[t.pk for t in two_line_tickets], receptor=receptor)
    assert (caught.value.code, caught.value.status) == ("too_many_concepts", 400)
    assert caught.value.details == {"concepts": 4, "max_concepts": 3}
    assert "hasta 3 conceptos" in caught.value.message and "suman 4" in caught.value.message
    _nothing_written(two_line_tickets)
    # At the cap it goes through.
    assert invoice_issue(merchant=merchant, ticket_ids=[two_line_tickets[0].pk], receptor=receptor).pk


def test_the_api_answers_400_with_the_error_envelope(merchant, certificate, two_line_tickets):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant, name='ERP', scopes=['invoices'])[1]}")
    response = client.post("/api/v1/invoices", {"ticket_ids": [t.pk for t in two_line_tickets], "receptor": {
        "rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612", "postal_code": "36257",
        "cfdi_use": "G03"}}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_many_concepts" and "conceptos" in error["message"]
    assert error["details"] == {"concepts": 4, "max_concepts": 3}
    _nothing_written(two_line_tickets)


def test_the_portal_shows_the_spanish_message_with_a_400(client, merchant, two_line_tickets):
    cache.clear()
    PostalCode.objects.create(code="01160", state="CMX", time_zone_name="Tiempo del Centro",
                              time_zone="America/Mexico_City")
    for ticket in two_line_tickets:
        assert client.get(f"/t/{ticket.public_code}").status_code == 302
    client.post(f"/{merchant.slug}/datos/", {"rfc": "XIQB891116QE4", "name": "Karla Fuente Nolasco",
                                             "tax_regime": "605", "postal_code": "01160", "cfdi_use": "S01",
                                             "emails": "karla@example.com"})
    response = client.post(f"/{merchant.slug}/confirmar/")
    assert response.status_code == 400
    assert "Una factura admite hasta 3 conceptos y estos tickets suman 4" in response.content.decode()
    _nothing_written(two_line_tickets)


def test_a_late_request_is_capped_too(merchant, two_line_tickets, receptor):
    with pytest.raises(InvoicingError) as caught:
        late_request_issue(merchant=merchant, ticket_ids=[t.pk for t in two_line_tickets], receptor=receptor)
    assert caught.value.code == "too_many_concepts"
    _nothing_written(two_line_tickets)
