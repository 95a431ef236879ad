"""Staff UI: the health model with its version history, a dashboard, and the customer panel."""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from customers.models import Customer
from health import charts, selectors, services
from health.models import CustomerHealth, HealthModel, HealthSnapshot
from perly.errors import ApiError
from perly.models import Workspace


def customer_health_panel(customer: Customer) -> SafeString:
    """Score, status, signal breakdown and a 90-day chart, for the customer admin page."""
    if customer.pk is None:
        return format_html("{}", "—")
    health = selectors.customer_health(customer=customer)
    model = services.health_model_current(workspace_id=customer.workspace_id)
    end = timezone.now().date()
    points = list(
        HealthSnapshot.objects.filter(customer_id=customer.id, date__gt=end - timedelta(days=90))
        .order_by("date")
        .values_list("date", "score")
    )
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                s["label"],
                s["key"],
                "—" if s["value"] is None else f"{s['value']:g} {s['unit']}",
                f"{s['score']:g}",
                f"{s['weight']:g}",
                f"{s['contribution']:.2f}",
            )
            for s in health["signals"]
        ),
    )
    return format_html(
        "<div><p>Score <b>{}</b> — {} (confidence {}, model v{}, computed {})</p>"
        "<table><thead><tr><th>signal</th><th>key</th><th>value</th><th>score</th><th>weight</th>"
        "<th>contribution</th></tr></thead><tbody>{}</tbody></table><p>Last 90 days</p>{}</div>",
        "—" if health["score"] is None else health["score"],
        charts.status_badge(health["status"]),
        health["confidence"],
        health["model_version"],
        health["computed_at"] or "never",
        rows,
        charts.score_chart(points, end=end, healthy=model.healthy_threshold, at_risk=model.at_risk_threshold),
    )


class HealthModelForm(forms.ModelForm):
    weights = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 16, "cols": 60}),
        help_text="JSON: signal key -> weight (>= 0). Keys left out keep their weight.",
    )

    class Meta:
        model = HealthModel
        fields = ("workspace", "weights", "healthy_threshold", "at_risk_threshold")

    def clean_weights(self):
        try:
            value = json.loads(self.cleaned_data["weights"])
        except ValueError:
            raise forms.ValidationError("Enter a JSON object.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Enter a JSON object.")
        return value


@admin.register(HealthModel)
class HealthModelAdmin(admin.ModelAdmin):
    """Every save creates a new version through health.services (versions are never edited)."""

    form = HealthModelForm
    list_display = (
        "workspace",
        "version",
        "healthy_threshold",
        "at_risk_threshold",
        "created_by",
        "created_at",
    )
    list_filter = ("workspace",)
    ordering = ("workspace", "-version")

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        workspace_id = request.GET.get("workspace")
        if workspace_id and Workspace.objects.filter(pk=workspace_id).exists():
            current = services.health_model_current(workspace_id=workspace_id)
            initial.update(
                weights=json.dumps(current.weights, indent=2, sort_keys=True),
                healthy_threshold=current.healthy_threshold,
                at_risk_threshold=current.at_risk_threshold,
            )
        return initial

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            model, created = services.health_model_update(
                workspace_id=form.cleaned_data["workspace"].id,
                weights=form.cleaned_data["weights"],
                healthy_threshold=form.cleaned_data["healthy_threshold"],
                at_risk_threshold=form.cleaned_data["at_risk_threshold"],
                created_by=f"admin:{request.user.get_username()}",
            )
        except ApiError as exc:
            messages.error(request, exc.message)
            model, created = None, False
        if model is not None:
            obj.pk = model.pk
            if not created:
                messages.info(request, "Nothing changed: no new version was created.")

    def get_urls(self):
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="health_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request):
        workspaces = list(Workspace.objects.order_by("slug"))
        selected = next((ws for ws in workspaces if ws.id == request.GET.get("workspace")), None)
        selected = selected or (workspaces[0] if workspaces else None)
        context = {
            **self.admin_site.each_context(request),
            "title": "Health dashboard",
            "workspaces": workspaces,
            "selected": selected,
        }
        if selected is not None:
            model = services.health_model_current(workspace_id=selected.id)
            summary = selectors.health_summary(
                workspace_id=selected.id, plan=None, owner=None, lifecycle_stage=None
            )
            at_risk, _ = selectors.at_risk_page(
                workspace_id=selected.id, threshold=model.at_risk_threshold, dropped_after=None, limit=50
            )
            rows = selectors.at_risk_rows(customers=at_risk, threshold=model.at_risk_threshold)
            for row in rows:
                row["url"] = reverse("admin:customers_customer_change", args=[row["customer"]["id"]])
                row["weakest"] = ", ".join(s["label"] for s in row["weakest_signals"])
            context.update(
                model=model,
                summary=summary,
                histogram=charts.histogram(summary["distribution"]),
                at_risk=rows,
            )
        return TemplateResponse(request, "admin/health/dashboard.html", context)


@admin.register(CustomerHealth)
class CustomerHealthAdmin(admin.ModelAdmin):
    """Read-only: scores are written by rescoring only."""

    list_display = ("customer", "workspace", "score", "status", "confidence", "model_version", "computed_at")
    list_filter = ("status", "workspace")
    search_fields = ("=customer__id", "customer__name")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
