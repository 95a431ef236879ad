from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from django.conf import settings

        from integrations import config

        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "integrations.enqueue_due_syncs",
            {"task": "integrations.tasks.enqueue_due_syncs", "schedule": config.scheduler_seconds()},
        )
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "integrations.reap_stale_sync_runs",
            {"task": "integrations.tasks.reap_stale_sync_runs", "schedule": 120.0},
        )
