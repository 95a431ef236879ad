from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        from django.conf import settings

        # The outbox sweeper: queues messages whose task was never queued or was lost, and
        # retries whose (long) delay is over.
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "webhooks.sweep_due_messages",
            {"task": "webhooks.tasks.sweep_due_messages", "schedule": 10.0},
        )
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "webhooks.prune_messages",
            {"task": "webhooks.tasks.prune_messages", "schedule": 24 * 3600.0},
        )
