from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from health.models import HealthModel
from health.services import health_rollup
from tests.health.conftest import add_events


@pytest.fixture
def staff(client, django_user_model):
    from django.test import Client

    user = django_user_model.objects.create_superuser("staff", "staff@perly.io", "pw-123456789")
    browser = Client()
    browser.force_login(user)
    return browser


def test_customer_page_shows_score_breakdown_and_svg_chart(staff, make_customer):
    customer = make_customer("Fading Co")
    add_events(customer, [timezone.now() - timedelta(days=2)], types=["login"])
    health_rollup()
    page = staff.get(f"/admin/customers/customer/{customer.id}/change/").content.decode()
    assert "Active days in the last 30" in page
    assert "contribution" in page
    assert "<svg" in page and "<circle" in page  # one snapshot: a dot
    assert '<script src="http' not in page


def test_dashboard_lists_counts_histogram_and_at_risk_links(staff, make_customer, workspace):
    quiet = make_customer("Quiet Co")
    add_events(quiet, [timezone.now() - timedelta(days=45)])
    health_rollup()
    page = staff.get(f"/admin/health/healthmodel/dashboard/?workspace={workspace.id}").content.decode()
    assert "Health dashboard" in page
    assert 'aria-label="Score distribution"' in page
    assert f"/admin/customers/customer/{quiet.id}/change/" in page


def test_admin_model_edit_creates_a_new_version(staff, workspace, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            "/admin/health/healthmodel/add/",
            {
                "workspace": workspace.id,
                "weights": '{"billing.mrr": 50}',
                "healthy_threshold": "75",
                "at_risk_threshold": "35",
            },
        )
    assert response.status_code == 302, response.content[:2000]
    assert list(
        HealthModel.objects.filter(workspace=workspace).values_list("version", "healthy_threshold")
    ) == [(2, 75.0), (1, 70.0)]
    assert HealthModel.objects.get(workspace=workspace, version=2).weights["billing.mrr"] == 50.0


def test_dashboard_cohort_chart_shows_churn_by_group(staff, make_customer, workspace):
    from customers.models import Outcome
    from health.services import end_of_day

    as_of = timezone.now().date() - timedelta(days=40)
    end = end_of_day(as_of)
    for index in range(6):
        customer = make_customer(f"Cohort {index}")
        add_events(customer, [end - timedelta(days=1, hours=n) for n in range(index + 1)])
        if index < 2:
            Outcome.objects.create(
                workspace=workspace,
                customer=customer,
                kind="churned",
                at=end + timedelta(days=3),
                source="admin",
            )
    page = staff.get(
        "/admin/health/healthmodel/dashboard/",
        {
            "workspace": workspace.id,
            "cohort_metric": "usage.active_days_30d",
            "as_of": as_of.isoformat(),
            "groups": "3",
        },
    ).content.decode()
    assert 'aria-label="Churn rate by cohort"' in page
    assert page.count('class="cohort-bar"') == 3 and page.count('class="cohort-whisker"') == 3
    assert "6 customers not churned" in page
    bad = staff.get(
        "/admin/health/healthmodel/dashboard/",
        {"workspace": workspace.id, "cohort_metric": "score", "as_of": timezone.now().date().isoformat()},
    ).content.decode()
    assert "at least horizon_days in the past" in bad


def _fit(workspace, status="succeeded"):
    from health.models import ModelFit

    result = {
        "observations": 120,
        "churned": 12,
        "fitted_signals": ["usage.active_days_30d", "engagement.recency_days"],
        "proposed_model": {
            "weights": {"usage.active_days_30d": 70.0, "engagement.recency_days": 30.0},
            "higher_is_better": {"usage.active_days_30d": True, "engagement.recency_days": False},
            "thresholds": {"healthy": 55.0, "at_risk": 35.0},
        },
        "flipped": [],
        "dropped": [],
        "coverage": {"usage.active_days_30d": 1.0, "engagement.recency_days": 1.0},
        "cv_auc": 0.71,
        "current_model_auc": 0.64,
        "churn_curve": {"intercept": -1.0, "slope": -0.04, "horizon_days": 30},
    }
    error = None if status == "succeeded" else {"code": "no_churn", "message": "No churn."}
    return ModelFit.objects.create(
        workspace_id=workspace.id,
        status=status,
        params={"horizon_days": 30},
        result=result if status == "succeeded" else None,
        error=error,
    )


def test_dashboard_shows_the_latest_fit_and_its_apply_button_makes_a_version(staff, workspace):
    fit = _fit(workspace)
    url = f"/admin/health/healthmodel/dashboard/?workspace={workspace.id}"
    page = staff.get(url).content.decode()
    assert f"Model fit {fit.id}" in page and "cross-validated AUC 0.71 (current model 0.64)" in page
    assert 'id="apply-fit"' in page and "No backtest yet" in page
    before = HealthModel.objects.filter(workspace_id=workspace.id).count()
    response = staff.post(
        "/admin/health/healthmodel/dashboard/apply-fit/", {"workspace": workspace.id, "fit": fit.id}
    )
    assert response.status_code == 302 and workspace.id in response["Location"]
    model = HealthModel.objects.filter(workspace_id=workspace.id).order_by("-version").first()
    assert HealthModel.objects.filter(workspace_id=workspace.id).count() == before + 1
    assert model.created_by == f"fit:{fit.id}" and model.healthy_threshold == 55.0
    assert model.weights["usage.active_days_30d"] == 70.0 and model.weights["usage.breadth_30d"] == 0.0
    page = staff.get(url).content.decode()
    assert f"applied as model v{model.version}" in page


def test_dashboard_apply_of_a_failed_fit_says_why_and_changes_nothing(staff, workspace):
    from health.services import health_model_current

    health_model_current(workspace_id=workspace.id)
    fit = _fit(workspace, status="failed")
    assert (
        'id="apply-fit"'
        not in staff.get(f"/admin/health/healthmodel/dashboard/?workspace={workspace.id}").content.decode()
    )
    before = HealthModel.objects.count()
    response = staff.post(
        "/admin/health/healthmodel/dashboard/apply-fit/",
        {"workspace": workspace.id, "fit": fit.id},
        follow=True,
    )
    assert "only a succeeded fit can be applied" in response.content.decode()
    assert HealthModel.objects.count() == before
    assert staff.get("/admin/health/healthmodel/dashboard/apply-fit/").status_code == 405
