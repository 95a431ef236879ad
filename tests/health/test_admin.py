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
