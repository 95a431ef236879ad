"""Perly settings, read from environment variables (documented in README.md).

One engine everywhere: PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) in production, in the
tests and on a laptop, where `make run` and `make test` start embedded servers from pip-installed
wheels and set both (scripts/devstack.py).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(or DEBUG=true for local development only)."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "perly",
    "customers",
    "events",
    "health",
    "integrations",
    "webhooks",
    # After the apps so that their admin templates (perly/templates/admin/...) override Django's.
    "perly.apps.PerlyAdminConfig",
    "axes",
]

MIDDLEWARE = [
    "perly.middleware.RequestIdMiddleware",
    "perly.middleware.RequestLimitsMiddleware",
    "perly.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "perly.middleware.ApiGatewayMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out admin login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "perly.urls"
WSGI_APPLICATION = "perly.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


# --- Database ---------------------------------------------------------------------------------
def _required_url(name: str, what: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Perly needs {what}: `make run` and `make test` start an embedded one "
            f"(see README), or set {name} to yours."
        )
    return value


DATABASES = {"default": environ.Env.db_url_config(_required_url("DATABASE_URL", "PostgreSQL"))}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://user@host:port/db).")
# Persistent connections: opening one per request costs more than the request itself.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=300)
# Off by default: the check is an extra `SELECT 1` round trip at the start of every request.
# Without it a connection broken by a database restart fails one request (503) and is
# then discarded at the end of that request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
    "DATABASE_CONNECT_TIMEOUT", default=5
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Redis -----------------------------------------------------------------------------
REDIS_URL = _required_url("REDIS_URL", "Redis")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "perly",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Socket timeouts: without them a publish to a black-holed broker (partition, failover) waits
# forever inside the request that made the change (tests/faults/test_redis_down.py).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Each domain has its own queue so operators can scale them independently (docs/operations.md).
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "events.tasks.*": {"queue": "ingest"},
    "customers.tasks.*": {"queue": "default"},
    "health.tasks.*": {"queue": "health"},
    "webhooks.tasks.*": {"queue": "webhooks"},
    "integrations.tasks.*": {"queue": "syncs"},
}
CELERY_TASK_QUEUES_ALL = ["default", "ingest", "health", "webhooks", "syncs"]
# Apps add their periodic tasks here (name -> {"task", "schedule"}).
CELERY_BEAT_SCHEDULE: dict = {}

# --- Auth, passwords, i18n ------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# The admin login is guarded against password guessing by django-axes: after AXES_FAILURE_LIMIT
# failures for one username from one address, that pair is locked out for AXES_COOLOFF_TIME.
# Locking the pair (not the username alone) keeps an attacker from locking staff out.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=0)
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security ---------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
    # A load balancer probes these over plain HTTP; a redirect would read as "down".
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Secrets stored at rest (integration credentials, webhook secrets): MultiFernet keys, the
# first encrypts, all decrypt. Unset, one key is derived from SECRET_KEY.
PERLY_ENCRYPTION_KEYS = env.list("PERLY_ENCRYPTION_KEYS", default=[])

# --- Request limits ---------------------------------------------------------------------------
PERLY_MAX_BODY_BYTES = 1024 * 1024
PERLY_MAX_EVENTS_BODY_BYTES = 4 * 1024 * 1024
# Django's own cap must sit above ours so our 413 answers first.
DATA_UPLOAD_MAX_MEMORY_SIZE = PERLY_MAX_EVENTS_BODY_BYTES + 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
# The query string, for every path (perly.middleware.RequestLimitsMiddleware): over the byte limit
# a 414, over the count a 400. Both sit below gunicorn's own limits (gunicorn.conf.py: a request
# line of 8,190 bytes), so a client normally meets the app's answer, not the server's.
PERLY_MAX_QUERY_STRING_BYTES = 4096
PERLY_MAX_QUERY_PARAMS = 100

# --- Rate limits (per API key, one-minute windows) --------------------------------------------
PERLY_RATE_LIMITS = {
    "read": env.int("PERLY_RATE_LIMIT_READ", default=1000),
    "write": env.int("PERLY_RATE_LIMIT_WRITE", default=200),
    "events": env.int("PERLY_RATE_LIMIT_EVENTS", default=10000),
    "anonymous": env.int("PERLY_RATE_LIMIT_ANONYMOUS", default=60),
}
# Proxies in front of the app that append the peer to X-Forwarded-For: the anonymous bucket
# counts per client address, which behind a proxy is not REMOTE_ADDR (perly.ratelimit).
PERLY_TRUSTED_PROXY_COUNT = env.int("PERLY_TRUSTED_PROXY_COUNT", default=0)
SILENCED_SYSTEM_CHECKS: list[str] = []

# Seconds an API key lookup is cached in each process (revocation reaches others within this).
PERLY_API_KEY_CACHE_SECONDS = 30
# Keys (known or not) each process caches, least recently used dropped first: about 300 bytes
# an entry (measured), so at most ~3 MB a worker. Above the number of keys in use, or they are re-read.
PERLY_API_KEY_CACHE_SIZE = env.int("PERLY_API_KEY_CACHE_SIZE", default=10_000)
PERLY_IDEMPOTENCY_TTL_HOURS = 24
# Seconds a retrieve's response may be served from Redis (perly.response_cache); every write
# invalidates at once, this only bounds a lost invalidation. 0 turns the cache off.
PERLY_RETRIEVE_CACHE_SECONDS = env.int("PERLY_RETRIEVE_CACHE_SECONDS", default=60)

# --- Django REST framework, OpenAPI ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["perly.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["perly.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["perly.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["perly.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["perly.filters.FilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "perly.pagination.CursorPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "perly.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": [],
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Perly API",
    "DESCRIPTION": (
        "Customer-health platform API. Authenticate with `Authorization: Bearer pk_live_...`. "
        "Errors, pagination, rate limits and idempotency follow the conventions in the README."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/v1",
    # The list envelope's `object: "list"` is shared by every list; name its enum once.
    "ENUM_NAME_OVERRIDES": {
        "ListObjectEnum": ["list"],
        "HealthStatusEnum": "customers.models.HealthStatus",
        "IntegrationObjectEnum": ["integration"],
        "IntegrationStatusEnum": "integrations.models.IntegrationStatus",
        "WebhookEndpointStatusEnum": "webhooks.models.EndpointStatus",
        "HealthJobStatusEnum": "health.models.JobStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "perly.openapi.add_conventions",
    ],
}

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "perly.logging.RequestIdFilter"},
        "mask_secrets": {"()": "perly.logging.SecretMaskingFilter"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id", "mask_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        # The Stripe SDK logs every request and response at INFO (a quarter of a sync's client time).
        "stripe": {"level": "WARNING"},
    },
}

# --- Integrations, webhooks (later issues add their settings here) ----------------------------
PERLY_WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("PERLY_WEBHOOK_ALLOW_PRIVATE_URLS", default=False)


def _provider_base_url(name: str, default: str) -> str:
    """Fail at startup on a base URL the outbound check would refuse at the first sync."""
    from perly.outbound import OutboundUrlError, checked_url

    value = env.str(name, default=default)
    try:
        checked_url(value.rstrip("/"), schemes=("https", "http"), what=name)
    except OutboundUrlError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    return value


STRIPE_API_BASE = _provider_base_url("STRIPE_API_BASE", "https://api.stripe.com")
HUBSPOT_API_BASE = _provider_base_url("HUBSPOT_API_BASE", "https://api.hubapi.com")
SALESFORCE_LOGIN_URL = _provider_base_url("SALESFORCE_LOGIN_URL", "https://login.salesforce.com")

if PERLY_WEBHOOK_ALLOW_PRIVATE_URLS and os.environ.get("RUN_MAIN") != "true":
    logging.getLogger("perly").warning(
        "PERLY_WEBHOOK_ALLOW_PRIVATE_URLS is on: webhook URLs may target private networks. "
        "Use this for development and tests only."
    )
