# SyncedRecord: the single-column foreign-key indexes (and their varchar_pattern_ops twins) go;
# (customer, integration) replaces the customer one and serves the signals' per-customer read.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_constraint_message_ws_id_index"),
        ("integrations", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="syncedrecord",
            name="customer",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="customers.customer",
            ),
        ),
        migrations.AlterField(
            model_name="syncedrecord",
            name="integration",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="integrations.integration",
            ),
        ),
        migrations.AddIndex(
            model_name="syncedrecord",
            index=models.Index(fields=["customer", "integration"], name="syncedrecord_customer_idx"),
        ),
    ]
