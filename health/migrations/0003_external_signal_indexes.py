# The single-column indexes on ExternalSignal's foreign keys (and their varchar_pattern_ops
# twins) duplicate the leading column of (workspace, customer) and of the unique
# (customer, key); each sync's upsert wrote all seven indexes.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_constraint_message_ws_id_index"),
        ("health", "0002_remove_customerhealth_customer_health_ws_score_idx_and_more"),
        ("perly", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="externalsignal",
            name="customer",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="customers.customer",
            ),
        ),
        migrations.AlterField(
            model_name="externalsignal",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="perly.workspace",
            ),
        ),
    ]
