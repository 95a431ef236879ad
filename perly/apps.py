from django.apps import AppConfig


class PerlyConfig(AppConfig):
    name = "perly"
    verbose_name = "Perly platform"

    def ready(self) -> None:
        from django.conf import settings

        from perly import openapi  # noqa: F401  (registers the OpenAPI auth extension)

        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "perly.prune_idempotency_records",
            {"task": "perly.tasks.prune_idempotency_records", "schedule": 3600.0},
        )
