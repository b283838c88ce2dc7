# Event now belongs to the infra app (infra 0001 took it over, same table): drop it from tickets' state only.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('tickets', '0011_merchant_self_correction'),
        ('infra', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name='Event')],
        ),
    ]
