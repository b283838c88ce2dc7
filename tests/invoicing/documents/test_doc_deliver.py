"""Delivery after stamping, per invoice: a row written with the stamp, drained one invoice at a time by the
deliver queue (large invoices by the bulk queue), each retried with backoff on its own, repaired by the sweeper,
and never emailing twice."""

import dataclasses
import datetime as dt

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from infra.models import Event
from invoicing import tasks
from invoicing.delivery_queue import concept_count, deliveries_create, delivery_claim
from invoicing.models import DeliverySlot, Invoice, InvoiceDelivery
from invoicing.services import delivery, documents, invoice_issue
from invoicing.services.stamping import invoices_stamp


@pytest.fixture
def stamped(merchant, branch, certificate, make_ticket, receptor, media_root, queued_tasks,
            django_capture_on_commit_callbacks):
    def make(count=2, emails=True):
        who = receptor if emails else dataclasses.replace(receptor, emails=())
        start = Invoice.objects.count()
        ids = [invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"D{start + i}").pk],
                             receptor=who).pk for i in range(count)]
        with django_capture_on_commit_callbacks(execute=True):
            assert sorted(invoices_stamp(ids)) == sorted(ids)
        return ids

    return make


def _deliveries():
    return {d.pk: d for d in InvoiceDelivery.objects.all()}


def _lane_tasks(queued_tasks):
    return [(queue, args) for queue, func, args in queued_tasks if func == "invoicing.tasks.deliver_documents"]


def test_stamping_writes_each_invoice_its_delivery_and_wakes_its_lane(stamped, queued_tasks):
    ids = stamped(2)
    rows = _deliveries()
    assert sorted(rows) == sorted(ids)
    assert all(d.status == "pending" and d.send_email and not d.large and d.concepts == 1 for d in rows.values())
    assert _lane_tasks(queued_tasks) == [("deliver", (False,))]  # one task for the batch, on the deliver queue


def test_nothing_to_deliver_means_no_row_and_no_task(stamped, settings, queued_tasks):
    """PDFs on demand and no address given: nothing is owed."""
    settings.INVOICE_PDF_AFTER_STAMP = False
    stamped(2, emails=False)
    assert not InvoiceDelivery.objects.exists() and _lane_tasks(queued_tasks) == []
    [emailed] = stamped(1, emails=True)
    assert list(_deliveries()) == [emailed] and _lane_tasks(queued_tasks) == [("deliver", (False,))]


def test_each_invoice_gets_its_pdf_and_one_email_even_if_delivered_again(stamped, queued_tasks):
    ids = stamped(2)
    assert queued_tasks.run(-1) == 2  # deliver_documents(False), as the worker runs it
    assert all(Invoice.objects.get(pk=pk).pdf for pk in ids)
    assert len(mail.outbox) == 2 and all(len(m.attachments) == 2 for m in mail.outbox)
    rows = _deliveries()
    assert all(d.status == "delivered" and d.pdf_rendered_at and d.email_sent_at and d.attempts == 1
               for d in rows.values())
    # The same message id on every attempt of the first delivery: a duplicate would collapse in the mail client.
    assert mail.outbox[0].extra_headers["Message-ID"].startswith("<factura-")
    # Pending again (e.g. a download asked for a lost file): the PDF comes back, the email does not go twice.
    InvoiceDelivery.objects.update(status="pending", next_attempt_at=timezone.now())
    assert tasks.deliver_documents(False) == 2
    assert len(mail.outbox) == 2


def test_one_invoice_failing_backs_off_alone_and_is_retried(stamped, monkeypatch, settings):
    first, second = stamped(2)
    real = documents.invoice_pdf_render

    def broken_for_first(*, invoice_id, **kwargs):
        if invoice_id == first:
            raise OSError("disco lleno")
        return real(invoice_id=invoice_id, **kwargs)

    monkeypatch.setattr(delivery, "invoice_pdf_render", broken_for_first)
    before = timezone.now()
    assert tasks.deliver_documents(False) == 2
    rows = _deliveries()
    assert rows[second].status == "delivered" and [m.to for m in mail.outbox] == [["xochilt@example.com"]]
    failed = rows[first]
    assert (failed.status, failed.attempts) == ("pending", 1) and "disco lleno" in failed.last_error
    backoff = settings.INVOICE_DELIVERY_BACKOFF_SECONDS
    assert before + dt.timedelta(seconds=backoff - 1) < failed.next_attempt_at
    assert failed.next_attempt_at < timezone.now() + dt.timedelta(seconds=backoff + 1)
    assert delivery_claim(False) is None  # not due yet

    monkeypatch.setattr(delivery, "invoice_pdf_render", real)  # the disk has room again
    InvoiceDelivery.objects.filter(pk=first).update(next_attempt_at=timezone.now())  # its time came
    assert tasks.deliver_documents(False) == 1
    assert InvoiceDelivery.objects.get(pk=first).status == "delivered" and len(mail.outbox) == 2


def test_a_mail_server_outage_retries_the_email_but_not_the_pdf(stamped, monkeypatch):
    [invoice_id] = stamped(1)
    renders = []
    real = documents.render_invoice_pdf
    monkeypatch.setattr(documents, "render_invoice_pdf", lambda invoice: renders.append(invoice.pk) or real(invoice))
    real_send = EmailMultiAlternatives.send
    monkeypatch.setattr(EmailMultiAlternatives, "send", lambda self, **kw: (_ for _ in ()).throw(
        ConnectionRefusedError("smtp caído")))
    tasks.deliver_documents(False)
    row = InvoiceDelivery.objects.get()
    assert (row.status, row.attempts, row.email_sent_at) == ("pending", 1, None) and row.pdf_rendered_at
    assert "smtp caído" in row.last_error
    monkeypatch.setattr(EmailMultiAlternatives, "send", real_send)  # the mail server is back
    InvoiceDelivery.objects.update(next_attempt_at=timezone.now())
    tasks.deliver_documents(False)
    assert InvoiceDelivery.objects.get().status == "delivered" and len(mail.outbox) == 1
    assert renders == [invoice_id]  # the stored PDF was attached, not rendered again


def test_a_retry_after_the_email_went_out_does_not_send_it_again(stamped, monkeypatch):
    """The worker dies (here: the database write fails) after the mail server accepted the message."""
    [invoice_id] = stamped(1)
    real = delivery.transition
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(kwargs.get("to"))
        if len(calls) == 1:
            raise RuntimeError("conexión perdida")
        return real(*args, **kwargs)

    monkeypatch.setattr(delivery, "transition", fails_once)
    with pytest.raises(RuntimeError):
        tasks.deliver_documents(False)
    assert len(mail.outbox) == 1 and InvoiceDelivery.objects.get().status == "pending"
    # The claim's lease expires (the worker is gone) and the lane is taken up again.
    InvoiceDelivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.deliver_documents(False) == 1
    assert InvoiceDelivery.objects.get().status == "delivered"
    assert len(mail.outbox) == 1
    assert Event.objects.filter(entity="invoice", object_id=invoice_id, data__kind="email_sent").count() == 1


def test_delivery_gives_up_after_its_attempts(stamped, monkeypatch, settings):
    settings.INVOICE_DELIVERY_MAX_ATTEMPTS = 2
    [invoice_id] = stamped(1)
    monkeypatch.setattr(delivery, "invoice_pdf_render", lambda **kw: (_ for _ in ()).throw(OSError("roto")))
    for _ in range(2):
        InvoiceDelivery.objects.update(next_attempt_at=timezone.now())
        tasks.deliver_documents(False)
    row = InvoiceDelivery.objects.get()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    event = Event.objects.get(entity="invoice_delivery", object_id=invoice_id, to_status="failed")
    assert "2 intentos" in event.reason and "roto" in event.reason


def test_the_sweeper_repairs_a_lost_delivery(stamped, queued_tasks):
    """A stamped invoice whose delivery task was lost (a cluster killed with the task in memory), and one whose
    worker died holding it, both get delivered, once."""
    first, second = stamped(2)
    queued_tasks.clear()
    assert tasks.sweep_deliveries() == 1 and queued_tasks == []  # slot armed a moment ago: its task is coming
    DeliverySlot.objects.filter(pk=0).update(armed_at=timezone.now() - dt.timedelta(hours=1))  # it never came
    assert delivery_claim(False) == first  # a worker took one and died: leased
    assert tasks.sweep_deliveries() == 1
    assert _lane_tasks(queued_tasks) == [("deliver", (False,))]
    assert queued_tasks.run(-1) == 1  # the other one; the leased one waits for its lease
    InvoiceDelivery.objects.filter(pk=first).update(next_attempt_at=timezone.now())  # the lease ran out
    queued_tasks.clear()
    assert tasks.sweep_deliveries() == 1 and queued_tasks.run(-1) == 1
    assert set(InvoiceDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert sorted(m.to[0] for m in mail.outbox) == ["xochilt@example.com"] * 2
    queued_tasks.clear()
    assert tasks.sweep_deliveries() == 0 and queued_tasks == []  # nothing owed: nothing enqueued


def test_a_large_invoice_is_delivered_on_the_bulk_queue_and_never_holds_the_small_ones(stamped, settings,
                                                                                         queued_tasks, branch,
                                                                                         make_stamped_invoice):
    settings.INVOICE_PDF_LARGE_CONCEPTS = 3
    big = make_stamped_invoice(branch, lines=4, folio=900)
    assert concept_count(big.stamped_xml) == 4
    assert deliveries_create([big], send_pdf=True) == {True}
    small = stamped(1)
    assert InvoiceDelivery.objects.get(pk=big.pk).large
    lanes = _lane_tasks(queued_tasks)
    assert lanes == [("deliver", (False,))]
    # The deliver queue's task takes the small one only; the large one waits for the bulk queue's.
    assert tasks.deliver_documents(False) == 1
    assert InvoiceDelivery.objects.get(pk=small[0]).status == "delivered"
    assert InvoiceDelivery.objects.get(pk=big.pk).status == "pending"
    queued_tasks.clear()
    assert tasks.sweep_deliveries() == 1
    assert _lane_tasks(queued_tasks) == [("bulk", (True,))]
    assert queued_tasks.run(-1) == 1 and InvoiceDelivery.objects.get(pk=big.pk).status == "delivered"


def test_a_delivery_task_hands_over_when_its_time_is_up(stamped, queued_tasks):
    stamped(3)
    DeliverySlot.objects.update(armed_at=None)
    queued_tasks.clear()
    assert delivery.invoices_deliver_queued(large=False, budget_seconds=0) == 1
    assert _lane_tasks(queued_tasks) == [("deliver", (False,))]  # a fresh task takes the rest
    assert queued_tasks.run(-1) == 2


def test_the_clusters_tick_wakes_a_lane_when_a_retry_falls_due(stamped, queued_tasks):
    from invoicing.delivery_queue import deliveries_next_wait

    [invoice_id] = stamped(1)
    DeliverySlot.objects.update(armed_at=None)
    InvoiceDelivery.objects.update(attempts=1, next_attempt_at=timezone.now() + dt.timedelta(seconds=0.2))
    queued_tasks.clear()
    assert 0 < deliveries_next_wait(False, 0.5) <= 0.2 and queued_tasks == []
    assert deliveries_next_wait(True, 0.5) == 0.5  # the large lane has nothing
    InvoiceDelivery.objects.update(next_attempt_at=timezone.now())
    assert deliveries_next_wait(False, 0.5) == 0.5
    assert _lane_tasks(queued_tasks) == [("deliver", (False,))]


def test_what_the_stamp_owes_is_committed_with_it(merchant, branch, certificate, make_ticket, receptor, media_root,
                                                   django_capture_on_commit_callbacks):
    """The worker dies right after the stamping commit, before anything after it runs: the webhook and the
    delivery are already rows, due now, that the sweepers hand out."""
    from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint
    from invoicing.webhooks.services import due_delivery_ids

    endpoint = WebhookEndpoint.objects.create(merchant=merchant, url="https://erp.example.com/hooks",
                                              secret="whsec_x")
    invoice = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="W1").pk], receptor=receptor)
    with django_capture_on_commit_callbacks(execute=False):  # nothing after the commit happens
        assert invoices_stamp([invoice.pk]) == [invoice.pk]
    [hook] = WebhookDelivery.objects.all()
    assert (hook.endpoint, hook.event, hook.payload["data"]["id"]) == (endpoint, "invoice.stamped", invoice.pk)
    assert due_delivery_ids() == [hook.pk]
    assert delivery_claim(False) == invoice.pk


def test_a_broker_down_at_wake_up_leaves_the_lane_free_for_the_next_one(stamped, queued_tasks, monkeypatch):
    from invoicing.delivery_queue import deliveries_wake

    stamped(1)
    DeliverySlot.objects.update(armed_at=None)
    queued_tasks.clear()

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker caído")

    monkeypatch.setattr("django_q.tasks.async_task", broker_down)
    assert deliveries_wake(False) is False
    assert DeliverySlot.objects.get(pk=0).armed_at is None  # no task is coming: not marked as if one were
