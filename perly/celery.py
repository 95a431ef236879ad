"""The Celery app (`celery -A perly worker -B`). Settings come from Django's, prefix CELERY_."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perly.settings")

app = Celery("perly")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task unless
# DB_REUSE_MAX is set: a new PostgreSQL connection (backend fork, authentication, session setup)
# per task, which costs more than a short task itself. So the fixup's closing is made rare and
# connections are handled as Django handles them between requests (below).
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _declare_queues(sender, **kwargs):
    from django.conf import settings

    # Declared explicitly so a worker started without -Q consumes every queue.
    sender.conf.task_queues = [Queue(name) for name in settings.CELERY_TASK_QUEUES_ALL]


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**kwargs):
    """Drop a connection that is broken (after a database restart) or older than CONN_MAX_AGE,
    like Django's request_started/request_finished; keep a healthy one for the next task."""
    if getattr(kwargs.get("task").request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
