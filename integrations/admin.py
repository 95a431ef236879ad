"""Staff UI: a Connect page per provider, integrations with "sync now" / "disconnect" (the same
services and validation as the API), sync runs with their stats and errors. Credentials are
never shown after they are entered, only the hint."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from integrations import config, services
from integrations.api.serializers import IntegrationCreateSerializer
from integrations.models import Integration, Provider, SyncRun
from perly.errors import ApiError
from perly.models import Workspace

# The credential fields of each provider's Connect form: (name, label, secret, required).
CREDENTIAL_FIELDS = {
    Provider.STRIPE: [("api_key", "Secret or restricted key (sk_… / rk_…)", True, True)],
    Provider.HUBSPOT: [("access_token", "Private-app access token", True, True)],
    Provider.SALESFORCE: [
        ("client_id", "Connected-app client id", False, True),
        ("client_secret", "Connected-app client secret", True, True),
        ("login_url", "My Domain or sandbox login URL (optional)", False, False),
    ],
}


class ConnectForm(forms.Form):
    workspace = forms.ModelChoiceField(queryset=Workspace.objects.order_by("slug"))
    sync_interval_minutes = forms.IntegerField(
        required=False,
        initial=config.DEFAULTS["sync_interval_minutes"],
        help_text=f"Minutes between scheduled syncs (at least {config.MIN_SYNC_INTERVAL_MINUTES}).",
    )
    create_customers = forms.BooleanField(
        required=False,
        initial=config.DEFAULTS["create_customers"],
        help_text="Create a Perly customer for each provider account that matches none.",
    )

    def __init__(self, *args, provider: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider
        for name, label, secret, required in reversed(CREDENTIAL_FIELDS[provider]):
            widget = forms.PasswordInput if secret else forms.TextInput
            field = forms.CharField(
                label=label, required=required, widget=widget(attrs={"autocomplete": "off"})
            )
            self.fields = {"workspace": self.fields.pop("workspace"), name: field, **self.fields}

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        credentials = {
            name: data[name]
            for name, *_ in CREDENTIAL_FIELDS[self.provider]
            if data.get(name) not in (None, "")
        }
        config_data = {"create_customers": bool(data.get("create_customers"))}
        if data.get("sync_interval_minutes") is not None:
            config_data["sync_interval_minutes"] = data["sync_interval_minutes"]
        # The API's own validation, so both refuse the same input with the same words.
        serializer = IntegrationCreateSerializer(
            data={"provider": self.provider, "credentials": credentials, "config": config_data}
        )
        if not serializer.is_valid():
            for group in ("credentials", "config"):
                for name, problems in _flatten(serializer.errors.get(group)):
                    self.add_error(name if name in self.fields else None, problems)
            for problem in serializer.errors.get("non_field_errors", []):
                self.add_error(None, problem)
            return data
        data["validated"] = serializer.validated_data
        return data


def _flatten(errors) -> list[tuple[str | None, list[str]]]:
    if not errors:
        return []
    if isinstance(errors, dict):
        return [(name, [str(p) for p in problems]) for name, problems in errors.items()]
    return [(None, [str(p) for p in errors])]


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
        return False  # connecting needs the provider check: the Connect page does it

    def get_urls(self):
        return [
            path(
                "connect/<str:provider>/",
                self.admin_site.admin_view(self.connect_view),
                name="integrations_integration_connect",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        providers = [(value, label) for value, label in Provider.choices]
        return super().changelist_view(request, {**(extra_context or {}), "providers": providers})

    def connect_view(self, request, provider: str):
        if provider not in CREDENTIAL_FIELDS:
            raise Http404("Unknown provider.")
        if not request.user.has_perm("integrations.add_integration"):
            raise PermissionDenied
        form = ConnectForm(request.POST or None, provider=provider)
        if request.method == "POST" and form.is_valid():
            validated = form.cleaned_data["validated"]
            try:
                integration = services.integration_create(
                    workspace_id=form.cleaned_data["workspace"].id,
                    provider=provider,
                    credentials=validated["credentials"],
                    config_data=validated["config"],
                )
            except ApiError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    f"Connected {Provider(provider).label} to {form.cleaned_data['workspace'].slug}: "
                    "the first sync has started.",
                )
                return HttpResponseRedirect(
                    reverse("admin:integrations_integration_change", args=[integration.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Connect {Provider(provider).label}",
            "form": form,
            "provider": provider,
            "provider_label": Provider(provider).label,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/integrations/integration/connect.html", context)

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
