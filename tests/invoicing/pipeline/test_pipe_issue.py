import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from infra.models import Event
from invoicing.errors import InvoicingError
from invoicing.models import FolioCounter, Invoice
from invoicing.services import invoice_issue
from tickets.models import Ticket

postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks")


def test_issue_locks_the_ticket_to_a_pending_invoice_with_the_next_folio(merchant, branch, make_ticket, receptor,
                                                                          django_capture_on_commit_callbacks):
    first = make_ticket(branch, number="1", total=Decimal("116.00"))
    second = make_ticket(branch, number="2", total=Decimal("58.00"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invoice = invoice_issue(merchant=merchant, ticket_ids=[first.pk, second.pk], receptor=receptor)
    assert len(callbacks) == 1  # stamping is queued only after commit
    assert (invoice.status, invoice.serie, invoice.folio) == ("pending", "F", 1)
    assert invoice.total == Decimal("174.00")
    assert set(Ticket.objects.values_list("status", flat=True)) == {"invoiced"}
    assert Event.objects.filter(entity="ticket", to_status="invoiced").count() == 2
    third = make_ticket(branch, number="3")
    assert invoice_issue(merchant=merchant, ticket_ids=[third.pk], receptor=receptor).folio == 2


def test_issue_writes_the_invoice_links_tickets_and_events_it_returns(merchant, branch, make_ticket, receptor):
    # On PostgreSQL these rows come from one statement (services/issue_write.py); elsewhere from the ORM.
    first = make_ticket(branch, number="1", total=Decimal("116.00"))
    second = make_ticket(branch, number="2", total=Decimal("58.00"))
    invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="0").pk], receptor=receptor)
    invoice = invoice_issue(merchant=merchant, ticket_ids=[second.pk, first.pk], receptor=receptor, actor="api:pos")
    stored = Invoice.objects.get(pk=invoice.pk)
    for name in ("folio", "public_code", "created_at", "total", "receptor_emails", "status", "merchant_id"):
        assert getattr(stored, name) == getattr(invoice, name), name
    assert stored.folio == 2 and stored.total == Decimal("174.00")
    assert sorted(stored.ticket_links.values_list("ticket_id", "amount")) == [
        (first.pk, Decimal("116.00")), (second.pk, Decimal("58.00"))]
    assert Ticket.objects.get(pk=first.pk).status == "invoiced"
    events = Event.objects.filter(actor="api:pos").order_by("entity", "object_id")
    assert [(e.merchant_id, e.entity, e.object_id, e.from_status, e.to_status, e.reason, e.data) for e in events] == [
        (merchant.pk, "invoice", invoice.pk, "", "pending", "2 ticket(s)", {}),
        (merchant.pk, "ticket", first.pk, "open", "invoiced", f"factura #{invoice.pk}", {}),
        (merchant.pk, "ticket", second.pk, "open", "invoiced", f"factura #{invoice.pk}", {}),
    ]
    assert all(e.created_at is not None for e in events)


def test_a_ticket_that_changed_after_it_was_read_writes_nothing_and_is_named(merchant, branch, make_ticket, receptor,
                                                                           monkeypatch):
    from invoicing.services import issue as issue_module

    ticket = make_ticket(branch, number="R1")
    stale = issue_module.tickets_read(merchant_id=merchant.pk, ids=[ticket.pk])  # read while still open
    Ticket.objects.filter(pk=ticket.pk).update(status="void")  # then voided at the store
    real, reads = issue_module.tickets_read, []

    def read_stale_first(**kwargs):
        reads.append(kwargs)
        return stale if len(reads) == 1 else real(**kwargs)

    monkeypatch.setattr(issue_module, "tickets_read", read_stale_first)
    with pytest.raises(InvoicingError) as exc:
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert exc.value.code == "ticket_void" and len(reads) == 2
    assert not Invoice.objects.exists() and not Event.objects.filter(entity="invoice").exists()
    assert not FolioCounter.objects.filter(next_folio__gt=1).exists()  # no folio consumed


def test_tickets_that_keep_changing_give_up_with_a_409(merchant, branch, make_ticket, receptor, monkeypatch):
    from invoicing.services import issue as issue_module

    ticket = make_ticket(branch, number="R2")
    stale = issue_module.tickets_read(merchant_id=merchant.pk, ids=[ticket.pk])
    Ticket.objects.filter(pk=ticket.pk).update(status="invoiced")
    monkeypatch.setattr(issue_module, "tickets_read", lambda **kw: stale)
    with pytest.raises(InvoicingError) as exc:
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert (exc.value.code, exc.value.status) == ("tickets_busy", 409)
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("status,code", [("invoiced", "ticket_already_invoiced"),
                                         ("globalized", "ticket_in_global_invoice"), ("void", "ticket_void")])
def test_issue_refuses_a_ticket_that_is_not_open(merchant, ticket, receptor, status, code):
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert err.value.code == code
    assert not Invoice.objects.exists() and not FolioCounter.objects.exists()


def test_expired_ticket_is_refused_to_shoppers_with_its_date_but_not_to_the_merchant(merchant, ticket, receptor):
    Ticket.objects.filter(pk=ticket.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert err.value.code == "ticket_expired" and "venció el" in err.value.message
    assert invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor, enforce_deadline=False)


def test_another_merchants_ticket_is_not_found(merchant, other_branch, make_ticket, receptor):
    foreign = make_ticket(other_branch, number="X")
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[foreign.pk], receptor=receptor)
    assert err.value.code == "ticket_not_found"
    assert Ticket.objects.get(pk=foreign.pk).status == "open"


def test_idempotency_key_replays_the_same_invoice_and_refuses_other_tickets(merchant, branch, make_ticket,
                                                                             receptor):
    a, b = make_ticket(branch, number="A"), make_ticket(branch, number="B")
    first = invoice_issue(merchant=merchant, ticket_ids=[a.pk], receptor=receptor, idempotency_key="k1")
    again = invoice_issue(merchant=merchant, ticket_ids=[a.pk], receptor=receptor, idempotency_key="k1")
    assert first.pk == again.pk
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[b.pk], receptor=receptor, idempotency_key="k1")
    assert err.value.code == "idempotency_key_reused" and err.value.status == 422


def _run_concurrently(functions):
    barrier = threading.Barrier(len(functions))
    results, errors = [], []

    def run(fn):
        try:
            barrier.wait()
            results.append(fn())
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in functions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_issues_get_unique_contiguous_folios(merchant, branch, make_ticket, receptor):
    tickets = [make_ticket(branch, number=f"C{i}") for i in range(50)]
    assert connection.vendor == "postgresql"
    results, errors = _run_concurrently(
        [lambda t=t: invoice_issue(merchant=merchant, ticket_ids=[t.pk], receptor=receptor) for t in tickets]
    )
    assert errors == []
    folios = sorted(Invoice.objects.values_list("folio", flat=True))
    assert folios == list(range(1, 51))


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_for_one_ticket_make_exactly_one_invoice(merchant, ticket, receptor):
    results, errors = _run_concurrently(
        [lambda: invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)] * 2
    )
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], InvoicingError) and errors[0].code == "ticket_already_invoiced"
    assert Invoice.objects.count() == 1 and FolioCounter.objects.get().next_folio == 2


@pytest.mark.parametrize("field,value,message", [
    ("rfc", "ABC", "no tiene un formato válido"),
    ("rfc", "XAXX010101000", "RFC genérico"),
    ("tax_regime", "601", "no corresponde a una persona física"),
    ("cfdi_use", "G01", "no se permite"),
    ("postal_code", "123", "5 dígitos"),
])
def test_bad_receptor_data_is_refused_before_any_ticket_is_locked(merchant, ticket, receptor, field, value, message):
    import dataclasses

    bad = dataclasses.replace(receptor, **{field: value})
    if field == "cfdi_use":
        bad = dataclasses.replace(bad, tax_regime="605")  # sueldos y salarios cannot deduct purchases (G01)
    with pytest.raises(InvoicingError) as err:
        invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=bad)
    assert err.value.status == 400 and err.value.code == "invalid_receptor"
    assert message in " ".join(err.value.details[field])
    assert Ticket.objects.get(pk=ticket.pk).status == "open" and not Invoice.objects.exists()
