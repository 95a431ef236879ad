# Storage parameter only (health, issue #4): every health rescore updates each scored customer's
# health_score / health_status / health_computed_at mirror. With free room on the row's page, an
# update that leaves the indexed health_score and health_status unchanged is a HOT update: no new
# entry in any of the table's 12 indexes. Rows packed at fillfactor 100 leave no room, so every
# rescore rewrote every index. Measured on 100,000 customers: the benchmark's second rollup
# (scores unchanged) 3.2 -> 1.5 s for the mirror; a rollup one day after the last (35.7% of the
# scores moved) 2.66 -> 2.36 s. Existing pages take it up as they are rewritten (or VACUUM FULL).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("customers", "0002_constraint_message_ws_id_index")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE customers_customer SET (fillfactor = 80)",
            reverse_sql="ALTER TABLE customers_customer RESET (fillfactor)",
        )
    ]
