"""Queue a task on each queue and wait for a running worker to execute it: proves every cluster works end to end."""

import secrets
import time

from django.core.management.base import BaseCommand, CommandError
from django_q.tasks import result

from infra.queues import QUEUES, enqueue


class Command(BaseCommand):
    help = "Encola una tarea de prueba en cada cola (stamp, deliver, bulk) y espera a que un worker la ejecute."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0)
        parser.add_argument("--queue", choices=QUEUES, action="append",
                            help="solo esta cola (se puede repetir); por omisión, todas")

    def handle(self, *args, **opts):
        tokens = {queue: secrets.token_hex(8) for queue in opts["queue"] or QUEUES}
        waiting = {queue: enqueue("portal.tasks.ping", token, queue=queue) for queue, token in tokens.items()}
        deadline = time.monotonic() + opts["timeout"]
        while waiting and time.monotonic() < deadline:
            for queue, task_id in list(waiting.items()):
                value = result(task_id)
                if value is None:
                    continue
                if value.get("token") != tokens[queue]:
                    raise CommandError(f"La tarea de la cola {queue} devolvió otro resultado: {value!r}")
                self.stdout.write(self.style.SUCCESS(
                    f"Cola {queue}: tarea {task_id} ejecutada por un worker a las {value['ran_at']}"))
                del waiting[queue]
            time.sleep(0.2)
        if waiting:
            raise CommandError(
                f"Ningún worker ejecutó la tarea de la(s) cola(s) {', '.join(waiting)} en {opts['timeout']:.0f} s: "
                "¿está corriendo `manage.py qcluster` (todas las colas) o `manage.py qcluster --queue <cola>`?"
            )
