from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"

    def ready(self) -> None:
        from django.conf import settings

        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "customers.purge_pending",
            {"task": "customers.tasks.purge_pending_customers", "schedule": 300.0},
        )
