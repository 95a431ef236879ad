"""The health dashboard's backtest and fit panel, in Chromium: the Apply button makes a version."""

from __future__ import annotations

from health.models import HealthModel, ModelFit


def test_dashboard_apply_button_applies_the_latest_fit(page, book):
    workspace = book["workspace"]
    fit = ModelFit.objects.create(
        workspace_id=workspace.id,
        status="succeeded",
        params={"horizon_days": 30},
        result={
            "observations": 90,
            "churned": 9,
            "fitted_signals": ["usage.active_days_30d", "engagement.recency_days"],
            "proposed_model": {
                "weights": {"usage.active_days_30d": 60.0, "engagement.recency_days": 40.0},
                "higher_is_better": {"usage.active_days_30d": True, "engagement.recency_days": False},
                "thresholds": {"healthy": 60.0, "at_risk": 30.0},
            },
            "flipped": [],
            "dropped": [],
            "coverage": {"usage.active_days_30d": 1.0, "engagement.recency_days": 1.0},
            "cv_auc": 0.7,
            "current_model_auc": 0.6,
            "churn_curve": {"intercept": -1.0, "slope": -0.04, "horizon_days": 30},
        },
    )
    page.goto(f"/admin/health/healthmodel/dashboard/?workspace={workspace.id}")
    panel = page.locator("#latest-fit")
    assert f"Model fit {fit.id}" in panel.inner_text()
    assert "No backtest yet" in page.locator("#latest-backtest").inner_text()
    panel.get_by_role("button", name="Apply (creates a new model version)").click()
    page.wait_for_selector(".messagelist .success")
    assert f"Applied {fit.id}" in page.locator(".messagelist").inner_text()
    model = HealthModel.objects.filter(workspace_id=workspace.id).order_by("-version").first()
    assert model.created_by == f"fit:{fit.id}" and model.at_risk_threshold == 30.0
    assert f"applied as model v{model.version}" in page.locator("#latest-fit").inner_text()
    # The rescore ran with the new version, so the dashboard's model line shows it.
    assert f"Model v{model.version}" in page.content()
