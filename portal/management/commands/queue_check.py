"""Queue a task and wait for a running worker to execute it: proves the task queue works end to end."""

import secrets
import time

from django.core.management.base import BaseCommand, CommandError
from django_q.tasks import async_task, result


class Command(BaseCommand):
    help = "Encola una tarea de prueba y espera a que un worker de django-q2 la ejecute."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **opts):
        token = secrets.token_hex(8)
        task_id = async_task("portal.tasks.ping", token)
        deadline = time.monotonic() + opts["timeout"]
        while time.monotonic() < deadline:
            value = result(task_id)
            if value is not None:
                if value.get("token") != token:
                    raise CommandError(f"La tarea devolvió otro resultado: {value!r}")
                self.stdout.write(self.style.SUCCESS(f"Tarea {task_id} ejecutada por un worker a las {value['ran_at']}"))
                return
            time.sleep(0.2)
        raise CommandError(
            f"Ningún worker ejecutó la tarea en {opts['timeout']:.0f} s: ¿está corriendo `manage.py qcluster`?"
        )
