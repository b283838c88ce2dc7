"""django-q2's ``qcluster``, one cluster per queue (docs/operations.md):

    manage.py qcluster                  every queue: one child process per queue (stamp, deliver, bulk)
    manage.py qcluster --queue stamp    that queue only (same as django-q2's Q_CLUSTER_NAME=stamp)

A queue's cluster warms the CFDI engine in its parent process before forking the workers, resets its queue's
slots (a task armed before a crash may be gone), and then, while the cluster runs, looks at its queue every
INVOICE_QUEUE_TICK_MS: a retry whose time came, a lease a dead worker left or a lost wake-up gets a task at
once, not at the every-minute sweeper's next run. When its broker or its database was away (a tick failed, or
Redis came back with a new run id: empty), it resets its slots again once they are back, as at start-up.

Workers are forked from this process, and forked again every Q_RECYCLE tasks: warmed here, they share SAT's
compiled XSLT, schema and catalogs (copy-on-write) instead of each spending a second or two compiling them on
its first document. INSTALLED_APPS lists ``invoicing`` before ``django_q`` so this command is the one found.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import close_old_connections, connections
from django_q.cluster import Cluster
from django_q.conf import Conf
from django_q.management.commands.qcluster import Command as QclusterCommand

from infra.queues import BULK, DELIVER, QUEUES, STAMP, broker_epoch, cluster_name, queue_of_cluster

log = logging.getLogger(__name__)


def _ticks(queue: str):
    """What the queue's cluster does at start-up and after an outage of its broker or database (reset its slots,
    queue again what waited in the broker), and at every tick: wake the queue if work is due, and return the
    seconds to wait before the next tick."""
    from invoicing.delivery_queue import deliveries_next_wait, deliveries_restart
    from invoicing.stamp_queue import stamp_queue_restart, stamp_queue_tick

    def bulk_restart():
        deliveries_restart(True)
        _batches_restart()

    return {
        STAMP: (stamp_queue_restart, stamp_queue_tick),
        DELIVER: (lambda: deliveries_restart(False), lambda wait: deliveries_next_wait(False, wait)),
        BULK: (bulk_restart, lambda wait: deliveries_next_wait(True, wait)),
    }[queue]


def _batches_restart() -> None:
    from tickets.ingest.lifecycle import batch_requeue_received

    try:
        if requeued := batch_requeue_received():
            log.warning("queue bulk: %d waiting ticket batch(es) queued again", requeued)
    except Exception:  # noqa: BLE001 - the sweeper queues them once their lease runs out
        log.exception("could not queue the waiting ticket batches again")


class Ticker:
    """The cluster's look at its queue, once per ``step``: wake it if work is due (``tick``), and after its broker
    or its database was away, do what a start does (``restart``): tasks queued before the outage may be gone (a
    Redis that came back empty) or have failed (PostgreSQL away). A task that did survive gets a twin that finds
    nothing to do. A Redis that restarted between two steps shows as a new run id (``broker_epoch``)."""

    def __init__(self, queue: str, restart, tick):
        self.queue, self.restart, self.tick = queue, restart, tick
        self.failing_since: float | None = None
        self.epoch: str | None = None

    def step(self, interval: float) -> float:
        """Returns how long to wait before the next step."""
        try:
            close_old_connections()  # drop a connection the database closed (a restart), like a request would
            # The broker first: while it is away a wake-up cannot enqueue anything anyway.
            epoch = broker_epoch(self.queue)
            lost = self.failing_since is not None or (self.epoch is not None and epoch != self.epoch)
            self.epoch = epoch
            wait = self.tick(interval)
            if lost:
                self.restart()
                log.warning("queue %s: its broker or database is back%s; slots reset and waiting work queued again",
                            self.queue, f" after {time.monotonic() - self.failing_since:.0f} s"
                            if self.failing_since is not None else " (the broker restarted)")
                self.failing_since = None
            return wait
        except Exception:  # noqa: BLE001 - the database or broker may be down for a while; the cluster goes on
            if self.failing_since is None:  # once per outage, not twice a second
                self.failing_since = time.monotonic()
                log.exception("queue %s: tick failed; retrying quietly until it works", self.queue)
            connections.close_all()
            return max(interval, 1.0)


class Command(QclusterCommand):
    help = "Arranca los workers de django-q2: una cola (--queue stamp|deliver|bulk) o todas (por omisión)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--queue", choices=[*QUEUES, "all"],
                            help="la cola que atiende este proceso; por omisión, todas (un proceso hijo por cola)")

    def handle(self, *args, **options):
        queue = options.get("queue") or self._queue_from_name(options.get("cluster_name")) or "all"
        if queue == "all":
            sys.exit(self._supervise(run_once=options.get("run_once", False)))
        name = cluster_name(queue)
        if Conf.CLUSTER_NAME != name:
            # django-q2 reads its cluster's name (and its options) from Q_CLUSTER_NAME once, when imported:
            # start again with it set.
            env = {**os.environ, "Q_CLUSTER_NAME": name}
            os.execve(sys.executable, self._argv(queue, options.get("run_once", False)), env)
        self._run(queue, run_once=options.get("run_once", False))

    @staticmethod
    def _queue_from_name(name: str | None) -> str | None:
        name = name or os.environ.get("Q_CLUSTER_NAME")
        if not name:
            return None
        queue = queue_of_cluster(name)
        if queue is None:
            raise CommandError(f"La cola «{name}» no existe; usa una de: "
                               + ", ".join(f"{q} ({cluster_name(q)})" for q in QUEUES))
        return queue

    @staticmethod
    def _argv(queue: str, run_once: bool) -> list[str]:
        argv = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "qcluster", "--queue", queue]
        return [*argv, "--run-once"] if run_once else argv

    def _run(self, queue: str, *, run_once: bool) -> None:
        from invoicing.cfdi.resources import engine_warm

        engine_warm()
        restart, tick = _ticks(queue)
        restart()
        connections.close_all()  # the forked cluster must not share this process's database connection
        cluster = Cluster()
        # Signals only set a flag; the loop below stops the cluster. django-q2's own handler stops it inside the
        # signal handler, which deadlocks when the signal lands while this process holds a lock the stop needs
        # (the logging lock mid-tick, or the cluster's events when a group-wide SIGTERM killed the sentinel
        # holding theirs).
        stopping = []
        signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
        signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
        cluster.start()
        if run_once:
            cluster.stop()
            return
        interval = max(settings.INVOICE_QUEUE_TICK_MS, 50) / 1000
        ticker = Ticker(queue, restart, tick)
        while not stopping and cluster.sentinel.is_alive():
            time.sleep(max(ticker.step(interval), 0.01))
        if cluster.sentinel.is_alive():
            cluster.stop()  # the workers finish the task at hand
        else:
            log.warning("queue %s: the cluster's sentinel is gone; exiting", queue)

    def _supervise(self, *, run_once: bool) -> int:
        """One child per queue; a signal is passed on to them, and if one of them ends the others are stopped
        (the process manager restarting this command restarts them all)."""
        children = {q: subprocess.Popen(self._argv(q, run_once), env={**os.environ, "Q_CLUSTER_NAME": cluster_name(q)})
                    for q in QUEUES}
        stopping = []

        def forward(signum, frame):
            stopping.append(signum)
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        while True:
            ended = {q: child.returncode for q, child in children.items() if child.poll() is not None}
            if len(ended) == len(children):
                return 0 if stopping or run_once else (max(abs(code) for code in ended.values()) or 1)
            if ended and not stopping and not run_once:
                self.stderr.write(f"qcluster: la cola {', '.join(ended)} terminó ({ended}); se detienen las demás")
                forward(signal.SIGTERM, None)
            time.sleep(0.2)
