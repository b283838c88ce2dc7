"""Helpers shared by the cancellation tests."""


def invoice_events(invoice):
    from infra.models import Event

    return list(Event.objects.filter(entity="invoice", object_id=invoice.pk).order_by("pk")
                .values_list("from_status", "to_status"))
