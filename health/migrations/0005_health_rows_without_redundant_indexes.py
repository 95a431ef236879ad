# Every rollup writes (nightly: inserts or updates) each index of every customer's CustomerHealth
# and HealthSnapshot row. The single-column FK indexes and their varchar_pattern_ops twins
# duplicate the leading column of (workspace, score, customer), (customer, date) and
# (workspace, date); the primary key's varchar_pattern_ops twin serves LIKE, which nothing runs.
# Only the indexes are dropped: Django's own AlterField would also drop and re-add (so re-validate)
# the foreign keys, a scan of the whole snapshot history under lock.

import django.db.models.deletion
from django.db import migrations, models

INDEXES = (
    ("health_customerhealth", "health_customerhealth_workspace_id_0886ab9b", '"workspace_id"'),
    (
        "health_customerhealth",
        "health_customerhealth_workspace_id_0886ab9b_like",
        '"workspace_id" varchar_pattern_ops',
    ),
    (
        "health_customerhealth",
        "health_customerhealth_customer_id_a5433674_like",
        '"customer_id" varchar_pattern_ops',
    ),
    ("health_healthsnapshot", "health_healthsnapshot_customer_id_d530f35c", '"customer_id"'),
    (
        "health_healthsnapshot",
        "health_healthsnapshot_customer_id_d530f35c_like",
        '"customer_id" varchar_pattern_ops',
    ),
    ("health_healthsnapshot", "health_healthsnapshot_workspace_id_0ac55ff5", '"workspace_id"'),
    (
        "health_healthsnapshot",
        "health_healthsnapshot_workspace_id_0ac55ff5_like",
        '"workspace_id" varchar_pattern_ops',
    ),
)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_constraint_message_ws_id_index"),
        ("health", "0004_customerhealth_event_signal_columns"),
        ("perly", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="customerhealth",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="perly.workspace",
                    ),
                ),
                migrations.AlterField(
                    model_name="healthsnapshot",
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
                    model_name="healthsnapshot",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="perly.workspace",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({columns})',
                )
                for table, name, columns in INDEXES
            ],
        ),
    ]
