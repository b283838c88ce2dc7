"""Batches through outages. PostgreSQL going away under a background batch, or the broker refusing or losing
its task, is not an error of the batch: it must end ``done`` with every ticket the POS was promised (202), never
``failed`` nor stuck in ``received``, and a batch stored while the broker is away is a 202, not a 500."""

import json

import psycopg
import pytest
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from infra import queues
from tickets.ingest import lifecycle
from tickets.ingest.tasks import process_batch
from tickets.models import Batch, Ticket


def post_batch(client, capture, batch_id, tickets):
    with capture(execute=True):
        return client.post("/api/v1/tickets/batch", json.dumps({"batch_id": batch_id, "tickets": tickets}),
                           content_type="application/json")


def _batch_tasks(queued_tasks):
    return [args[0] for queue, func, args in queued_tasks if func == "tickets.ingest.tasks.process_batch"]


@pytest.fixture
def database_back(monkeypatch):
    waited = []
    monkeypatch.setattr("infra.outages.database_wait", lambda seconds, **kw: waited.append(seconds) or True)
    return waited


def test_database_gone_under_a_background_batch_hands_it_back_and_it_finishes(
        api_client, payload, queued_tasks, database_back, settings, monkeypatch, django_capture_on_commit_callbacks):
    """Before: the worker failed the batch ("error interno") and the tickets after the last chunk were never
    stored, although the POS had its 202; or, with the database still down, it stayed ``processing`` until the
    sweeper's lease ran out."""
    settings.API_BATCH_SYNC_MAX = 2
    monkeypatch.setattr(lifecycle, "CHUNK", 2)
    tickets = [payload(number=f"G-{i}") for i in range(5)]
    assert post_batch(api_client, django_capture_on_commit_callbacks, "outage", tickets).status_code == 202
    real_ingest = lifecycle.ingest
    calls = []

    def database_gone_on_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            error = OperationalError("terminating connection due to administrator command")
            error.__cause__ = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
            raise error
        return real_ingest(**kwargs)

    monkeypatch.setattr(lifecycle, "ingest", database_gone_on_second_chunk)
    [batch_pk] = _batch_tasks(queued_tasks)
    queued_tasks.clear()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(OperationalError):
        process_batch(batch_pk)  # as its worker runs it
    batch = Batch.objects.get()
    assert database_back
    assert (batch.status, batch.processed_count, batch.finished_at) == ("received", 2, None)  # handed back
    assert _batch_tasks(queued_tasks) == [batch_pk]  # and queued again at once

    monkeypatch.setattr(lifecycle, "ingest", real_ingest)
    assert queued_tasks.run(-1) == "done"
    batch.refresh_from_db()
    assert (batch.status, batch.created_count) == ("done", 5)
    assert sorted(Ticket.objects.values_list("number", flat=True)) == [f"G-{i}" for i in range(5)]


def test_batch_stored_while_the_broker_is_away_is_202_and_queued_again_when_it_is_back(
        api_client, payload, queued_tasks, settings, monkeypatch, django_capture_on_commit_callbacks):
    """Before: the task could not be queued after the commit, the POS got a 500 for a stored batch, its resend a
    409, and the batch waited in ``received`` for its lease (two minutes) and the sweeper."""
    settings.API_BATCH_SYNC_MAX = 2

    def refused(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    real_enqueue = queues.enqueue
    monkeypatch.setattr(queues, "enqueue", refused)
    response = post_batch(api_client, django_capture_on_commit_callbacks, "sin-broker",
                          [payload(number=f"R-{i}") for i in range(3)])
    assert response.status_code == 202, response.content
    batch = Batch.objects.get()
    assert batch.status == "received" and _batch_tasks(queued_tasks) == []

    # The broker is back (an empty Redis): the bulk cluster queues the waiting batches again.
    monkeypatch.setattr(queues, "enqueue", real_enqueue)
    assert lifecycle.batch_requeue_received() == 1
    assert _batch_tasks(queued_tasks) == [batch.pk]
    assert queued_tasks.run(-1) == "done"
    assert Ticket.objects.count() == 3
    assert lifecycle.batch_requeue_received() == 0  # nothing waits any more
