from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"

    def ready(self) -> None:
        from django.conf import settings

        from perly import response_cache

        # A customer's API object is its row (health included, mirrored on it by health), and
        # every writer of that row invalidates: customers.services and health.generation.
        response_cache.register("/v1/customers/", id_prefix="cus", scope="customers:read")

        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "customers.purge_pending",
            {"task": "customers.tasks.purge_pending_customers", "schedule": 300.0},
        )
