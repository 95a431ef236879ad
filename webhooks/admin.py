"""Staff UI for webhooks. Every action calls the same service as the API; secrets are never shown."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from perly.errors import ApiError
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

_ENDPOINT_FIELDS = (
    "id",
    "workspace",
    "url",
    "description",
    "events",
    "active",
    "status",
    "disabled_reason",
    "disabled_at",
    "failing_since",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "url", "workspace", "active", "status", "disabled_reason", "created_at")
    list_filter = ("status", "active", "workspace")
    search_fields = ("=id", "url", "description")
    # `fields` lists what is shown: the encrypted secrets are left out on purpose.
    fields = _ENDPOINT_FIELDS
    readonly_fields = _ENDPOINT_FIELDS
    actions = ("enable_endpoints", "disable_endpoints", "rotate_secrets")
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False  # endpoints are created through the API, which returns the secret once

    def delete_model(self, request, obj):
        services.webhook_endpoint_delete(workspace_id=obj.workspace_id, endpoint_id=obj.pk)

    @admin.action(description="Enable selected endpoints", permissions=["change"])
    def enable_endpoints(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_set_status(endpoint_id=endpoint.pk, enabled=True, reason="")
        self.message_user(request, f"Enabled {len(queryset)} endpoint(s).")

    @admin.action(description="Disable selected endpoints", permissions=["change"])
    def disable_endpoints(self, request, queryset):
        user = request.user.get_username()
        for endpoint in queryset:
            services.webhook_endpoint_set_status(
                endpoint_id=endpoint.pk, enabled=False, reason=f"Disabled by Perly staff ({user})."
            )
        self.message_user(request, f"Disabled {len(queryset)} endpoint(s).")

    @admin.action(description="Rotate signing secret of selected endpoints", permissions=["change"])
    def rotate_secrets(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_rotate_secret(endpoint_id=endpoint.pk)
        self.message_user(
            request,
            f"Rotated the secret of {len(queryset)} endpoint(s); the previous secret keeps signing for "
            "24 h. The new secret is not shown here: the workspace reads it with POST "
            "/v1/webhooks/:id/rotate_secret.",
            messages.WARNING,
        )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = (
        "attempt_number",
        "outcome",
        "status_code",
        "duration_ms",
        "error",
        "response_body",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("attempt_number",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookMessage)
class WebhookMessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type")
    search_fields = ("=id", "=endpoint__id", "endpoint__url")
    list_select_related = ("endpoint",)
    fields = (
        "id",
        "workspace",
        "endpoint",
        "event_type",
        "status",
        "attempt_count",
        "retry_step",
        "next_attempt_at",
        "delivered_at",
        "last_error",
        "created_at",
        "payload_pretty",
    )
    readonly_fields = fields
    inlines = (WebhookAttemptInline,)
    actions = ("retry_now",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="payload")
    def payload_pretty(self, message: WebhookMessage):
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", message.payload)

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset):
        done = 0
        for message in queryset:
            try:
                services.webhook_message_retry(message_id=message.pk)
                done += 1
            except ApiError as exc:
                self.message_user(request, f"{message.pk}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Queued {done} message(s) for delivery.")


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(admin.ModelAdmin):
    list_display = (
        "message",
        "attempt_number",
        "outcome",
        "status_code",
        "duration_ms",
        "error",
        "created_at",
    )
    list_filter = ("outcome", "status_code")
    search_fields = ("=message__id",)
    readonly_fields = (
        "message",
        "attempt_number",
        "outcome",
        "status_code",
        "duration_ms",
        "response_body",
        "error",
        "created_at",
    )
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False
