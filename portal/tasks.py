"""Small tasks of the portal itself."""

from django.utils import timezone

from portal.shopper.my_invoices import access_link_send


def ping(token: str) -> dict:
    """Proves a worker picks up and runs queued tasks (`manage.py queue_check`)."""
    return {"token": token, "ran_at": timezone.now().isoformat()}


def prune_task_results() -> int:
    """Periodic: forget successful task results older than Q_KEEP_RESULTS_HOURS (failures stay for inspection)."""
    import datetime as dt

    from django.conf import settings
    from django_q.models import Success

    cutoff = timezone.now() - dt.timedelta(hours=settings.Q_KEEP_RESULTS_HOURS)
    deleted, _ = Success.objects.filter(stopped__lt=cutoff).delete()
    return deleted


def send_my_invoices_link(request_id: int) -> bool:
    """Deliver queue: check a "Mis facturas" request and email its link if it matches (portal/shopper/my_invoices.py)."""
    return access_link_send(request_id=request_id)
