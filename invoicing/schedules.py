"""Periodic django-q2 schedules, created (idempotently) after every migrate.

Each runs on the cluster of its queue: django-q2's scheduler in that cluster creates the task, on that queue,
so the stamping sweeper never waits behind a global invoice and the reverse.
"""

from django_q.models import Schedule

from infra.queues import BULK, DELIVER, STAMP, cluster_name

SCHEDULES = [
    # (name, func, minutes, queue)
    ("Reencolar facturas atoradas", "invoicing.tasks.sweep_stuck_invoices", 1, STAMP),
    ("Facturas programadas: emitir las que llegaron a su hora", "invoicing.tasks.release_scheduled_invoices", 1,
     STAMP),
    ("Entregas de facturas pendientes (PDF y correo)", "invoicing.tasks.sweep_deliveries", 1, DELIVER),
    ("Facturas globales: periodos cerrados, rezagos y alertas", "invoicing.tasks_global.global_invoices_tick", 5,
     BULK),
    ("Solicitudes tardías: avanzar", "invoicing.tasks_global.advance_late_requests", 1, BULK),
    ("Webhooks: reintentos pendientes", "invoicing.webhooks.tasks.sweep_webhook_deliveries", 1, DELIVER),
    ("Lotes de tickets abandonados: reanudar o cerrar", "tickets.ingest.tasks.sweep_batches", 1, BULK),
    ("Borrar resultados de tareas antiguos", "portal.tasks.prune_task_results", 60, BULK),
    ("Exportaciones contables interrumpidas: reanudar", "invoicing.tasks_export.sweep_exports", 5, BULK),
    ("Cancelaciones: seguimiento con el SAT", "invoicing.tasks_cancel.follow_up_cancellations", 1, BULK),
    ("Timbres tardíos tras un cambio de PAC: verificar", "invoicing.tasks_cancel.check_late_stamps", 1, BULK),
]


def ensure_schedules(**kwargs) -> None:
    for name, func, minutes, queue in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1,
                      "cluster": cluster_name(queue)},
        )
