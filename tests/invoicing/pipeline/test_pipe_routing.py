"""Where tasks run: every task goes through infra.queues, every schedule to the cluster of its queue, and
``manage.py qcluster`` serves one queue or all of them."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from infra.queues import QUEUES, cluster_name, enqueue

ROOT = Path(__file__).resolve().parents[3]


def test_every_task_goes_through_the_queue_helper():
    """One place decides where a task runs (infra/queues.py): a bare async_task would land on a queue no
    cluster serves."""
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts or path == ROOT / "infra" / "queues.py":
            continue
        if re.search(r"\basync_task\s*\(", path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_every_schedule_runs_on_the_cluster_of_a_queue(db):
    from django.conf import settings
    from django_q.models import Schedule

    from invoicing.schedules import SCHEDULES, ensure_schedules

    ensure_schedules()
    clusters = dict(Schedule.objects.values_list("func", "cluster"))
    assert set(clusters.values()) <= {settings.Q_QUEUES[q] for q in QUEUES}
    assert clusters["invoicing.tasks.sweep_stuck_invoices"] == "stamp"
    assert clusters["invoicing.tasks.sweep_deliveries"] == "deliver"
    assert clusters["invoicing.tasks_global.global_invoices_tick"] == "bulk"
    assert len(clusters) == len(SCHEDULES)


def test_enqueue_routes_to_the_cluster_of_its_queue(monkeypatch, settings):
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kw: sent.append((func, args, kw)))
    monkeypatch.setattr("infra.queues.broker", lambda queue: f"broker of {queue}")
    enqueue("portal.tasks.ping", "x", queue="bulk", task_name="t")
    [(func, args, kw)] = sent
    assert (func, args) == ("portal.tasks.ping", ("x",))
    assert kw == {"broker": "broker of bulk", "cluster": settings.Q_QUEUES["bulk"], "group": "bulk", "task_name": "t"}
    with pytest.raises(ValueError, match="unknown queue"):
        enqueue("portal.tasks.ping", queue="default")


def test_each_queue_is_a_django_q2_alt_cluster_with_its_own_workers(settings):
    alt = settings.Q_CLUSTER["ALT_CLUSTERS"]
    assert sorted(alt) == sorted(cluster_name(q) for q in QUEUES)
    assert settings.Q_CLUSTER["name"] not in alt  # the site's name is no queue: nothing is sent to it
    for options in alt.values():
        assert options["workers"] >= 1 and options["retry"] > options["timeout"]


def test_qcluster_refuses_a_cluster_name_that_is_no_queue():
    with pytest.raises(CommandError, match="no existe"):
        call_command("qcluster", "--name", "autofactura")
