# Customer.workspace without its own index: every index in Meta leads with workspace, and a
# rescore whose score moved writes each index of the customer's row. Only the two indexes go
# (Django's AlterField would also drop and re-add the foreign key, validating it over the whole
# table under lock).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0006_health_status_churned"),
        ("perly", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="customer",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="customers",
                        to="perly.workspace",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "customers_customer_workspace_id_9c4ede06"; '
                    'DROP INDEX IF EXISTS "customers_customer_workspace_id_9c4ede06_like"',
                    reverse_sql=(
                        'CREATE INDEX "customers_customer_workspace_id_9c4ede06" '
                        'ON "customers_customer" ("workspace_id"); '
                        'CREATE INDEX "customers_customer_workspace_id_9c4ede06_like" '
                        'ON "customers_customer" ("workspace_id" varchar_pattern_ops)'
                    ),
                ),
            ],
        ),
    ]
