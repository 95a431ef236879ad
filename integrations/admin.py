"""Staff UI: integrations with "sync now" / "disconnect" (the same services as the API), sync
runs with their stats and errors. Credentials are never shown, only the hint."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from integrations import services
from integrations.models import Integration, SyncRun
from perly.errors import ApiError


def _pretty(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value or {}, indent=2, sort_keys=True, ensure_ascii=False))


class SyncRunInline(admin.TabularInline):
    model = SyncRun
    fields = ("id", "status", "trigger", "started_at", "finished_at", "error")
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ("-id",)
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ("id", "provider", "status", "workspace", "last_synced_at", "next_sync_at", "created_at")
    list_filter = ("provider", "status")
    search_fields = ("=id", "workspace__slug")
    # credentials_encrypted is deliberately absent from every field list.
    fields = (
        "id",
        "workspace",
        "provider",
        "status",
        "credentials_hint_display",
        "config_display",
        "last_synced_at",
        "next_sync_at",
        "created_at",
        "disconnected_at",
    )
    readonly_fields = fields
    inlines = [SyncRunInline]
    actions = ["sync_now", "disconnect"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False  # connecting needs the provider check: use the API

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # disconnect instead; the history stays

    @admin.display(description="credentials (hint)")
    def credentials_hint_display(self, integration: Integration):
        return _pretty(integration.credentials_hint)

    @admin.display(description="config")
    def config_display(self, integration: Integration):
        return _pretty(integration.config)

    @admin.action(description="Sync now")
    def sync_now(self, request, queryset):
        for integration in queryset:
            try:
                run = services.sync_run_request(
                    workspace_id=integration.workspace_id, integration_id=integration.pk
                )
                messages.success(request, f"{integration.pk}: sync {run['id']} queued.")
            except ApiError as exc:
                messages.error(request, f"{integration.pk}: {exc.message}")

    @admin.action(description="Disconnect")
    def disconnect(self, request, queryset):
        for integration in queryset:
            services.integration_disconnect(
                workspace_id=integration.workspace_id, integration_id=integration.pk
            )
        messages.success(request, f"Disconnected {queryset.count()} integration(s).")


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("id", "integration", "status", "trigger", "started_at", "finished_at")
    list_filter = ("status", "trigger")
    search_fields = ("=id", "=integration__id")
    fields = (
        "id",
        "integration",
        "status",
        "trigger",
        "stats_display",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="stats")
    def stats_display(self, run: SyncRun):
        return _pretty(run.stats)
