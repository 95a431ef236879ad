from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from customers import services
from customers.models import Customer
from perly.errors import ApiError


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ("workspace", *services.WRITABLE_FIELDS)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = (
        "name",
        "email",
        "domain",
        "plan",
        "lifecycle_stage",
        "health_status",
        "health_score",
        "workspace",
        "created_at",
    )
    list_filter = ("lifecycle_stage", "plan", "health_status", "workspace")
    search_fields = ("=id", "name", "email", "domain", "external_id")
    readonly_fields = (
        "id",
        "health_score",
        "health_status",
        "health_computed_at",
        "health_breakdown",
        "metadata_pretty",
        "created_at",
        "updated_at",
    )
    show_full_result_count = False

    @admin.display(description="health")
    def health_breakdown(self, customer: Customer):
        from health.admin import customer_health_panel

        return customer_health_panel(customer)

    @admin.display(description="metadata")
    def metadata_pretty(self, customer: Customer):
        return format_html("<pre>{}</pre>", json.dumps(customer.metadata or {}, indent=2, sort_keys=True))

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data.get(name) for name in services.WRITABLE_FIELDS}
        try:
            if change:
                changed = {name: fields[name] for name in form.changed_data if name in fields}
                if "metadata" in changed:
                    # The admin edits the whole object: keys missing from it are removed.
                    removed = {
                        key: None
                        for key in (form.initial.get("metadata") or {})
                        if key not in (changed["metadata"] or {})
                    }
                    changed["metadata"] = {**removed, **(changed["metadata"] or {})}
                services.customer_update(workspace_id=obj.workspace_id, customer_id=obj.pk, data=changed)
            else:
                created = services.customer_create(workspace_id=obj.workspace_id, data=fields)
                obj.pk = created.pk
        except ApiError as exc:
            messages.error(request, exc.message)

    def delete_model(self, request, obj):
        services.customer_delete(workspace_id=obj.workspace_id, customer_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for customer in queryset:
            services.customer_delete(workspace_id=customer.workspace_id, customer_id=customer.pk)
