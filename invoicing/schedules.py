"""Periodic django-q2 schedules, created (idempotently) after every migrate."""

from django_q.models import Schedule

SCHEDULES = [
    # (name, func, minutes)
    ("Reencolar facturas atoradas", "invoicing.tasks.sweep_stuck_invoices", 1),
    ("Facturas globales: periodos cerrados, rezagos y alertas", "invoicing.tasks_global.global_invoices_tick", 5),
    ("Solicitudes tardías: avanzar", "invoicing.tasks_global.advance_late_requests", 1),
    ("Cancelaciones: seguimiento con el SAT", "invoicing.tasks_cancel.follow_up_cancellations", 1),
    ("Webhooks: reintentos pendientes", "invoicing.webhooks.tasks.sweep_webhook_deliveries", 1),
    ("Lotes de tickets abandonados: reanudar o cerrar", "tickets.ingest.tasks.sweep_batches", 1),
    ("Borrar resultados de tareas antiguos", "portal.tasks.prune_task_results", 60),
]


def ensure_schedules(**kwargs) -> None:
    for name, func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
