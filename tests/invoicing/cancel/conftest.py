"""Fixtures for cancellations: invoices really stamped by the sandbox PAC, aged at will, and a follow-up "worker"."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from invoicing.models import Cancellation, Invoice
from invoicing.pac.models import SandboxStamp


@pytest.fixture(autouse=True)
def _quiet_queue(settings):
    settings.INVOICE_STAMP_LINGER_MS = 0
    settings.SANDBOX_PAC_CANCEL_ANSWER = "accept"
    settings.SANDBOX_PAC_SAT_DOWN = False


@pytest.fixture
def stamp_all():
    """Drain the stamping queue as the workers would."""
    from invoicing.services.stamping import invoices_stamp_queued

    def run():
        for _ in range(10):
            if not invoices_stamp_queued():
                return

    return run


@pytest.fixture
def stamped(branch, make_ticket, certificate, receptor, stamp_all):
    """stamped(total="116.00", number=None, receptor=…) → an ingreso stamped by the sandbox, with its ticket."""
    from invoicing.services import invoice_issue

    counter = iter(range(1, 1000))

    def make(total="116.00", number=None, receptor_data=None, **kwargs):
        ticket = make_ticket(branch, number=number or f"T{next(counter)}", total=Decimal(total), **kwargs)
        invoice = invoice_issue(merchant=branch.merchant, ticket_ids=[ticket.pk], receptor=receptor_data or receptor)
        stamp_all()
        invoice.refresh_from_db()
        assert invoice.status == "stamped", invoice.last_error_message
        return invoice

    return make


@pytest.fixture
def age():
    """age(invoice, days): as if issued and stamped ``days`` ago (at SAT, the sandbox, too)."""

    def back(invoice, days: float):
        moment = timezone.now() - dt.timedelta(days=days)
        Invoice.objects.filter(pk=invoice.pk).update(issued_at=moment, stamped_at=moment)
        SandboxStamp.objects.filter(uuid=str(invoice.uuid).upper()).update(stamped_at=moment)
        invoice.refresh_from_db()
        return invoice

    return back


@pytest.fixture
def follow_up():
    """Run the periodic follow-up as if every backoff had passed; returns the statuses of the cancellations."""
    from invoicing.tasks_cancel import follow_up_cancellations

    def run(rounds: int = 1):
        for _ in range(rounds):
            Cancellation.objects.filter(status__in=Cancellation.ACTIVE).update(next_check_at=None)
            follow_up_cancellations()
        return list(Cancellation.objects.order_by("pk").values_list("status", flat=True))

    return run


@pytest.fixture
def sat_cert(db):
    from invoicing.pac.sandbox import sandbox_certificate_row

    return bytes(sandbox_certificate_row().cer_der)
