"""Background batches always end: a crash fails the batch with a per-ticket report, a dead worker's batch is
resumed or failed by the sweeper, and the same batch_id can be resent to finish it (issue 14, finding 2)."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from infra.models import Event
from tickets.ingest import lifecycle, tasks
from tickets.models import Batch, Ticket


class BatchIds(list):
    """The batch ids put on the bulk queue, read from the ``queued_tasks`` fixture as they are asked for."""

    def __init__(self, tasks_queued):
        super().__init__()
        self._tasks = tasks_queued

    def _ids(self):
        return [args[0] for queue, func, args in self._tasks if func == "tickets.ingest.tasks.process_batch"]

    def __getitem__(self, index):
        return self._ids()[index]

    def __len__(self):
        return len(self._ids())

    def __eq__(self, other):
        return self._ids() == other

    def __iter__(self):
        return iter(self._ids())


@pytest.fixture
def queued(queued_tasks):
    """The batch ids handed to the bulk queue (run them with tasks.process_batch, as the worker does)."""
    return BatchIds(queued_tasks)


def post_batch(client, capture, batch_id, tickets):
    body = json.dumps({"batch_id": batch_id, "tickets": tickets})  # ensure_ascii: "\ud800" stays an escape
    with capture(execute=True):
        return client.post("/api/v1/tickets/batch", body, content_type="application/json")


@pytest.mark.slow
def test_lone_surrogate_in_a_large_background_batch_is_one_rejection_and_the_batch_ends(
        api_client, payload, queued, django_capture_on_commit_callbacks):
    # The review's reproduction: 1,200 good tickets + one whose number holds "\ud800", sent to the worker.
    # The fingerprint step crashed on it: 1,000 stored, the batch «processing» forever, resend → 422.
    tickets = [payload(number=f"S-{i}") for i in range(1200)] + [payload(number="S-\ud800")]
    response = post_batch(api_client, django_capture_on_commit_callbacks, "surrogate", tickets)
    assert response.status_code == 202, response.json()
    assert tasks.process_batch(queued[0]) == "done"
    batch = Batch.objects.get()
    assert (batch.status, batch.created_count, batch.rejected_count) == ("done", 1200, 1)
    assert batch.finished_at is not None and batch.lease_until is None
    bad = batch.report[1200]
    assert bad["status"] == "rejected" and bad["code"] == "invalid_ticket" and bad["number"] == "S-"
    assert "Unicode" in bad["errors"]["number"][0]
    assert Ticket.objects.count() == 1200


def test_unexpected_error_ends_a_background_batch_failed_with_a_per_ticket_report(
        api_client, payload, queued, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.API_BATCH_SYNC_MAX = 2
    monkeypatch.setattr(lifecycle, "CHUNK", 2)
    tickets = [payload(number=f"F-{i}") for i in range(5)]
    assert post_batch(api_client, django_capture_on_commit_callbacks, "boom", tickets).status_code == 202

    real_ingest = lifecycle.ingest
    calls = []

    def crash_on_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real_ingest(**kwargs)

    monkeypatch.setattr(lifecycle, "ingest", crash_on_second_chunk)
    assert tasks.process_batch(queued[0]) == "failed"
    batch = Batch.objects.get()
    assert batch.status == "failed" and batch.finished_at is not None
    assert batch.payload is None and batch.lease_until is None
    assert "batch_id" in batch.error and "disk on fire" not in batch.error  # internals stay in the log
    assert [e["status"] for e in batch.report] == ["created", "created", "not_processed", "not_processed",
                                                    "not_processed"]
    assert [e["number"] for e in batch.report] == [f"F-{i}" for i in range(5)]
    assert (batch.processed_count, batch.created_count) == (2, 2)
    assert set(Ticket.objects.values_list("number", flat=True)) == {"F-0", "F-1"}  # the crashed chunk rolled back
    assert Event.objects.filter(entity="batch", object_id=batch.pk, to_status="failed").count() == 1

    body = api_client.get("/api/v1/batches/boom").json()
    assert body["status"] == "failed" and body["finished_at"] and len(body["report"]) == 5

    # The POS resends the same batch_id: stored tickets are replayed with their ids, the rest are stored.
    monkeypatch.setattr(lifecycle, "ingest", real_ingest)
    response = post_batch(api_client, django_capture_on_commit_callbacks, "boom", tickets)
    assert response.status_code == 202, response.json()
    assert tasks.process_batch(queued[-1]) == "done"
    batch.refresh_from_db()
    assert batch.status == "done" and batch.error == "" and batch.finished_at is not None
    assert [e["status"] for e in batch.report] == ["duplicate", "duplicate", "created", "created", "created"]
    stored = dict(Ticket.objects.values_list("number", "pk"))
    assert [e["ticket_id"] for e in batch.report] == [stored[f"F-{i}"] for i in range(5)]
    assert (batch.created_count, batch.duplicate_count, batch.total_count) == (3, 2, 5)
    assert Ticket.objects.count() == 5

    # Finished and complete: a resend is refused as before, pointing at the report.
    again = post_batch(api_client, django_capture_on_commit_callbacks, "boom", tickets)
    assert again.status_code == 422 and again.json()["error"]["code"] == "batch_already_received"


def test_unexpected_error_in_a_small_batch_answers_its_report_not_a_500(api_client, payload, monkeypatch):
    monkeypatch.setattr(lifecycle, "CHUNK", 2)
    real = lifecycle.ingest
    calls = []

    def crash_on_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return real(**kwargs)

    monkeypatch.setattr(lifecycle, "ingest", crash_on_second_chunk)
    tickets = [payload(number=f"M-{i}") for i in range(3)]
    response = api_client.post("/api/v1/tickets/batch", {"batch_id": "small", "tickets": tickets}, format="json")
    assert response.status_code == 207, response.content
    body = response.json()
    assert body["status"] == "failed" and body["finished_at"] and body["error"]
    assert [e["status"] for e in body["report"]] == ["created", "created", "not_processed"]
    assert Ticket.objects.count() == 2

    monkeypatch.setattr(lifecycle, "ingest", real)
    response = api_client.post("/api/v1/tickets/batch", {"batch_id": "small", "tickets": tickets}, format="json")
    assert response.status_code == 200, response.json()
    assert [e["status"] for e in response.json()["report"]] == ["duplicate", "duplicate", "created"]


def test_resend_of_a_batch_a_live_worker_holds_is_a_409(api_client, payload, queued, settings,
                                                       django_capture_on_commit_callbacks):
    settings.API_BATCH_SYNC_MAX = 1
    tickets = [payload(number=f"L-{i}") for i in range(3)]
    assert post_batch(api_client, django_capture_on_commit_callbacks, "live", tickets).status_code == 202
    # Queued, its task not started yet (within the lease): not a second copy.
    response = post_batch(api_client, django_capture_on_commit_callbacks, "live", tickets)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "batch_in_progress" and "se está procesando" in error["message"]
    assert int(response["Retry-After"]) > 0
    # A worker holds it.
    Batch.objects.filter(batch_id="live").update(status="processing", run=1,
                                                 lease_until=timezone.now() + dt.timedelta(seconds=60))
    response = post_batch(api_client, django_capture_on_commit_callbacks, "live", tickets)
    assert response.status_code == 409 and response.json()["error"]["details"]["status"] == "processing"
    assert len(queued) == 1 and not Ticket.objects.exists()


def test_resend_of_an_abandoned_batch_takes_it_over_and_fences_the_old_worker(
        api_client, payload, queued, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.API_BATCH_SYNC_MAX = 1
    tickets = [payload(number=f"A-{i}") for i in range(3)]
    post_batch(api_client, django_capture_on_commit_callbacks, "gone", tickets)
    batch = Batch.objects.select_related("merchant").get()
    assert lifecycle._claim(batch, actor="worker")  # the worker that will "hang" holds run 1
    Batch.objects.filter(pk=batch.pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))

    response = post_batch(api_client, django_capture_on_commit_callbacks, "gone", tickets)
    assert response.status_code == 202, response.json()
    assert tasks.process_batch(queued[-1]) == "done"
    # The old worker wakes up: every write it tries is refused, it stores nothing and reports nothing.
    items = lifecycle._items(tickets, None)
    assert lifecycle._run(batch, items, actor="worker", start=0, report=[]) == "lease lost"
    fresh = Batch.objects.get()
    assert (fresh.status, fresh.created_count, fresh.run) == ("done", 3, 2)
    assert Ticket.objects.count() == 3


def test_sweeper_fails_a_batch_that_keeps_killing_its_worker(api_client, payload, queued, settings,
                                                            django_capture_on_commit_callbacks):
    settings.API_BATCH_SYNC_MAX = 1
    settings.API_BATCH_MAX_ATTEMPTS = 2
    tickets = [payload(number=f"K-{i}") for i in range(4)]
    post_batch(api_client, django_capture_on_commit_callbacks, "killer", tickets)
    batch = Batch.objects.get()
    expired = timezone.now() - dt.timedelta(seconds=1)
    Batch.objects.filter(pk=batch.pk).update(status="processing", run=2, attempts=2, processed_count=2,
                                             created_count=2, lease_until=expired,
                                             report=[{"index": 0, "status": "created"}, {"index": 1, "status": "created"}])
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_batches() == 1
    batch.refresh_from_db()
    assert batch.status == "failed" and batch.finished_at is not None and batch.payload is None
    assert [e["status"] for e in batch.report] == ["created", "created", "not_processed", "not_processed"]
    assert "2 veces" in batch.error and "batch_id" in batch.error
    assert len(queued) == 1  # failed, not queued again
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_batches() == 0


def test_sweeper_requeues_a_batch_stuck_before_leases_existed(api_client, payload, queued, settings,
                                                             django_capture_on_commit_callbacks):
    # Rows left «processing» by the old code have no lease at all: they are abandoned, not live.
    settings.API_BATCH_SYNC_MAX = 1
    post_batch(api_client, django_capture_on_commit_callbacks, "legacy", [payload(number="Z-1"), payload(number="Z-2")])
    Batch.objects.update(status="processing", lease_until=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_batches() == 1
    assert tasks.process_batch(queued[-1]) == "done"
    assert Batch.objects.get().created_count == 2


def test_sweeper_leaves_live_batches_alone_and_is_scheduled(api_client, payload, queued, settings,
                                                           django_capture_on_commit_callbacks):
    from django_q.models import Schedule

    settings.API_BATCH_SYNC_MAX = 1
    post_batch(api_client, django_capture_on_commit_callbacks, "fresh", [payload(number="1"), payload(number="2")])
    Batch.objects.create(merchant=Batch.objects.get().merchant, batch_id="busy", status="processing", run=1,
                         total_count=5, lease_until=timezone.now() + dt.timedelta(seconds=30), payload=b"[]")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_batches() == 0
    assert queued == [Batch.objects.get(batch_id="fresh").pk]
    assert Schedule.objects.filter(func="tickets.ingest.tasks.sweep_batches", minutes=1, repeats=-1).exists()


def test_resend_only_ever_finds_the_merchants_own_batch(api_client, other_api_client, payload, queued, settings,
                                                        django_capture_on_commit_callbacks):
    settings.API_BATCH_SYNC_MAX = 1
    tickets = [payload(number="1"), payload(number="2")]
    post_batch(other_api_client, django_capture_on_commit_callbacks, "same-id", tickets)
    theirs = Batch.objects.get()
    Batch.objects.filter(pk=theirs.pk).update(status="failed", finished_at=timezone.now(), lease_until=None)
    # A's batch with B's batch_id is A's own new batch: B's failed one is neither restarted nor reported.
    response = post_batch(api_client, django_capture_on_commit_callbacks, "same-id", tickets)
    assert response.status_code == 202 and response.json()["total_count"] == 2
    assert Batch.objects.count() == 2
    theirs.refresh_from_db()
    assert theirs.status == "failed" and theirs.run == 0
    assert tasks.process_batch(queued[-1]) == "done"
    assert not Ticket.objects.filter(merchant=theirs.merchant_id).exists()
    assert api_client.get("/api/v1/batches/same-id").json()["status"] == "done"
    assert other_api_client.get("/api/v1/batches/same-id").json()["status"] == "failed"
