"""Staff customer pages: a list a CSM can scan (health badge, score, 7-day change, MRR, last
activity) with owner/plan/stage/health filters and CSV export, and a customer page that opens on
its health. Writes go through customers.services, like the API's."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from customers import services
from customers.models import Customer, OutcomeSource
from health import insights
from perly import admin_ui
from perly.errors import ApiError
from perly.timestamps import minutes

CSV_HEADER = (
    "id",
    "name",
    "owner",
    "plan",
    "lifecycle_stage",
    "health_status",
    "health_score",
    "score_7d_ago",
    "mrr",
    "currency",
    "last_activity_at",
    "workspace",
)


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ("workspace", *services.WRITABLE_FIELDS)
        help_texts = {
            "churned_at": "UTC. Past dates are fine (history); leave empty with stage 'churned' to stamp now. "
            "Clearing it, or leaving 'churned', records a win-back.",
        }

    def clean_churned_at(self):
        value = self.cleaned_data.get("churned_at")
        if value is not None and value > timezone.now():
            raise forms.ValidationError("churned_at must not be in the future.")
        return value


class DroppedFilter(admin.SimpleListFilter):
    title = "score dropped in the last 7 days"
    parameter_name = "dropped_7d"

    def lookups(self, request, model_admin):
        return (("any", "any drop"), ("10", "by 10 points or more"))

    def queryset(self, request, queryset):
        if self.value() == "any":
            return queryset.filter(health_score__lt=F("score_7d_ago"))
        if self.value() == "10":
            return queryset.filter(health_score__lte=F("score_7d_ago") - 10)
        return queryset


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = ("name", "owner_short", "plan", "stage", "health", "mrr_display", "last_activity")
    list_filter = (
        ("owner", admin.AllValuesFieldListFilter),
        "plan",
        "lifecycle_stage",
        "health_status",
        DroppedFilter,
        "workspace",
    )
    search_fields = ("=id", "name", "email", "domain", "external_id", "owner")
    readonly_fields = ("id", "created_at", "updated_at", "outcome_history")
    actions = ["export_csv"]
    show_full_result_count = False
    list_per_page = 50

    def get_queryset(self, request):
        return insights.customers_with_health_columns(
            super().get_queryset(request).select_related("workspace")
        )

    def get_fieldsets(self, request, obj=None):
        details = services.WRITABLE_FIELDS  # the API's writable fields, in the same order
        if obj is None:
            return ((None, {"fields": ("workspace", *details)}),)
        return (
            ("Customer", {"fields": details}),
            ("Outcomes", {"fields": ("outcome_history",)}),
            ("Record", {"fields": ("id", "workspace", "created_at", "updated_at"), "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        # A customer never moves to another workspace (tenant): fixed once created.
        return self.readonly_fields if obj is None else (*self.readonly_fields, "workspace")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if customer is not None:
            from health.admin import customer_health_panel

            extra.update(health_panel=customer_health_panel(customer), recent_events=_recent_events(customer))
        return super().change_view(request, object_id, form_url, extra_context=extra)

    @admin.display(description="recorded churns and win-backs")
    def outcome_history(self, customer: Customer):
        outcomes = list(customer.outcomes.order_by("-at", "-id")[:20]) if customer.pk else []
        if not outcomes:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((minutes(o.at), o.kind, o.source) for o in outcomes),
        )
        return format_html(
            '<table class="perly-table"><thead><tr><th>when (UTC)</th><th>kind</th><th>source</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="owner", ordering="owner")
    def owner_short(self, customer: Customer):
        if not customer.owner:
            return "—"
        return format_html('<span title="{}">{}</span>', customer.owner, customer.owner.split("@")[0])

    @admin.display(description="stage", ordering="lifecycle_stage")
    def stage(self, customer: Customer):
        return customer.lifecycle_stage or "—"

    @admin.display(description="health", ordering="health_score")
    def health(self, customer: Customer):
        delta = None
        if customer.health_score is not None and customer.score_7d_ago is not None:
            delta = customer.health_score - customer.score_7d_ago
        return format_html(
            '<span class="perly-health-cell">{}<span class="perly-score">{}</span>{}</span>',
            admin_ui.status_badge(customer.health_status),
            admin_ui.score_text(customer.health_score, missing="—"),
            admin_ui.change_arrow(delta),
        )

    @admin.display(description="MRR", ordering="mrr")
    def mrr_display(self, customer: Customer):
        return format_html(
            '<span class="perly-num">{}</span>', admin_ui.money(customer.mrr, customer.mrr_unit)
        )

    @admin.display(description="last activity", ordering="last_activity_at")
    def last_activity(self, customer: Customer):
        when = customer.last_activity_at
        if when is None:
            return "never"
        days = (timezone.now() - when).days
        text = "today" if days < 1 else f"{days} d ago"
        return format_html('<span title="{}">{}</span>', f"{minutes(when)} UTC", text)

    @admin.action(description="Export selected customers as CSV")
    def export_csv(self, request, queryset):
        rows = (
            (
                c.id,
                c.name,
                c.owner,
                c.plan,
                c.lifecycle_stage,
                c.health_status,
                c.health_score,
                c.score_7d_ago,
                c.mrr,
                c.mrr_unit,
                c.last_activity_at,
                c.workspace.slug,
            )
            for c in queryset.order_by("name", "id")
        )
        return admin_ui.csv_response(f"customers-{timezone.now():%Y-%m-%d}.csv", CSV_HEADER, rows)

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
                services.customer_update(
                    workspace_id=obj.workspace_id,
                    customer_id=obj.pk,
                    data=changed,
                    source=OutcomeSource.ADMIN,
                )
            else:
                if fields.get("churned_at") is None:
                    fields.pop("churned_at")  # an empty field is "not given": stage churned stamps now
                created = services.customer_create(
                    workspace_id=obj.workspace_id, data=fields, source=OutcomeSource.ADMIN
                )
                obj.pk = created.pk
        except ApiError as exc:
            messages.error(request, exc.message)

    def delete_model(self, request, obj):
        services.customer_delete(workspace_id=obj.workspace_id, customer_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for customer in queryset:
            services.customer_delete(workspace_id=customer.workspace_id, customer_id=customer.pk)


def _recent_events(customer: Customer):
    events = insights.recent_events(customer_id=customer.id)
    all_url = reverse("admin:events_event_changelist") + f"?q={customer.id}"
    if not events:
        return format_html('<p class="perly-muted">{}</p>', "No events yet.")
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                minutes(event.timestamp),
                event.type,
                (event.properties or {}).get("user_id") or "—",
            )
            for event in events
        ),
    )
    return format_html(
        '<table class="perly-table"><thead><tr><th>when (UTC)</th><th>type</th><th>user</th></tr></thead>'
        '<tbody>{}</tbody></table><p><a href="{}">All events of this customer →</a></p>',
        rows,
        all_url,
    )
