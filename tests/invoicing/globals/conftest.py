"""Fixtures for the factura global tests: sales at chosen local times, and a synchronous "worker"."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.db.models import Q
from django.utils import timezone

from invoicing.models import Invoice, LateRequest


@pytest.fixture
def sale(make_ticket):
    """make a ticket sold at a local wall time of the branch's merchant: sale(branch, "T1", "2026-03-07 23:30")."""

    def make(branch, number, local: str | dt.datetime, total="116.00", **kwargs):
        tz = zoneinfo.ZoneInfo(branch.merchant.time_zone)
        moment = local if isinstance(local, dt.datetime) else dt.datetime.fromisoformat(local).replace(tzinfo=tz)
        return make_ticket(branch, number=number, total=Decimal(total), sold_at=moment, **kwargs)

    return make


@pytest.fixture
def yesterday(merchant):
    """A local noon of yesterday in the merchant's zone (a closed daily period, stampable today)."""
    tz = merchant.tzinfo
    return (timezone.localtime(timezone.now(), tz) - dt.timedelta(days=1)).replace(hour=12, minute=0, second=0,
                                                                                     microsecond=0)


def stampable():
    now = timezone.now()
    return Invoice.objects.filter(status__in=(Invoice.Status.PENDING, Invoice.Status.SEALED)).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


@pytest.fixture
def worker():
    """Run what the django-q2 cluster would: drain the stamping queue and advance late requests until stable."""
    from invoicing.services.stamping import invoices_stamp_queued
    from invoicing.tasks_global import advance_late_request

    def run(rounds: int = 10) -> None:
        for _ in range(rounds):
            waiting = stampable().exists()
            active = list(LateRequest.objects.filter(status=LateRequest.Status.IN_PROGRESS).values_list("pk", flat=True))
            invoices_stamp_queued()
            for pk in active:
                advance_late_request(pk)
            if not waiting and not active:
                return

    return run


@pytest.fixture
def sat_cert(db):
    from invoicing.pac.sandbox import sandbox_certificate_row

    return bytes(sandbox_certificate_row().cer_der)
