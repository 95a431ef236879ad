"""The Celery app (`celery -A perly worker -B`). Settings come from Django's, prefix CELERY_."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perly.settings")

app = Celery("perly")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _declare_queues(sender, **kwargs):
    from django.conf import settings

    # Declared explicitly so a worker started without -Q consumes every queue.
    sender.conf.task_queues = [Queue(name) for name in settings.CELERY_TASK_QUEUES_ALL]
