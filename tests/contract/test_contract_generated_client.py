"""A client generated from /api/schema/ by openapi-python-client runs the README's flow against a live server:
ticket → invoice → stamped → XML and PDF. Every answer is parsed by the generated models, so a schema that lies
about a shape breaks here the way it would break a POS.

Stamping is the worker's job: here the test drains the stamping queue as the worker would, between the client's
polls (tests/e2e/test_e2e_api_client.py runs the same flow with a real worker process on PostgreSQL).
"""

from __future__ import annotations

import pytest
from generated_client_flow import run_readme_flow

from tickets.services import api_key_create


@pytest.fixture
def shop(transactional_db, settings, tmp_path):
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.services.certificates import certificate_install
    from tickets.models import Branch, Merchant

    settings.MEDIA_ROOT = tmp_path
    settings.INVOICE_STAMP_LINGER_MS = 0
    merchant = Merchant.objects.create(slug="kemper", legal_name="ESCUELA KEMPER URGATE", rfc="EKU9003173C9",
                                       tax_regime="601", pac="sandbox")
    Branch.objects.create(merchant=merchant, code="CENTRO", name="Centro", postal_code="06600")
    cer, key, password = generate_test_csd(merchant.rfc, merchant.legal_name)
    certificate_install(merchant=merchant, cer=cer, key=key, password=password)
    return merchant


def test_the_generated_client_runs_the_readme_flow(generated_api_client, live_server, shop, queued_tasks):
    from invoicing.services.stamping import invoices_stamp_queued

    _, key = api_key_create(merchant=shop, name="caja-1", scopes=["tickets", "invoices"])
    run_readme_flow(generated_api_client, live_server.url, key, between_polls=invoices_stamp_queued)


def test_the_generated_client_reads_errors_as_the_envelope(generated_api_client, live_server, shop):
    from autofactura_client.api.facturas import invoices_retrieve
    from autofactura_client.models import ErrorEnvelope

    _, key = api_key_create(merchant=shop, name="caja-1", scopes=["invoices"])
    client = generated_api_client.AuthenticatedClient(base_url=live_server.url, token=key)
    missing = invoices_retrieve.sync_detailed(client=client, id=999_999)
    assert missing.status_code == 404 and isinstance(missing.parsed, ErrorEnvelope)
    assert missing.parsed.error.code == "not_found"
    anonymous = generated_api_client.Client(base_url=live_server.url)
    refused = invoices_retrieve.sync_detailed(client=anonymous, id=1)
    assert refused.status_code == 401 and refused.parsed.error.code == "not_authenticated"
