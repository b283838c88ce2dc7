"""The race on one ticket between a shopper's self-invoice and the global being built (PostgreSQL)."""


import pytest
from django.db import connection

from invoicing.errors import InvoicingError
from invoicing.models import Invoice, InvoiceTicket
from invoicing.services import invoice_issue
from invoicing.services.global_invoice import global_invoice_issue
from tickets.models import Ticket

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks")]



@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(6))
def test_self_invoice_racing_the_global_ends_in_exactly_one(run_together, merchant, branch, sale, receptor, round_):
    assert connection.vendor == "postgresql"
    contested = sale(branch, "C", "2026-03-07 12:00")
    others = [sale(branch, f"O{i}", "2026-03-07 12:00") for i in range(200)]
    results, errors = run_together([
        lambda: invoice_issue(merchant=merchant, ticket_ids=[contested.pk], receptor=receptor,
                              enforce_deadline=False),
        lambda: global_invoice_issue(merchant=merchant, period="2026-03-07"),
    ])
    contested.refresh_from_db()
    holders = list(InvoiceTicket.objects.filter(ticket=contested).values_list("invoice__kind", flat=True))
    assert len(holders) == 1, (holders, errors)
    if holders == ["ingreso"]:
        assert errors == [] and contested.status == "invoiced"
    else:
        assert contested.status == "globalized"
        assert len(errors) == 1 and isinstance(errors[0], InvoicingError)
        assert errors[0].code == "ticket_in_global_invoice"
    assert Ticket.objects.filter(pk__in=[o.pk for o in others], status="globalized").count() == 200
    assert Invoice.objects.filter(kind="global").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_never_make_two_globals_for_a_ticket(run_together, merchant, branch, sale):
    tickets = [sale(branch, f"T{i}", "2026-03-07 12:00") for i in range(300)]
    results, errors = run_together([lambda: global_invoice_issue(merchant=merchant, period="2026-03")] * 3)
    assert errors == []
    assert sum(len(r) for r in results) == 1
    assert InvoiceTicket.objects.filter(ticket__in=tickets).count() == 300
