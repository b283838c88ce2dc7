"""Staff's "reintentar ahora": an invoice backing off after a PAC error goes back to the PAC at once, through the
stamp_invoice task, with the same sealed XML; nothing else is touched, and never another merchant's invoice."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from infra.models import Event
from invoicing import tasks
from invoicing.models import Invoice, LateRequest
from invoicing.pac.base import PacError
from invoicing.pac.sandbox import SandboxPac
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoice_retry_now, invoices_stamp
from invoicing.stamp_queue import invoices_claim


@pytest.fixture
def queued(monkeypatch):
    """The tasks enqueued, as (function, args)."""
    out = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kw: out.append((func, args)))
    return out


@pytest.fixture
def backing_off(merchant, branch, make_ticket, receptor, certificate, monkeypatch):
    """An invoice sealed, sent, and waiting out a PAC timeout."""
    invoice = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="R1").pk], receptor=receptor)
    real = SandboxPac.stamp_many
    monkeypatch.setattr(SandboxPac, "stamp_many",
                        lambda self, xmls: [PacError("timeout", "El PAC no respondió a tiempo.", permanent=False)])
    assert invoices_stamp([invoice.pk]) == []
    monkeypatch.setattr(SandboxPac, "stamp_many", real)
    invoice.refresh_from_db()
    assert invoice.status == "sealed" and invoice.next_attempt_at > timezone.now()
    later = timezone.now() + dt.timedelta(minutes=40)  # further into the backoff: a slow test never reaches it
    Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=later)
    invoice.next_attempt_at = later
    return invoice


def test_retry_now_resends_the_same_sealed_xml_through_the_stamp_invoice_task(backing_off, queued,
                                                                              django_capture_on_commit_callbacks):
    sealed = bytes(backing_off.sealed_xml)
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_retry_now(invoice_id=backing_off.pk, actor="ana") is True
    assert queued == [("invoicing.tasks.stamp_invoice", (backing_off.pk,))]
    event = Event.objects.filter(entity="invoice", object_id=backing_off.pk, actor="ana").get()
    assert event.from_status == event.to_status == "sealed" and "reintento de timbrado solicitado" in event.reason
    assert tasks.stamp_invoice(backing_off.pk) == "stamped"
    backing_off.refresh_from_db()
    assert bytes(backing_off.sealed_xml) == sealed and backing_off.uuid and backing_off.attempts == 2


def test_only_an_invoice_waiting_out_a_transient_error_is_retried(backing_off, merchant, branch, make_ticket,
                                                                  receptor, queued,
                                                                  django_capture_on_commit_callbacks):
    fresh = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="R2").pk], receptor=receptor)
    parked = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="R3").pk], receptor=receptor)
    Invoice.objects.filter(pk=parked.pk).update(status="on_hold", attempts=1,
                                                next_attempt_at=timezone.now() + dt.timedelta(days=30))
    LateRequest.objects.create(merchant=merchant, policy="credit_note", invoice=parked)
    failed = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="R4").pk], receptor=receptor)
    Invoice.objects.filter(pk=failed.pk).update(status="failed", attempts=1, last_error_permanent=True,
                                                next_attempt_at=timezone.now() + dt.timedelta(hours=1))
    Invoice.objects.filter(pk=backing_off.pk).update(status="stamped")
    events = Event.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        for invoice in (fresh, parked, failed, backing_off):
            assert invoice_retry_now(invoice_id=invoice.pk, actor="ana") is False
    assert queued == [] and Event.objects.count() == events
    assert Invoice.objects.get(pk=parked.pk).next_attempt_at > timezone.now() + dt.timedelta(days=29)


def test_stamp_invoice_leaves_alone_an_invoice_a_batch_has_claimed(merchant, ticket, receptor, certificate):
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert invoices_claim() == [invoice.pk]  # a batch task holds its lease
    assert tasks.stamp_invoice(invoice.pk) == "pending"
    assert not Event.objects.filter(entity="invoice", object_id=invoice.pk, to_status="sealed").exists()


def test_admin_retry_now_action_for_own_invoices_only(client, make_staff, backing_off, other_merchant, queued,
                                                     django_capture_on_commit_callbacks):
    url = reverse("admin:invoicing_invoice_changelist")
    client.force_login(make_staff(other_merchant, "staff-b"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "retry_now", "_selected_action": [backing_off.pk]}, follow=True)
    assert queued == [] and Invoice.objects.get(pk=backing_off.pk).next_attempt_at > timezone.now()

    client.force_login(make_staff(backing_off.merchant, "staff-a"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "retry_now", "_selected_action": [backing_off.pk]}, follow=True)
    assert response.status_code == 200
    assert "1 factura(s) se enviarán de nuevo al PAC ahora" in response.content.decode()
    assert queued == [("invoicing.tasks.stamp_invoice", (backing_off.pk,))]
    response = client.post(url, {"action": "retry_now", "_selected_action": [backing_off.pk]}, follow=True)
    assert "no esperaban un reintento" in response.content.decode()
