# Data only: scores stored before the composite was capped at 100 (health.scoring) could read up
# to 100.0n, where the rounded contributions of a customer at full marks added up past 100. Every
# rescore rewrites the current scores anyway; this also mends the history (snapshots), which no
# later rescore rewrites. One pass per table; the reverse leaves the values as they are.

from django.db import migrations

TABLES = (
    ("health_customerhealth", "score"),
    ("health_healthsnapshot", "score"),
    ("customers_customer", "health_score"),
)


class Migration(migrations.Migration):
    dependencies = [
        ("health", "0010_customerhealth_fillfactor"),
        ("customers", "0008_customer_fillfactor_50"),
    ]

    operations = [
        migrations.RunSQL(
            [f"UPDATE {table} SET {column} = 100.0 WHERE {column} > 100.0" for table, column in TABLES],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
