"""Schemathesis over EVERY operation of the API with all of its checks (the CLI's ``--checks all``), valid and
invalid data (``--mode all``): no 5xx, no answer off the schema (status, content type, headers, body), invalid
data refused, missing or foreign keys refused.

Derandomized and bounded, so CI runs the same cases every time in about a minute; SCHEMATHESIS_RANDOM=1 draws
new ones while developing (SCHEMATHESIS_EXAMPLES=n for more of them).

Valid data may still be refused for a rule the schema cannot state (a c_Moneda key that SAT does not list, an RFC
whose check digit is wrong, a total that does not add up, a ticket already invoiced): 400, 404, 409 and 422 are
accepted answers to data that follows the schema. 2xx to data that breaks it is not.
"""

import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from tickets.models import Branch
from tickets.services import api_key_create

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
CONFIG = SchemathesisConfig.from_dict({
    "generation": {"mode": "all"},
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409",
                                                                  "422", "429"]}},
})
# The schema view needs no database, so the schema can be loaded at collection time.
schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler(), config=CONFIG)


@pytest.fixture
def _keep_test_connection():
    # Like Django's test client: a request must not close the test's transaction-bound connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def key_header(merchant, certificate, make_ticket, settings, tmp_path, queued_tasks, _keep_test_connection):
    """A merchant with tickets, a stamped invoice and a rate, and its key with every scope; ids 1, 2… exist."""
    from invoicing.services import ReceptorData, invoice_issue
    from invoicing.services.stamping import invoices_stamp_queued
    from tickets.services import exchange_rate_set

    settings.API_RATE_LIMIT = ""
    settings.MEDIA_ROOT = tmp_path
    settings.INVOICE_STAMP_LINGER_MS = 0
    settings.WEBHOOK_ALLOW_PRIVATE = False
    branch = Branch.objects.create(merchant=merchant, code="CENTRO", name="Centro", postal_code="06600")
    tickets = [make_ticket(branch, number=f"T{n}") for n in range(1, 4)]
    invoice_issue(merchant=merchant, ticket_ids=[tickets[0].pk], receptor=ReceptorData(
        rfc="CACX7605101P8", name="XOCHILT CASAS CHAVEZ", tax_regime="612", postal_code="36257", cfdi_use="G03"))
    invoices_stamp_queued()
    exchange_rate_set(merchant=merchant, currency="USD", valid_from=tickets[0].sold_at.date(), rate="17.25")
    _, plain = api_key_create(merchant=merchant, name="schemathesis", scopes=["tickets", "invoices", "webhooks"])
    return {"Authorization": f"Bearer {plain}"}


@schema.parametrize()
@settings(max_examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", 6)), deadline=None,
          phases=[Phase.explicit, Phase.generate], derandomize=not os.environ.get("SCHEMATHESIS_RANDOM"),
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_schema(case, key_header):
    case.call_and_validate(headers=key_header, checks=ALL_CHECKS)
