# Invoices in a foreign currency carry their TipoCambio (issue 18); existing unfinished ones take their tickets'.

from django.db import migrations, models


def backfill(apps, schema_editor):
    Invoice = apps.get_model("invoicing", "Invoice")
    InvoiceTicket = apps.get_model("invoicing", "InvoiceTicket")
    for invoice in Invoice.objects.exclude(currency="MXN").filter(exchange_rate__isnull=True).only("pk"):
        rate = (InvoiceTicket.objects.filter(invoice_id=invoice.pk, ticket__exchange_rate__isnull=False)
                .values_list("ticket__exchange_rate", flat=True).first())
        if rate is not None:
            Invoice.objects.filter(pk=invoice.pk).update(exchange_rate=rate)


class Migration(migrations.Migration):

    dependencies = [
        ("invoicing", "0008_invoice_on_hold"),
        ("tickets", "0007_fiscal_rates_border_key_branch"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="exchange_rate",
            field=models.DecimalField(blank=True, decimal_places=6, max_digits=18, null=True,
                                      verbose_name="tipo de cambio"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
