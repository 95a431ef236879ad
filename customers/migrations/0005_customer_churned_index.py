from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_outcomes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                condition=models.Q(("churned_at__isnull", False)),
                fields=["workspace", "churned_at"],
                name="customer_ws_churned_idx",
            ),
        ),
    ]
