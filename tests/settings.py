"""Test settings: perly.settings against the real PostgreSQL and Redis, tasks eager by default.

`make test` provides DATABASE_URL and REDIS_URL; the suite refuses to run on SQLite.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/perly")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from perly.settings import *  # noqa: E402,F403
from perly.settings import DATABASES, STORAGES  # noqa: E402

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError("The test suite runs against PostgreSQL (set DATABASE_URL); it never uses SQLite.")

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
REST_FRAMEWORK = {**REST_FRAMEWORK, "TEST_REQUEST_DEFAULT_FORMAT": "json"}  # noqa: F405
SECURE_SSL_REDIRECT = False
