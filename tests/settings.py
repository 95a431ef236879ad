"""Test settings: perly.settings against the real PostgreSQL and Redis.

`make test` (scripts/devstack.py) provides DATABASE_URL and REDIS_URL: the ones given as
TEST_DATABASE_URL / TEST_REDIS_URL, or embedded servers. There is no default to fall back to.

Unit tests run a task's body in-process when it is published (CELERY_TASK_ALWAYS_EAGER below), so
they can assert its effect; behaviour that depends on a real worker (retries, beat, queues, a
worker killed mid-task) is tested against one (tests/support/worker.py).
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("DEBUG", "false")

from perly.settings import *  # noqa: E402,F403
from perly.settings import STORAGES  # noqa: E402

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
REST_FRAMEWORK = {**REST_FRAMEWORK, "TEST_REQUEST_DEFAULT_FORMAT": "json"}  # noqa: F405
SECURE_SSL_REDIRECT = False
