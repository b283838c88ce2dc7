"""The per-PAC circuit breaker (invoicing/services/pac_circuit.py): what it counts, when it opens, one probe at a
time across workers, and back to closed; and a second stamp of one sale found when it is stored."""

import datetime as dt

import pytest
from django.db import connection  # noqa: F401 - read by the skipif conditions
from django.utils import timezone
from fakes import FINKOK_PASSWORD, FINKOK_USER

from infra.models import Event
from invoicing.models import Cancellation, ExtraStamp, Invoice, PacCircuit
from invoicing.pac.base import INVALID, NOT_SENT, REFUSED, UNKNOWN, PacError
from invoicing.pac.finkok import FinkokPac
from invoicing.services.pac_circuit import circuit_probe_claim, circuit_record, circuits_read


def down(outcome=NOT_SENT):
    return PacError("connection", "No fue posible conectar.", permanent=False, outcome=outcome)


@pytest.fixture
def pac(db, settings):
    settings.PAC_CIRCUIT_FAILURES = 3
    settings.PAC_CIRCUIT_OPEN_SECONDS = 30
    return FinkokPac(username="u", password="p", base_url="http://127.0.0.1:9")


def test_a_healthy_pac_is_never_written(pac, django_assert_num_queries):
    known = circuits_read([pac])[pac.circuit_key]
    with django_assert_num_queries(0):
        circuit_record(pac, [object(), object()], known=known)
    assert not PacCircuit.objects.exists()


def test_service_failures_in_a_row_open_it_and_answers_do_not_count(pac):
    circuit_record(pac, [down(), down(UNKNOWN)])
    # A bad document or a wrong password is the PAC answering: the count starts again.
    circuit_record(pac, [PacError("CFDI40102", "x", permanent=True, outcome=INVALID)])
    circuit_record(pac, [PacError("300", "x", permanent=True, outcome=REFUSED)])
    assert PacCircuit.objects.get().state == "closed" and PacCircuit.objects.get().failures == 0
    row = circuit_record(pac, [object(), down(), down(), down()])  # only the failures after the last answer count

    assert (row.state, row.failures) == ("open", 3)
    assert row.retry_at == row.opened_at + dt.timedelta(seconds=30)
    assert "conectar" in row.last_error


def test_finkok_unable_to_reach_sat_counts_as_the_service_down(pac):
    row = circuit_record(pac, [PacError("708", "x", permanent=False, outcome=REFUSED)] * 3)
    assert row.state == "open"


def test_one_probe_after_the_pause_then_closed_or_open_again(pac):
    circuit_record(pac, [down()] * 3)
    assert circuit_probe_claim(pac) is False  # still within the pause
    PacCircuit.objects.update(retry_at=timezone.now())

    assert circuit_probe_claim(pac) is True
    assert circuit_probe_claim(pac) is False  # another worker: the probe is taken
    assert PacCircuit.objects.get().state == "half_open"
    row = circuit_record(pac, [down()])  # the probe failed: a full pause again
    assert row.state == "open" and row.retry_at > timezone.now() + dt.timedelta(seconds=25)

    PacCircuit.objects.update(retry_at=timezone.now())
    assert circuit_probe_claim(pac) is True
    row = circuit_record(pac, [object()])
    assert (row.state, row.failures, row.retry_at) == ("closed", 0, None)


def test_a_probe_whose_worker_died_is_taken_again_after_its_lease(pac):
    circuit_record(pac, [down()] * 3)
    PacCircuit.objects.update(retry_at=timezone.now())
    assert circuit_probe_claim(pac) is True
    PacCircuit.objects.update(probe_until=timezone.now() - dt.timedelta(seconds=1))
    assert circuit_probe_claim(pac) is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks")
@pytest.mark.postgres
def test_many_workers_one_probe(run_together, settings):
    settings.PAC_CIRCUIT_FAILURES = 1
    pac = FinkokPac(username="u", password="p", base_url="http://127.0.0.1:9")
    circuit_record(pac, [down()])
    PacCircuit.objects.update(retry_at=timezone.now())

    results, errors = run_together([lambda: circuit_probe_claim(pac)] * 8)

    assert not errors and sorted(results) == [False] * 7 + [True]


# --- a second stamp found when it is stored ------------------------------------------------------------------


def test_a_late_answer_with_another_uuid_is_cancelled_and_the_invoice_keeps_its_own(
        merchant, branch, certificate, receptor, make_ticket, finkok_server, monkeypatch, settings, queued_tasks,
        django_capture_on_commit_callbacks):
    """Two workers stamped one invoice at two PACs (a lease that ran out while one waited): the one stored first
    is the invoice's; the late one is an extra stamp, cancelled with motivo 02 at the PAC that made it."""
    from invoicing.pac import finkok
    from invoicing.services import invoice_issue
    from invoicing.services.cancel import cancellation_advance
    from invoicing.services.stamping import _store_outcomes, invoices_stamp_queued

    settings.INVOICE_STAMP_LINGER_MS = 0
    monkeypatch.setitem(finkok.URLS, "test", finkok_server.url)
    merchant.pac_secondary, merchant.pac_secondary_username = "finkok", FINKOK_USER
    merchant.pac_secondary_password = FINKOK_PASSWORD
    merchant.save()
    invoice = invoice_issue(merchant=merchant, receptor=receptor, ticket_ids=[make_ticket(branch).pk])
    invoices_stamp_queued()  # the sandbox (primary) stamps it
    invoice.refresh_from_db()
    legal = str(invoice.uuid).upper()
    late = FinkokPac(username=FINKOK_USER, password=FINKOK_PASSWORD, base_url=finkok_server.url).stamp(
        bytes(invoice.sealed_xml))

    with django_capture_on_commit_callbacks(execute=True):
        assert _store_outcomes("finkok", [invoice], [late]) == []
        _store_outcomes("finkok", [invoice], [late])  # found again: recorded once

    invoice.refresh_from_db()
    assert (invoice.status, str(invoice.uuid).upper(), invoice.pac) == ("stamped", legal, "sandbox")
    extra = ExtraStamp.objects.get()
    assert (str(extra.uuid).upper(), extra.pac, extra.how) == (late.uuid, "finkok", "late_answer")
    cancellation = Cancellation.objects.get(extra_stamp=extra)
    assert (cancellation.motive, cancellation.source, cancellation.status) == ("02", "duplicate", "requested")

    assert cancellation_advance(cancellation_id=cancellation.pk) == "cancelled"
    assert finkok_server.cancellations[late.uuid]["motivo"] == "02"
    invoice.refresh_from_db()
    assert invoice.status == "stamped"  # the invoice never moved for it
    reasons = list(Event.objects.filter(entity="invoice", object_id=invoice.pk, data__kind="extra_stamp")
                   .order_by("pk").values_list("reason", flat=True))
    assert "segundo folio fiscal" in reasons[0] and legal in reasons[0] and "cancelado" in reasons[1]
    # The invoice's own cancellation is still possible: the extra stamp's request is not its.
    from invoicing.services.cancel import cancellation_request, latest_cancellation

    assert latest_cancellation(invoice) is None
    cancellation_request(merchant=merchant, invoice_id=invoice.pk, motive="02")
    assert Invoice.objects.get(pk=invoice.pk).status == "cancelling"
