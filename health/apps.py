from __future__ import annotations

from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"

    def ready(self) -> None:
        from celery.schedules import crontab
        from django.conf import settings

        from customers.hooks import on_churn_changed, on_customer_deleted, register_customer_purger
        from events.hooks import on_events_ingested
        from health import generation, services

        on_events_ingested(services.request_rescore)
        register_customer_purger(services.customer_health_purge)
        on_customer_deleted(generation.customer_deleted)
        on_churn_changed(
            lambda workspace_id, customer_id: services.request_rescore(workspace_id, [customer_id])
        )
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "health.rescore_dirty",
            # The safety net: a drain every few seconds even if a debounced enqueue was lost.
            {"task": "health.tasks.rescore_dirty", "schedule": 5.0},
        )
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "health.nightly_rollup",
            {"task": "health.tasks.nightly_rollup", "schedule": crontab(hour=0, minute=15)},
        )
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "health.reap_stale_jobs",
            {"task": "health.tasks.reap_stale_health_jobs", "schedule": 300.0},
        )
