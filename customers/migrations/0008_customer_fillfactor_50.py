# Storage parameter only (issue 14's rollup budget). Every rescore rewrites each scored customer's
# health mirror; an update that leaves health_score and health_status unchanged is HOT (no new
# entry in any of the table's indexes) only if the new version fits on the row's page. At 80 a
# page had room for new versions of about a quarter of its rows; the others went to other pages
# with an entry in every index. Half of each page left free holds one new version of every row.
# Existing pages take it up as they are rewritten (or VACUUM FULL). Figures:
# benchmarks/health/README.md.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("customers", "0007_customer_workspace_without_own_index")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE customers_customer SET (fillfactor = 50)",
            reverse_sql="ALTER TABLE customers_customer SET (fillfactor = 80)",
        )
    ]
