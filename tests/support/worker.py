"""A real Celery worker (and optionally beat) for tests whose behaviour depends on one.

Use with `@pytest.mark.django_db(transaction=True)`: the worker is another process, so it only
sees committed rows. While the fixture is active this process publishes tasks to the broker
instead of running them eagerly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from perly.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def wait_for(
    condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.1, message: str = ""
):
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


def worker_env(**extra: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="perly.settings",
        SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_TASK_ALWAYS_EAGER="false",
        PERLY_WEBHOOK_ALLOW_PRIVATE_URLS="true" if settings.PERLY_WEBHOOK_ALLOW_PRIVATE_URLS else "false",
        STRIPE_API_BASE=settings.STRIPE_API_BASE,
        HUBSPOT_API_BASE=settings.HUBSPOT_API_BASE,
        SALESFORCE_LOGIN_URL=settings.SALESFORCE_LOGIN_URL,
    )
    env.update(extra)
    return env


class Worker:
    def __init__(self, beat: bool = False, concurrency: int = 2, extra_env: dict | None = None):
        self.beat = beat
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "perly",
            "worker",
            "-l",
            "warning",
            "--concurrency",
            str(self.concurrency),
            "--without-gossip",
            "--without-mingle",
            "-Q",
            ",".join(settings.CELERY_TASK_QUEUES_ALL),
        ]
        if self.beat:
            command += ["-B", "--schedule", f"/tmp/perly-test-beat-{os.getpid()}"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=worker_env(**self.extra_env), start_new_session=True
        )
        wait_for(self._ready, timeout=30, message="celery worker to answer ping")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"celery worker exited with {self.process.returncode}")
        replies = celery_app.control.ping(timeout=0.5)
        return bool(replies)

    def kill(self) -> None:
        """SIGKILL the whole worker process group (no graceful shutdown)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def broker_mode():
    """Publish tasks to the broker (not eagerly) for the duration of a test."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def celery_worker_process(broker_mode):
    from perly.redis_client import get_redis

    get_redis().flushdb()  # no stale tasks from earlier tests
    worker = Worker().start()
    yield worker
    worker.stop()
