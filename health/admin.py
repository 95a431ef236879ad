"""Staff UI: the health model with its version history, a dashboard, and the customer panel."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from customers.models import Customer
from health import charts, dashboard, insights, selectors, services
from health.backtests import backtest_representation, fit_apply, fit_representation
from health.models import Backtest, CustomerHealth, HealthModel, HealthSnapshot, ModelFit
from perly import admin_ui
from perly.errors import ApiError
from perly.models import Workspace

CHART_DAYS = 90
SEGMENT_LABELS = (
    ("plan", "Plan", "all plans"),
    ("owner", "Owner", "all owners"),
    ("lifecycle_stage", "Stage", "all stages"),
)
DASHBOARD_ROWS = 50


def customer_health_panel(customer: Customer) -> SafeString:
    """The customer page's first section: score, badge, 7/30-day changes, the top reasons in
    words, the score chart and the signal table with contributions."""
    if customer.pk is None:
        return format_html("{}", "Scored once the customer has events or integration data.")
    health = selectors.customer_health(customer=customer)
    model = services.health_model_current(workspace_id=customer.workspace_id)
    points = list(
        HealthSnapshot.objects.filter(
            customer_id=customer.id, date__gt=timezone.now().date() - timedelta(days=CHART_DAYS)
        ).values_list("date", "score")
    )
    medians = insights.signal_medians(workspace_id=customer.workspace_id) if health["signals"] else {}
    reasons = insights.weakest_against_median(health["signals"], medians)
    rows = format_html_join(
        "",
        '<tr><td>{}</td><td class="perly-num">{}</td><td class="perly-num">{}</td>'
        '<td class="perly-num">{}</td><td class="perly-num">{}</td><td class="perly-num">{}</td></tr>',
        (
            (
                s["label"],
                admin_ui.measure(s["value"], s["unit"]),
                f"{s['score']:.0f}",
                "—" if s["key"] not in medians else f"{medians[s['key']]:.0f}",
                f"{s['weight']:.1f}",
                f"{s['contribution']:.2f}",
            )
            for s in health["signals"]
        ),
    )
    return format_html(
        '<div class="perly-health"><div class="perly-headline">'
        '<div><span class="perly-big">{}</span> {}</div>'
        "<p>7 days: {} &nbsp; 30 days: {}</p>"
        '<p class="perly-muted">confidence {} · model v{} · computed {}</p>'
        '<p><b>Why</b> (weakest against the workspace median):</p><ul class="perly-reasons">{}</ul></div>'
        "<div>{}</div></div>"
        '<table class="perly-table"><thead><tr><th>signal</th><th class="perly-num">value</th>'
        '<th class="perly-num">score</th><th class="perly-num">workspace median</th>'
        '<th class="perly-num">weight</th><th class="perly-num">contribution</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        admin_ui.score_text(health["score"], missing="—"),
        admin_ui.status_badge(health["status"]),
        admin_ui.change_arrow(health["change_7d"]),
        admin_ui.change_arrow(health["change_30d"]),
        f"{health['confidence']:.0%}",
        health["model_version"],
        (health["computed_at"] or "never").replace("T", " ").replace("Z", " UTC"),
        format_html_join("", "<li>{}</li>", ((insights.reason_text(r),) for r in reasons))
        or format_html("<li>{}</li>", "no signals yet"),
        charts.score_chart(points, healthy=model.healthy_threshold, at_risk=model.at_risk_threshold),
        rows or format_html('<tr><td colspan="6">{}</td></tr>', "No signals yet."),
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
            path(
                "dashboard/apply-fit/",
                self.admin_site.admin_view(self.apply_fit_view),
                name="health_dashboard_apply_fit",
            ),
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
        if selected is None:
            return TemplateResponse(request, "admin/health/dashboard.html", context)
        model = services.health_model_current(workspace_id=selected.id)
        choices = dashboard.segment_choices(workspace_id=selected.id)
        segment = {
            name: request.GET[name] if request.GET.get(name) in choices[name] else None
            for name in dashboard.SEGMENT_FIELDS
        }
        if request.GET.get("export") == "csv":
            rows = dashboard.at_risk_export(workspace_id=selected.id, model=model, segment=segment)
            return admin_ui.csv_response(
                f"at-risk-{selected.slug}-{timezone.now():%Y-%m-%d}.csv", AT_RISK_CSV_HEADER, _csv_rows(rows)
            )
        summary = selectors.health_summary(workspace_id=selected.id, **segment)
        rows, has_more = dashboard.at_risk_table(
            workspace_id=selected.id, model=model, segment=segment, limit=DASHBOARD_ROWS
        )
        for row in rows:
            row["url"] = reverse("admin:customers_customer_change", args=[row["customer"]["id"]])
            row["mrr_text"] = admin_ui.money(row["mrr"], row["mrr_unit"])
            row["weakest_text"] = "; ".join(insights.reason_text(s) for s in row["weakest"]) or "no signals"
        query = {name: value for name, value in segment.items() if value is not None}
        context.update(_cohort_context(request, selected, model))
        context.update(_jobs_context(selected))
        context.update(
            model=model,
            summary=summary,
            histogram=charts.histogram(summary["distribution"]),
            at_risk=rows,
            at_risk_more=has_more,
            segment_filters=[
                (name, label, everyone, choices[name], segment[name])
                for name, label, everyone in SEGMENT_LABELS
            ],
            export_query=urlencode({"workspace": selected.id, **query, "export": "csv"}),
        )
        return TemplateResponse(request, "admin/health/dashboard.html", context)

    def apply_fit_view(self, request):
        """POST only: the dashboard's "Apply" button, through the service the API's apply uses."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        workspace_id, fit_id = request.POST.get("workspace", ""), request.POST.get("fit", "")
        if not self.has_change_permission(request) and not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:health_dashboard"))
        try:
            model = fit_apply(workspace_id=workspace_id, fit_id=fit_id)
        except ApiError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, f"Applied {fit_id}: model v{model.version} created; rescoring in the background."
            )
        return HttpResponseRedirect(
            f"{reverse('admin:health_dashboard')}?{urlencode({'workspace': workspace_id})}"
        )


def _jobs_context(workspace: Workspace) -> dict:
    """The newest backtest and model fit of the workspace, as the API shows them."""
    backtest = Backtest.objects.filter(workspace_id=workspace.id).order_by("-id").first()
    fit = ModelFit.objects.filter(workspace_id=workspace.id).order_by("-id").first()
    return {
        "latest_backtest": backtest_representation(backtest) if backtest else None,
        "latest_fit": fit_representation(fit) if fit else None,
    }


def _cohort_context(request, workspace: Workspace, model: HealthModel) -> dict:
    """The cohort chart's form, and the chart when a metric was chosen (computed on demand: it
    recomputes every customer's value as of a past day)."""
    from health import cohorts
    from health.metrics import model_specs

    keys = ["score", *(spec.key for spec in model_specs(model.metrics))]
    context = {"cohort_keys": keys, "cohort_horizon": 30, "cohort_groups": 10}
    key = request.GET.get("cohort_metric")
    if key not in keys:
        context["cohort_as_of"] = (timezone.now().date() - timedelta(days=30)).isoformat()
        return context
    params = {
        name: request.GET[name] for name in ("as_of", "horizon_days", "groups") if request.GET.get(name)
    }
    try:
        as_of, horizon, groups = cohorts.parse_cohort_params(params, today=timezone.now().date())
        result = cohorts.metric_cohorts(
            workspace_id=workspace.id, key=key, as_of=as_of, horizon_days=horizon, groups=groups
        )
    except ApiError as exc:
        context.update(cohort_error=exc.message, cohort_metric=key, cohort_as_of=params.get("as_of", ""))
        return context
    context.update(
        cohort_metric=key,
        cohort_as_of=as_of.isoformat(),
        cohort_horizon=horizon,
        cohort_groups=groups,
        cohorts=result,
        cohort_chart=charts.cohort_chart(result["groups"]),
    )
    return context


AT_RISK_CSV_HEADER = (
    "customer_id",
    "name",
    "owner",
    "plan",
    "lifecycle_stage",
    "mrr",
    "currency",
    "score",
    "score_7d_ago",
    "dropped_on",
    "weakest_signals",
)


def _csv_rows(rows: list[dict]):
    for row in rows:
        yield (
            row["customer"]["id"],
            row["customer"]["name"],
            row["owner"],
            row["plan"],
            row["lifecycle_stage"],
            row["mrr"],
            row["mrr_unit"],
            row["score"],
            row["previous_score"],
            row["dropped_on"],
            "; ".join(signal["label"] for signal in row["weakest"]),
        )


@admin.register(CustomerHealth)
class CustomerHealthAdmin(admin.ModelAdmin):
    """Read-only: scores are written by rescoring only."""

    list_display = ("customer", "workspace", "score", "status", "confidence", "model_version", "computed_at")
    list_filter = ("status", "workspace")
    search_fields = ("=customer__id", "customer__name")
    show_full_result_count = False

    def get_queryset(self, request):
        # A deleted customer's score is gone at once; the purge removes the row later.
        return super().get_queryset(request).filter(customer__deleted_at__isnull=True)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
