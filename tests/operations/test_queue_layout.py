"""The queue layout docs/operations.md describes is the one Celery really uses."""

from __future__ import annotations

from django.conf import settings

from perly.celery import app

# docs/operations.md, "Queues": which app's tasks go where.
DOCUMENTED_QUEUES = {
    "customers": "default",
    "events": "ingest",
    "health": "health",
    "webhooks": "webhooks",
    "integrations": "syncs",
}


def our_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.split(".")[0] in DOCUMENTED_QUEUES)


def queue_of(task_name: str) -> str:
    route = app.amqp.router.route({}, task_name, args=(), kwargs={})
    return route["queue"].name


def test_every_task_routes_to_its_documented_queue():
    tasks = our_tasks()
    assert len(tasks) >= 10
    assert {name: queue_of(name) for name in tasks} == {
        name: DOCUMENTED_QUEUES[name.split(".")[0]] for name in tasks
    }


def test_every_documented_queue_is_declared():
    assert set(settings.CELERY_TASK_QUEUES_ALL) == set(DOCUMENTED_QUEUES.values())
    app.finalize()
    assert {queue.name for queue in app.conf.task_queues} == set(DOCUMENTED_QUEUES.values())


def test_every_periodic_task_exists():
    tasks = set(app.tasks)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in tasks, name
