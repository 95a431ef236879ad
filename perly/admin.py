from __future__ import annotations

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from perly.apikeys import api_key_create, api_key_revoke
from perly.models import ApiKey, Workspace
from perly.scopes import ALL_SCOPES, normalize_scopes


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_test", "created_at")
    search_fields = ("slug", "name")
    list_filter = ("is_test",)
    readonly_fields = ("id", "created_at")


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[("read", "read (all resources)"), ("write", "write (all resources)")]
        + [(s, s) for s in ALL_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=["read", "write"],
    )

    class Meta:
        model = ApiKey
        fields = (
            "workspace",
            "name",
            "scopes",
            "rate_limit_read",
            "rate_limit_write",
            "rate_limit_events",
            "expires_at",
        )

    def clean_scopes(self):
        return normalize_scopes(self.cleaned_data["scopes"])


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("id", "name", "workspace", "prefix", "status", "last_used_at", "expires_at", "created_at")
    list_filter = ("workspace",)
    search_fields = ("=id", "name", "prefix", "workspace__slug")
    readonly_fields = ("id", "prefix", "last_used_at", "revoked_at", "created_at")
    actions = ["revoke_keys"]

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        if key.revoked_at:
            return "revoked"
        return "active"

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (*self.readonly_fields, "workspace")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            from perly.apikeys import forget_cached_key

            forget_cached_key(obj.key_hash)
            return
        data = form.cleaned_data
        key, full_key = api_key_create(
            workspace=data["workspace"],
            name=data.get("name") or "",
            scopes=data["scopes"],
            rate_limit_read=data.get("rate_limit_read"),
            rate_limit_write=data.get("rate_limit_write"),
            rate_limit_events=data.get("rate_limit_events"),
            expires_at=data.get("expires_at"),
        )
        obj.pk = key.pk
        obj.__dict__.update(key.__dict__)
        # Shown by response_add in the body of this one answer. Not a message: Django's message
        # storage is a signed, not encrypted, cookie, and the session would keep it server-side.
        request._perly_created_key = full_key

    def response_add(self, request, obj, post_url_continue=None):
        full_key = getattr(request, "_perly_created_key", None)
        if full_key is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/perly/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "API key created",
                "key": obj,
                "full_key": full_key,
            },
        )
        add_never_cache_headers(response)  # no-store: no cache or back button may replay it
        return response

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
