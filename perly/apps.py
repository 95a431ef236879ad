from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PerlyConfig(AppConfig):
    default = True  # this module also holds PerlyAdminConfig
    name = "perly"
    verbose_name = "Perly platform"

    def ready(self) -> None:
        from django.conf import settings

        from perly import openapi  # noqa: F401  (registers the OpenAPI auth extension)

        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "perly.prune_idempotency_records",
            {"task": "perly.tasks.prune_idempotency_records", "schedule": 3600.0},
        )


class PerlyAdminConfig(admin_apps.AdminConfig):
    """The Django admin with Perly's site (perly.admin_site): app order, home, "View site"."""

    default = False  # named explicitly in INSTALLED_APPS
    default_site = "perly.admin_site.PerlyAdminSite"
