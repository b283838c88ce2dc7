"""Small tasks of the portal itself."""

from django.utils import timezone


def ping(token: str) -> dict:
    """Proves a worker picks up and runs queued tasks (`manage.py queue_check`)."""
    return {"token": token, "ran_at": timezone.now().isoformat()}
