"""The client generated from /api/schema/ runs the README's flow against a live server while a REAL django-q2
worker (tests/e2e/conftest.py) stamps with the sandbox PAC: ticket → invoice → stamped → XML and PDF."""

from generated_client_flow import run_readme_flow

from tickets.services import api_key_create


def test_the_generated_client_runs_the_readme_flow_with_a_real_worker(generated_api_client, live_server, shop):
    _, key = api_key_create(merchant=shop, name="caja-1", scopes=["tickets", "invoices"])
    ticket, invoice, xml, pdf = run_readme_flow(generated_api_client, live_server.url, key, timeout=60)
    assert invoice.ticket_ids == [ticket.id] and b"EKU9003173C9" in xml and len(pdf) > 1000
