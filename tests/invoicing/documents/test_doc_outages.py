"""Delivery through a PostgreSQL outage: the invoice a task held is due again as soon as the database is back,
without counting an attempt, and the lane's slot is freed and woken. Before, the delivery stayed leased for
INVOICE_DELIVERY_LEASE_SECONDS (six minutes by default) and the slot armed until it went stale."""

import psycopg
import pytest
from django.core import mail
from django.db import OperationalError
from django.utils import timezone

from invoicing import tasks
from invoicing.models import DeliverySlot, Invoice, InvoiceDelivery
from invoicing.services import delivery, invoice_issue
from invoicing.services.stamping import invoices_stamp


def _database_gone() -> OperationalError:
    error = OperationalError("consuming input failed: server closed the connection unexpectedly")
    error.__cause__ = psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")
    return error


@pytest.fixture
def stamped(merchant, branch, certificate, make_ticket, receptor, media_root, queued_tasks,
            django_capture_on_commit_callbacks):
    start = Invoice.objects.count()
    ids = [invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"P{start + i}").pk],
                         receptor=receptor).pk for i in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        assert sorted(invoices_stamp(ids)) == sorted(ids)
    queued_tasks.clear()
    return ids


@pytest.fixture
def database_back(monkeypatch):
    waited = []
    monkeypatch.setattr("infra.outages.database_wait", lambda seconds, **kw: waited.append(seconds) or True)
    return waited


def _lane_tasks(queued_tasks):
    return [args for queue, func, args in queued_tasks if func == "invoicing.tasks.deliver_documents"]


def test_database_gone_mid_delivery_hands_the_invoice_back_due_now(stamped, queued_tasks, database_back,
                                                                   monkeypatch):
    first, second = stamped
    DeliverySlot.objects.filter(pk=0).update(armed_at=timezone.now())  # its task was queued
    real_render = delivery.invoice_pdf_render

    def render(*, invoice_id):
        if invoice_id == first:
            raise _database_gone()
        return real_render(invoice_id=invoice_id)

    monkeypatch.setattr(delivery, "invoice_pdf_render", render)
    before = timezone.now()
    with pytest.raises(OperationalError):
        tasks.deliver_documents(False)
    row = InvoiceDelivery.objects.get(pk=first)
    assert database_back  # it waited for the database
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, "")  # not counted as its failure
    assert before <= row.next_attempt_at <= timezone.now()  # due again now, not after the lease
    assert _lane_tasks(queued_tasks) == [(False,)]  # the lane is woken: a task is coming
    monkeypatch.setattr(delivery, "invoice_pdf_render", real_render)
    pending = InvoiceDelivery.objects.filter(status="pending").count()  # 2, or 1 if the other went first
    assert queued_tasks.run(-1) == pending
    assert set(InvoiceDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert len(mail.outbox) == 2


def test_another_failure_still_backs_off_as_that_invoices_own(stamped, database_back, monkeypatch):
    first, _ = stamped
    monkeypatch.setattr(delivery, "invoice_pdf_render", lambda **kw: (_ for _ in ()).throw(OSError("disco lleno")))
    tasks.deliver_documents(False)
    row = InvoiceDelivery.objects.get(pk=first)
    assert row.attempts == 1 and "disco lleno" in row.last_error and row.next_attempt_at > timezone.now()
    assert database_back == []
