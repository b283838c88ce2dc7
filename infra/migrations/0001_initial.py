# Event moves from the tickets app to infra without touching the database: the table stays "tickets_event" (with
# its rows, indexes, constraints and sequence), only Django's state changes (tickets 0012 drops it from tickets).
# Its content type is relabelled so that staff permissions and the admin's history keep pointing at it.

import django.db.models.deletion
from django.db import migrations, models


def relabel(apps, schema_editor, old="tickets", new="infra"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=new, model="event").exists():
        ContentType.objects.using(db).filter(app_label=old, model="event").update(app_label=new)


def relabel_back(apps, schema_editor):
    relabel(apps, schema_editor, old="infra", new="tickets")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("tickets", "0011_merchant_self_correction"),  # the table and its last index (0009) are created there
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Event',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('entity', models.CharField(max_length=20, verbose_name='objeto')),
                        ('object_id', models.BigIntegerField(verbose_name='id del objeto')),
                        ('from_status', models.CharField(blank=True, max_length=20, verbose_name='estado anterior')),
                        ('to_status', models.CharField(max_length=20, verbose_name='estado nuevo')),
                        ('actor', models.CharField(blank=True, max_length=150, verbose_name='quién')),
                        ('reason', models.TextField(blank=True, verbose_name='motivo')),
                        ('data', models.JSONField(blank=True, default=dict, verbose_name='datos')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='fecha')),
                        ('merchant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='tickets.merchant', verbose_name='comercio')),
                    ],
                    options={
                        'verbose_name': 'evento',
                        'verbose_name_plural': 'eventos',
                        'db_table': 'tickets_event',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['entity', 'object_id'], name='event_entity_object'), models.Index(condition=models.Q(('entity', 'invoice')), fields=['merchant', 'created_at'], name='event_invoice_recent')],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel, relabel_back, elidable=True),
    ]
