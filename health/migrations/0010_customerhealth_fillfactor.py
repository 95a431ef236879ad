# Storage parameter only (issue 14's rollup budget): every rescore rewrites each scored customer's
# CustomerHealth row. With free room on the row's page, an update that leaves the indexed score
# unchanged is a HOT update (no new entry in the primary key or the (workspace, score, customer)
# index); rows packed at fillfactor 100 leave no room, so every rescore wrote both indexes for
# every customer. A new version must fit on its row's page: half of each page left free holds one
# new version of every row on it (less left some rows' new versions to other pages, with new
# index entries). Existing pages take it up as they are rewritten (or VACUUM FULL). Figures:
# benchmarks/health/README.md.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("health", "0009_health_status_churned")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE health_customerhealth SET (fillfactor = 50)",
            reverse_sql="ALTER TABLE health_customerhealth RESET (fillfactor)",
        )
    ]
