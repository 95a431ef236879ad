"""The staff site: a Perly home (the health dashboard first, then the domain apps in the order a
customer-success manager uses them, platform internals last) and "View site" on the API docs."""

from __future__ import annotations

from django.contrib import admin
from django.urls import NoReverseMatch, reverse

# Apps not named here (a new one) sit between these and the internals.
APP_ORDER = ("customers", "health", "integrations", "webhooks", "events", "perly")
INTERNAL_APPS = ("auth", "axes")


def _rank(app_label: str) -> tuple[int, int]:
    if app_label in APP_ORDER:
        return (0, APP_ORDER.index(app_label))
    if app_label in INTERNAL_APPS:
        return (2, INTERNAL_APPS.index(app_label))
    return (1, 0)


class PerlyAdminSite(admin.AdminSite):
    site_header = "Perly"
    site_title = "Perly staff"
    index_title = "Perly home"
    site_url = "/docs/"
    # The index lists every app; without the sidebar the customers list has the width it needs.
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        apps = sorted(super().get_app_list(request, app_label), key=lambda app: _rank(app["app_label"]))
        if app_label is None and request.user.has_perm("health.view_healthmodel"):
            home = self._home_app()
            if home is not None:
                apps.insert(0, home)
        return apps

    def _home_app(self) -> dict | None:
        try:
            url = reverse("admin:health_dashboard", current_app=self.name)
        except NoReverseMatch:  # the health admin is not registered on this site
            return None
        return {
            "name": "Today",
            "app_label": "home",
            "app_url": url,
            "has_module_perms": True,
            "models": [
                {
                    "name": "Health dashboard",
                    "object_name": "Dashboard",
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                }
            ],
        }
