"""Stamping through outages: PostgreSQL going away under a stamping task, and a broker that refuses or loses
tasks. Nothing may stay leased or armed until it goes stale: the work is handed back as soon as the service is."""

import psycopg
import pytest
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from invoicing import tasks
from invoicing.management.commands.qcluster import Ticker
from invoicing.models import Invoice, StampSlot
from invoicing.services import invoice_issue, stamping
from invoicing.stamp_queue import invoices_claim, stamp_queue_wake, stamp_slot_disarm
from tickets.models import Ticket


def _database_gone() -> OperationalError:
    error = OperationalError("terminating connection due to administrator command")
    error.__cause__ = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    return error


@pytest.fixture
def database_back(monkeypatch):
    """The database answers again by the time the task looks (infra.outages.database_wait)."""
    waited = []
    monkeypatch.setattr("infra.outages.database_wait", lambda seconds, **kw: waited.append(seconds) or True)
    return waited


@pytest.fixture
def queued(merchant, branch, make_ticket, receptor):
    def make(count=2):
        return [invoice_issue(merchant=merchant, receptor=receptor,
                              ticket_ids=[make_ticket(branch, number=f"O{Ticket.objects.count() + 1}").pk]).pk
                for _ in range(count)]

    return make


def _stamp_tasks(queued_tasks):
    return [args for queue, func, args in queued_tasks if func == "invoicing.tasks.stamp_batch"]


def test_a_wake_up_the_broker_refuses_leaves_the_slot_free(db, monkeypatch, settings):
    """Before: the slot stayed armed for a task that never came, and stamping waited until it went stale
    (INVOICE_STUCK_AFTER_SECONDS) after the broker was back."""
    settings.INVOICE_STAMP_SLOTS = 1

    def refused(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("invoicing.stamp_queue.enqueue", refused)
    assert stamp_queue_wake() is None
    assert StampSlot.objects.get(pk=0).armed_at is None
    sent = []
    monkeypatch.setattr("invoicing.stamp_queue.enqueue", lambda func, *args, **kw: sent.append(args) or "task")
    assert stamp_queue_wake() == 0 and sent == [(0,)]  # the next wake-up (the tick) gets its task at once


def test_database_gone_mid_batch_hands_the_invoices_and_the_slot_back(queued, queued_tasks, database_back,
                                                                      monkeypatch, settings):
    """Before: the invoices stayed leased for INVOICE_STUCK_AFTER_SECONDS and the failed task's slot stayed
    armed, so nothing stamped for minutes after PostgreSQL was back."""
    ids = queued(2)
    StampSlot.objects.filter(pk=0).update(armed_at="2026-01-01T00:00:00Z")  # its task was queued

    def gone(invoice_ids):
        raise _database_gone()

    monkeypatch.setattr(stamping, "invoices_stamp", gone)
    with pytest.raises(OperationalError):
        tasks.stamp_batch(0)
    assert set(database_back) == {settings.INVOICE_STUCK_AFTER_SECONDS}  # it waited for the database
    assert set(Invoice.objects.filter(pk__in=ids).values_list("lease_until", flat=True)) == {None}
    assert sorted(invoices_claim()) == sorted(ids)  # claimable again now
    assert _stamp_tasks(queued_tasks) == [(0,)]  # the queue is woken: a task is coming


def test_database_gone_before_the_disarm_frees_the_slot_once_it_is_back(db, queued, queued_tasks, database_back,
                                                                        monkeypatch, settings):
    settings.INVOICE_STAMP_SLOTS = 1
    queued(1)
    StampSlot.objects.filter(pk=0).update(armed_at="2026-01-01T00:00:00Z")
    calls = []

    def disarm_fails_first(slot):
        calls.append(slot)
        if len(calls) == 1:
            raise _database_gone()
        return stamp_slot_disarm(slot)

    monkeypatch.setattr("invoicing.tasks.stamp_slot_disarm", disarm_fails_first)
    with pytest.raises(OperationalError):
        tasks.stamp_batch(0)
    assert calls == [0, 0]
    assert _stamp_tasks(queued_tasks) == [(0,)]  # freed, then armed again for a task that is coming


def test_a_bug_is_not_an_outage_the_lease_paces_its_retries(queued, queued_tasks, database_back, monkeypatch):
    ids = queued(1)

    def bug(invoice_ids):
        raise ZeroDivisionError

    monkeypatch.setattr(stamping, "invoices_stamp", bug)
    with pytest.raises(ZeroDivisionError):
        tasks.stamp_batch(0)
    assert database_back == [] and Invoice.objects.get(pk=ids[0]).lease_until is not None
    assert invoices_claim() == []


class _FakeTick:
    def __init__(self):
        self.restarts = 0
        self.epochs = ["run-1"]
        self.fail = False

    def epoch(self, queue):
        if self.fail:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return self.epochs[-1]

    def restart(self):
        self.restarts += 1


def test_the_cluster_resets_its_queue_when_the_broker_comes_back(monkeypatch):
    """Redis killed and back empty: the tasks it held (armed slots, waiting batches) are gone. Before, the slots
    waited to go stale and the batches for their lease to run out."""
    fake = _FakeTick()
    monkeypatch.setattr("invoicing.management.commands.qcluster.broker_epoch", fake.epoch)
    monkeypatch.setattr("invoicing.management.commands.qcluster.close_old_connections", lambda: None)
    ticker = Ticker("stamp", fake.restart, lambda wait: wait)
    assert ticker.step(0.5) == 0.5 and fake.restarts == 0
    fake.fail = True
    assert ticker.step(0.5) == 1.0 and ticker.step(0.5) == 1.0  # away: nothing is enqueued meanwhile
    fake.fail = False
    fake.epochs.append("run-2")
    ticker.step(0.5)
    assert fake.restarts == 1
    ticker.step(0.5)
    assert fake.restarts == 1  # once per outage
    fake.epochs.append("run-3")  # restarted between two looks, never seen away
    ticker.step(0.5)
    assert fake.restarts == 2


def test_the_cluster_resets_its_queue_after_a_database_outage(monkeypatch):
    fake = _FakeTick()
    monkeypatch.setattr("invoicing.management.commands.qcluster.broker_epoch", fake.epoch)
    monkeypatch.setattr("invoicing.management.commands.qcluster.close_old_connections", lambda: None)
    down = [True]

    def tick(wait):
        if down[0]:
            raise _database_gone()
        return wait

    ticker = Ticker("stamp", fake.restart, tick)
    assert ticker.step(0.5) == 1.0 and fake.restarts == 0
    down[0] = False
    assert ticker.step(0.5) == 0.5 and fake.restarts == 1


def test_broker_epoch_is_the_redis_run_id(monkeypatch):
    from infra import queues

    class FakeRedis:
        def ping(self):
            return True

        def info(self, section):
            assert section == "server"
            return {"run_id": "abc123"}

    class FakeBroker:
        connection = FakeRedis()

    monkeypatch.setattr(queues, "broker", lambda queue: FakeBroker())
    assert queues.broker_epoch("stamp") == "abc123"


def _broker_refuses(monkeypatch):
    def refused(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("django_q.tasks.async_task", refused)
    monkeypatch.setattr("infra.queues.broker", lambda queue: None)


def test_stamping_with_the_broker_away_still_ends_well_and_leaves_rows_for_the_sweepers(
        merchant, queued, certificate, monkeypatch, django_capture_on_commit_callbacks):
    """The stamp commits its deliveries and webhooks; queueing their tasks after the commit fails. Before, the
    webhook's enqueue raised out of the stamping task after the commit (and the callbacks after it never ran)."""
    from invoicing.models import DeliverySlot, InvoiceDelivery
    from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint
    from invoicing.webhooks.services import due_delivery_ids

    WebhookEndpoint.objects.create(merchant=merchant, url="https://erp.example.com/hooks", secret="whsec_x")
    [invoice_id] = queued(1)
    _broker_refuses(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        assert stamping.invoices_stamp([invoice_id]) == [invoice_id]
    assert Invoice.objects.get(pk=invoice_id).status == "stamped"
    assert InvoiceDelivery.objects.get(pk=invoice_id).status == "pending"
    assert DeliverySlot.objects.get(pk=0).armed_at is None  # free: the lane's tick wakes it when the broker is back
    assert due_delivery_ids() == list(WebhookDelivery.objects.values_list("pk", flat=True))  # the sweeper's


def test_retry_now_with_the_broker_away_is_no_error_the_tick_claims_it(
        queued, certificate, monkeypatch, django_capture_on_commit_callbacks):
    import datetime as dt

    from django.utils import timezone

    [invoice_id] = queued(1)
    Invoice.objects.filter(pk=invoice_id).update(attempts=1, next_attempt_at=timezone.now() + dt.timedelta(hours=1))
    _broker_refuses(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        assert stamping.invoice_retry_now(invoice_id=invoice_id, actor="ana") is True
    assert invoices_claim() == [invoice_id]  # due now: the stamping cluster's tick claims it


def test_staff_stamp_now_hands_its_claim_back_too(queued, database_back, monkeypatch):
    [invoice_id] = queued(1)

    def gone(invoice_ids):
        raise _database_gone()

    monkeypatch.setattr(stamping, "invoices_stamp", gone)
    with pytest.raises(OperationalError):
        tasks.stamp_invoice(invoice_id)
    assert Invoice.objects.get(pk=invoice_id).lease_until is None
