"""After a batch is stamped: one task renders the PDFs and emails them; one invoice's problem stays its own."""

import dataclasses

import pytest
from django.core import mail

from invoicing import tasks
from invoicing.models import Invoice
from invoicing.services import documents, invoice_issue
from invoicing.services.stamping import invoices_stamp


@pytest.fixture
def stamped(merchant, branch, certificate, make_ticket, receptor):
    def make(count=2, emails=True):
        who = receptor if emails else dataclasses.replace(receptor, emails=())
        start = Invoice.objects.count()
        ids = [invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"D{start + i}").pk],
                             receptor=who).pk for i in range(count)]
        assert sorted(invoices_stamp(ids)) == sorted(ids)
        return ids

    return make


def test_each_invoice_gets_its_pdf_and_one_email_even_if_the_task_runs_twice(stamped):
    ids = stamped(2)
    tasks.deliver_stamped(ids)
    assert all(Invoice.objects.get(pk=pk).pdf for pk in ids)
    assert len(mail.outbox) == 2 and all(len(m.attachments) == 2 for m in mail.outbox)
    tasks.deliver_stamped(ids)  # a retried task
    assert len(mail.outbox) == 2


def test_one_invoice_failing_to_render_does_not_hold_back_the_others(stamped, monkeypatch):
    first, second = stamped(2)
    real = documents.invoice_pdf_render

    def broken_for_first(*, invoice_id, **kwargs):
        if invoice_id == first:
            raise OSError("disk full")
        return real(invoice_id=invoice_id, **kwargs)

    monkeypatch.setattr(documents, "invoice_pdf_render", broken_for_first)
    tasks.deliver_stamped([first, second])
    assert not Invoice.objects.get(pk=first).pdf and Invoice.objects.get(pk=second).pdf
    assert [m.to for m in mail.outbox] == [["xochilt@example.com"]]


def test_nothing_to_deliver_means_no_task(stamped, settings, monkeypatch, django_capture_on_commit_callbacks):
    """PDFs on demand and no address given: the batch enqueues no documents task at all."""
    settings.INVOICE_PDF_AFTER_STAMP = False
    queued = []
    monkeypatch.setattr(tasks, "async_task", lambda func, *args, **kw: queued.append((func, args)))
    with django_capture_on_commit_callbacks(execute=True):
        stamped(2, emails=False)
    assert queued == []
    with django_capture_on_commit_callbacks(execute=True):
        ids = stamped(1, emails=True)
    assert queued == [("invoicing.tasks.deliver_stamped", (ids,))]
