"""The task queues, and the one way code puts a task on them (``enqueue``).

Three django-q2 clusters, one per queue (settings.Q_QUEUES; docs/operations.md), so that no kind of work can
starve another:

- ``stamp``: the stamping batches only. An invoice never waits behind a PDF, an email or a webhook.
- ``deliver``: what a stamped invoice hands out (PDF and email of ordinary invoices) and the webhooks.
- ``bulk``: big, slow jobs whose latency matters less: background POS batches, global invoices, late
  requests, the PDFs of large invoices, housekeeping.

A queue is a cluster name: tasks are pushed to that cluster's broker list, and only ``manage.py qcluster
--queue <name>`` (or all three, its default) takes them off it.
"""

from __future__ import annotations

import functools
import logging
import os

from django.conf import settings
from django.db import transaction

from infra.outages import broker_unavailable

log = logging.getLogger(__name__)

STAMP = "stamp"
DELIVER = "deliver"
BULK = "bulk"
QUEUES = (STAMP, DELIVER, BULK)

_brokers: dict[tuple[int, str], object] = {}


def cluster_name(queue: str) -> str:
    """The django-q2 cluster (= broker list) of ``queue``."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; use one of {', '.join(QUEUES)}")
    return settings.Q_QUEUES[queue]


def queue_of_cluster(name: str) -> str | None:
    return next((q for q in QUEUES if settings.Q_QUEUES[q] == name), None)


def broker(queue: str):
    """The broker of ``queue``, one per process (a Redis client made before a fork is not shared after it)."""
    from django_q.brokers import get_broker

    key = (os.getpid(), cluster_name(queue))
    if key not in _brokers:
        _brokers[key] = get_broker(key[1])
    return _brokers[key]


def enqueue(func: str, *args, queue: str, task_name: str | None = None, group: str | None = None) -> str | None:
    """Queue ``func(*args)`` on ``queue``; returns the task id. Tasks take ids and call one service."""
    from django_q import tasks

    options = {"task_name": task_name} if task_name else {}
    return tasks.async_task(func, *args, group=group or queue, broker=broker(queue), cluster=cluster_name(queue),
                            **options)


def enqueue_or_leave(func: str, *args, queue: str, task_name: str | None = None,
                     group: str | None = None) -> str | None:
    """``enqueue`` for work whose rows a sweeper or a queue's tick finds again: when the broker is away the task
    is left for them (logged, None), not raised. After a commit, raising would turn work that is safely stored
    into a 500 for a request that succeeded, or a failed task for one that did its job."""
    try:
        return enqueue(func, *args, queue=queue, task_name=task_name, group=group)
    except Exception as exc:
        if not broker_unavailable(exc):
            raise
        log.warning("%s not queued on %s: the broker is away (%s); its sweeper or tick queues it again", func,
                    queue, exc)
        return None


def enqueue_on_commit(func: str, *args, queue: str, task_name: str | None = None, group: str | None = None,
                      repaired: bool = False) -> None:
    """``enqueue`` once the current transaction commits (at once outside one): a worker must find the rows.
    ``repaired``: a sweeper or tick finds the work again, so a broker that is away is no error
    (``enqueue_or_leave``); otherwise it raises (a request answers 503: portal/middleware.py)."""
    send = enqueue_or_leave if repaired else enqueue
    after_commit(send, func, *args, queue=queue, task_name=task_name, group=group)


def after_commit(fn, *args, **kwargs) -> None:
    """Call ``fn(*args, **kwargs)`` once the current transaction commits (at once outside one; never if it rolls
    back): the one place the project calls ``transaction.on_commit`` (tests/test_architecture.py). The arguments
    are bound now, so a loop variable or a row changed later cannot slip in."""
    transaction.on_commit(functools.partial(fn, *args, **kwargs))


def backlog(queue: str) -> int:
    """Tasks waiting on ``queue``'s broker (0 if it cannot say)."""
    try:
        return int(broker(queue).queue_size() or 0)
    except Exception:  # noqa: BLE001 - a backlog figure is advice, never a reason to fail
        return 0


def broker_epoch(queue: str) -> str:
    """What changes when ``queue``'s broker may have lost the tasks it held: a Redis server's run id (new at every
    start; without persistence a restarted Redis is empty). Raises when the broker cannot be reached. The ORM
    broker keeps its tasks in the database: always the same."""
    connection = getattr(broker(queue), "connection", None)
    if connection is not None and hasattr(connection, "info") and hasattr(connection, "ping"):
        return str(connection.info("server").get("run_id", ""))
    return "orm"

