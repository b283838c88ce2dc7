from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_delete


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Facturación"

    def ready(self):
        from invoicing.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="invoicing_schedules")

        from invoicing.stamp_queue import stamp_slots_ensure

        post_migrate.connect(stamp_slots_ensure, sender=self, dispatch_uid="invoicing_stamp_slots")

        from invoicing.delivery_queue import delivery_slots_ensure

        post_migrate.connect(delivery_slots_ensure, sender=self, dispatch_uid="invoicing_delivery_slots")

        from invoicing.webhooks.receivers import on_batch_finished
        from tickets.signals import batch_finished

        batch_finished.connect(on_batch_finished, dispatch_uid="webhooks_batch_finished")

        from invoicing.lifecycle import refuse_deleting_legal_invoices
        from invoicing.models import Invoice

        pre_delete.connect(refuse_deleting_legal_invoices, sender=Invoice, dispatch_uid="invoice_never_deleted")
