"""The invoice lifecycle (invoicing/lifecycle.py): the transition table, the guarded write, its bulk and SQL twins,
and a scan proving nothing else writes an invoice's status."""

import ast
import itertools
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from infra.models import Event
from invoicing import lifecycle
from invoicing.lifecycle import (
    FINAL,
    IN_FLIGHT,
    LEGAL,
    TRANSITIONS,
    IllegalTransition,
    invoice_transition,
    invoice_transitions_bulk,
)
from invoicing.models import Invoice
from invoicing.services.issue_write import _write_one_statement, _write_orm, tickets_read

STATUSES = [s.value for s in Invoice.Status]
ROOT = Path(__file__).resolve().parents[2]


def make_invoice(branch, status: str, **fields) -> Invoice:
    # Tests place an invoice in any status directly: that is the point of the table test.
    return Invoice.objects.create(merchant=branch.merchant, branch=branch, serie="F", status=status,
                                  receptor_rfc="XAXX010101000", receptor_name="PUBLICO EN GENERAL",
                                  receptor_tax_regime="616", receptor_postal_code="06600", receptor_cfdi_use="S01",
                                  **fields)


def test_every_status_is_in_the_table_and_every_target_is_a_status():
    assert set(TRANSITIONS) == {lifecycle.CREATED, *STATUSES}
    for targets in TRANSITIONS.values():
        assert targets <= set(STATUSES)
    assert set(FINAL) == {"failed", "cancelled", "withdrawn"}
    assert set(IN_FLIGHT) == {"pending", "sealed"}
    assert set(LEGAL) == {"stamped", "cancelling", "cancel_pending", "cancelled"}
    # Every status can be reached from creation.
    reached, frontier = set(), {lifecycle.CREATED}
    while frontier:
        nxt = set().union(*(TRANSITIONS[s] for s in frontier)) - reached
        reached |= nxt
        frontier = nxt
    assert reached == set(STATUSES)


@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(STATUSES, STATUSES)))
def test_a_transition_happens_with_its_event_exactly_when_the_table_allows_it(branch, from_status, to_status):
    invoice = make_invoice(branch, from_status)
    events = Event.objects.filter(entity="invoice", object_id=invoice.pk)
    if to_status in TRANSITIONS[from_status]:
        assert invoice_transition(invoice, to=to_status, actor="ana", reason="prueba") is True
        assert Invoice.objects.get(pk=invoice.pk).status == to_status == invoice.status
        [event] = events
        assert (event.from_status, event.to_status, event.actor, event.reason) == (
            from_status, to_status, "ana", "prueba")
        assert event.merchant_id == branch.merchant_id
    else:
        with pytest.raises(IllegalTransition):
            invoice_transition(invoice, to=to_status)
        assert Invoice.objects.get(pk=invoice.pk).status == from_status
        assert not events.exists()


def test_the_transition_is_guarded_a_stale_copy_changes_nothing(branch):
    invoice = make_invoice(branch, "pending")
    stale = Invoice.objects.get(pk=invoice.pk)
    assert invoice_transition(invoice, to="sealed") is True
    assert invoice_transition(stale, to="failed") is False  # someone sealed it meanwhile
    assert Invoice.objects.get(pk=invoice.pk).status == "sealed"
    assert Event.objects.filter(entity="invoice", object_id=invoice.pk).count() == 1


def test_an_illegal_expected_status_raises_even_if_the_row_is_elsewhere(branch):
    invoice = make_invoice(branch, "pending")
    with pytest.raises(IllegalTransition):
        invoice_transition(invoice, expected=("pending", "stamped"), to="sealed")  # stamped → sealed is not a move


def test_extra_fields_land_with_the_status(branch):
    invoice = make_invoice(branch, "sealed")
    invoice_transition(invoice, to="failed", last_error_code="CFDI40999", last_error_permanent=True)
    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.status, stored.last_error_code, stored.last_error_permanent) == ("failed", "CFDI40999", True)


def _event_rows(invoice_ids):
    return sorted(Event.objects.filter(entity="invoice", object_id__in=invoice_ids)
                  .values_list("from_status", "to_status", "reason", "actor"))


def test_the_bulk_twin_writes_the_same_rows_as_one_by_one(branch):
    one_by_one = [make_invoice(branch, "pending") for _ in range(3)]
    bulk = [make_invoice(branch, "pending") for _ in range(3)]
    for invoice in one_by_one:
        invoice.sealed_xml = b"<x/>"
        invoice_transition(invoice, to="sealed", reason="sellado", actor="worker", sealed_xml=invoice.sealed_xml)
    for invoice in bulk:
        invoice.sealed_xml = b"<x/>"
    invoice_transitions_bulk(bulk, from_status="pending", to="sealed", fields=["sealed_xml"],
                             reasons=["sellado"] * 3, actor="worker")
    assert _event_rows([i.pk for i in one_by_one]) == _event_rows([i.pk for i in bulk])
    for a, b in zip(one_by_one, bulk, strict=True):
        a, b = Invoice.objects.get(pk=a.pk), Invoice.objects.get(pk=b.pk)
        assert (a.status, bytes(a.sealed_xml)) == (b.status, bytes(b.sealed_xml)) == ("sealed", b"<x/>")


def test_the_bulk_twin_refuses_what_the_table_refuses(branch):
    invoice = make_invoice(branch, "stamped")
    with pytest.raises(IllegalTransition):
        invoice_transitions_bulk([invoice], from_status="stamped", to="sealed", fields=[])
    wrong = make_invoice(branch, "failed")
    with pytest.raises(IllegalTransition):  # an instance not in from_status
        invoice_transitions_bulk([wrong], from_status="pending", to="sealed", fields=[])
    assert not Event.objects.filter(entity="invoice").exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the one-statement issue path is PostgreSQL's")
def test_the_issue_paths_sql_twin_writes_the_same_rows_as_the_orm_path(branch, make_ticket):
    from invoicing.models import FolioCounter

    FolioCounter.objects.create(merchant=branch.merchant, serie="F")
    written = []
    for number, write in (("ORM", _write_orm), ("SQL", lambda *a, **k: _write_one_statement(*a, **k)[0])):
        ticket = make_ticket(branch, number=number, total=Decimal("116.00"))
        [values] = tickets_read(merchant_id=branch.merchant_id, ids=[ticket.pk])
        invoice = Invoice(merchant=branch.merchant, branch=branch, serie="F", receptor_rfc="XAXX010101000",
                          receptor_name="X", receptor_tax_regime="616", receptor_postal_code="06600",
                          receptor_cfdi_use="S01", total=values.total)
        assert write(invoice, [values], actor="api:pos") is True
        written.append(invoice)
    orm, sql = written
    assert Invoice.objects.get(pk=orm.pk).status == Invoice.objects.get(pk=sql.pk).status == "pending"
    assert _event_rows([orm.pk]) == _event_rows([sql.pk])
    assert _event_rows([orm.pk])[0][:2] == ("", "pending")
    assert connection.vendor == "postgresql"


# --- nothing else writes an invoice's status -------------------------------------------------------------

ALLOWED = {"invoicing/lifecycle.py", "infra/events.py"}  # the transition and the generic guarded update
SOURCES = ["invoicing", "portal", "tickets", "infra"]


def _invoice_status_writes(path: Path) -> list[str]:
    """Lines that write Invoice.status: ``….update(status=…)`` on a chain that starts at ``Invoice``, an
    assignment ``x.status = Invoice.Status.…``, or SQL text that sets the invoices table's status."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def chain_root(node):
        while isinstance(node, ast.Attribute | ast.Call):
            node = node.value if isinstance(node, ast.Attribute) else node.func
        return node.id if isinstance(node, ast.Name) else ""

    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("update", "bulk_update")
                and chain_root(node.func) == "Invoice"
                and (any(k.arg == "status" for k in node.keywords)
                     or any(isinstance(a, ast.List | ast.Tuple) and any(
                         isinstance(e, ast.Constant) and e.value == "status" for e in a.elts) for a in node.args))):
            found.append(f"{path}:{node.lineno}")
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (isinstance(target, ast.Attribute) and target.attr == "status"
                        and "Invoice.Status" in ast.unparse(node.value)):
                    found.append(f"{path}:{node.lineno}")
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and "invoicing_invoice" in node.value and "SET status" in node.value):
            found.append(f"{path}:{node.lineno}")
    return found


def test_no_invoice_status_is_written_outside_the_lifecycle():
    offenders = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative in ALLOWED:
                continue
            offenders += _invoice_status_writes(path)
    assert offenders == []


def test_the_scan_would_catch_a_stray_write(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text(
        "def f(invoice):\n"
        "    Invoice.objects.filter(pk=1).update(status='stamped')\n"
        "    invoice.status = Invoice.Status.CANCELLED\n"
        "    sql = 'UPDATE invoicing_invoice SET status = %s'\n",
        encoding="utf-8",
    )
    assert len(_invoice_status_writes(stray)) == 3


def test_timezone_is_aware_in_event_rows(branch):
    invoice = make_invoice(branch, "pending")
    invoice_transition(invoice, to="sealed")
    assert timezone.is_aware(Event.objects.get(entity="invoice", object_id=invoice.pk).created_at)
