from django.apps import AppConfig


class InfraConfig(AppConfig):
    """Shared infrastructure below every app: the event log, queues, bulk writes, API auth, admin scoping."""

    name = "infra"
    verbose_name = "Bitácora"
