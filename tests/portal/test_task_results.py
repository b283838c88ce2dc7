import datetime as dt

from django.utils import timezone
from django_q.models import Task

from portal.tasks import prune_task_results


def _task(name, success, age_hours):
    stopped = timezone.now() - dt.timedelta(hours=age_hours)
    return Task.objects.create(id=name, name=name, func="portal.tasks.ping", started=stopped, stopped=stopped,
                               success=success)


def test_old_successful_results_are_pruned_and_failures_kept(db, settings):
    settings.Q_KEEP_RESULTS_HOURS = 24
    _task("old-ok", True, 30)
    _task("new-ok", True, 1)
    _task("old-failed", False, 30)
    assert prune_task_results() == 1
    assert set(Task.objects.values_list("name", flat=True)) == {"new-ok", "old-failed"}
