"""Score math, thresholds, the acceptance anchor and model versioning."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Customer
from health.models import CustomerHealth, HealthModel
from health.representation import stored_signals
from health.rescore import rescore
from health.services import (
    external_signals_upsert,
    health_model_current,
    health_model_update,
    rescore_customers,
)
from health.signals import default_weights
from tests.health.conftest import SIX_EQUAL_SIGNALS, add_events

NOW = timezone.now()


def test_default_weights_split_each_category_across_its_signals():
    weights = default_weights()
    assert weights["usage.active_days_30d"] == pytest.approx(40 / 3, abs=1e-3)
    assert weights["engagement.recency_days"] == 7.5
    assert weights["billing.mrr"] == 5.0
    assert weights["support.open_cases"] == 5.0
    assert sum(weights.values()) == pytest.approx(100, abs=0.01)


def _scored(customer, weights: dict[str, float], scores: dict[str, float]) -> CustomerHealth:
    """The customer's stored score under a model of `weights`, from external signals alone."""
    model = HealthModel.objects.create(workspace_id=customer.workspace_id, version=1, weights=weights)
    signals = [{"key": key, "score": score, "value": 1.0} for key, score in scores.items()]
    external_signals_upsert(
        workspace_id=customer.workspace_id, customer_id=customer.id, source="test", signals=signals
    )
    rescore(workspace_id=customer.workspace_id, model=model, customer_ids=[customer.id])
    return CustomerHealth.objects.get(customer_id=customer.id)


def test_absent_signals_weights_are_left_out_not_counted_as_zero(make_customer):
    weights = {"billing.overdue_amount": 40.0, "billing.mrr": 20.0, "support.open_cases": 10.0}
    health = _scored(make_customer(), weights, {"billing.overdue_amount": 50.0, "billing.mrr": 80.0})
    assert health.score == pytest.approx((40 * 50 + 20 * 80) / 60, abs=0.01)
    assert health.confidence == pytest.approx(60 / 70, abs=1e-4)


def test_contributions_add_up_to_the_score(make_customer):
    weights = default_weights()
    scores = {
        "billing.mrr": 33.3,
        "billing.overdue_amount": 71.9,
        "billing.failed_payments_90d": 12.0,
        "engagement.open_deal_amount": 98.7,
        "support.open_cases": 55.5,
        "support.high_priority_open_cases": 3.0,
    }
    health = _scored(make_customer(), weights, scores)
    signals = stored_signals(health)
    assert sum(item["contribution"] for item in signals) == pytest.approx(health.score, abs=1e-9)
    exact = sum(weights[key] * score for key, score in scores.items()) / sum(weights[key] for key in scores)
    assert health.score == pytest.approx(exact, abs=0.02)


SIX_AT_FULL_MARKS = dict.fromkeys(SIX_EQUAL_SIGNALS, 1.0)


def test_full_marks_score_100_not_the_rounded_contributions_overshoot(make_customer, client):
    """Six equal weights at full marks: each contribution rounds to 16.67, and the six add up to
    100.02. The score is documented 0-100 (the list's health_score_max=100 would miss it, and a
    backtest's calibration refused it), so it reads 100."""
    health = _scored(make_customer(), SIX_AT_FULL_MARKS, dict.fromkeys(SIX_AT_FULL_MARKS, 100.0))
    assert [item["contribution"] for item in stored_signals(health)] == [16.67] * 6
    assert health.score == 100.0
    customer = Customer.objects.get(pk=health.customer_id)
    assert customer.health_score == 100.0
    assert Customer.objects.filter(pk=customer.pk, health_score__lte=100).exists()
    listed = client.get("/v1/customers", {"health_score_max": 100}).json()["data"]
    assert [row["id"] for row in listed] == [customer.pk]


def test_full_marks_on_event_signals_alone_score_100_too(make_customer, workspace):
    """The same overshoot on the one-row path of customers with event signals only: the five
    built-ins and a sixth metric, equally weighted, all at full marks."""
    from health.services import metric_create

    metric_create(
        workspace_id=workspace.id,
        data={
            "key": "custom.exports",
            "label": "Exports",
            "category": "usage",
            "aggregate": "count",
            "event_types": ["type0"],
            "window_days": 28,
            "curve": "points",
            "points": [{"value": 0, "score": 0}, {"value": 1, "score": 100}],
        },
    )
    keys = [
        "usage.active_days_30d",
        "usage.volume_trend_14d",
        "usage.breadth_30d",
        "engagement.distinct_users_30d",
        "engagement.recency_days",
        "custom.exports",
    ]
    current = health_model_current(workspace_id=workspace.id)
    health_model_update(
        workspace_id=workspace.id, weights={key: (1.0 if key in keys else 0.0) for key in current.weights}
    )
    customer = make_customer()
    # 28 active days, as many events in each fortnight, five types, three users, the last an hour ago.
    add_events(
        customer,
        [NOW - timedelta(days=day, hours=1) for day in range(28)],
        types=[f"type{n}" for n in range(5)],
        users=["u1", "u2", "u3"],
    )
    rescore_customers(workspace_id=workspace.id, customer_ids=[customer.id])
    health = CustomerHealth.objects.get(customer_id=customer.id)
    assert [item["score"] for item in stored_signals(health)] == [100.0] * 6
    assert [item["contribution"] for item in stored_signals(health)] == [16.67] * 6
    assert health.score == 100.0


def test_no_signals_means_null_score_and_unknown_status(make_customer):
    customer = make_customer()
    rescore_customers(workspace_id=customer.workspace_id, customer_ids=[customer.id])
    customer.refresh_from_db()
    assert (customer.health_score, customer.health_status) == (None, "unknown")
    assert customer.health_computed_at is not None


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (100, "healthy"),
        (70, "healthy"),
        (69.99, "neutral"),
        (40, "neutral"),
        (39.99, "at_risk"),
        (0, "at_risk"),
    ],
)
def test_status_thresholds_at_their_boundaries(workspace, score, status):
    assert health_model_current(workspace_id=workspace.id).status_for(score) == status


def test_anchor_active_broad_multi_user_customer_is_healthy_even_with_a_falling_trend(make_customer):
    customer = make_customer()
    # Exactly 20 active days: 15 busy ones 15-29 days ago, then 5 quiet ones ending 10 days ago
    # (the latest a 20-of-30 customer can have been last seen, and the worst possible trend).
    busy = [NOW - timedelta(days=day, hours=2) for day in range(15, 30) for _ in range(20)]
    quiet = [NOW - timedelta(days=day, hours=2) for day in range(10, 15)]
    add_events(
        customer, busy + quiet, types=["login", "export", "invite", "report", "search"], users=["a", "b", "c"]
    )
    rescore_customers(workspace_id=customer.workspace_id)
    customer.refresh_from_db()
    assert customer.health_status == "healthy", customer.health_score


def test_anchor_customer_without_events_in_30_days_is_at_risk(make_customer):
    customer = make_customer()
    add_events(
        customer, [NOW - timedelta(days=31 + day) for day in range(20)], types=["a", "b", "c", "d", "e"]
    )
    rescore_customers(workspace_id=customer.workspace_id)
    customer.refresh_from_db()
    assert customer.health_status == "at_risk"
    assert customer.health_score == 0.0


def test_new_model_version_rescores_the_workspace(make_customer, django_capture_on_commit_callbacks):
    customer = make_customer()
    add_events(customer, [NOW - timedelta(hours=1)], types=["login"])
    rescore_customers(workspace_id=customer.workspace_id)
    before = CustomerHealth.objects.get(customer=customer)
    assert before.model_version == 1
    weights = dict.fromkeys(default_weights(), 0.0) | {"engagement.recency_days": 1.0}
    with django_capture_on_commit_callbacks(execute=True):
        model, created = health_model_update(workspace_id=customer.workspace_id, weights=weights)
    assert (model.version, created) == (2, True)
    after = CustomerHealth.objects.get(customer=customer)
    assert (after.model_version, after.score, after.confidence) == (2, 100.0, 1.0)
    assert Customer.objects.get(pk=customer.pk).health_score == 100.0
    assert list(HealthModel.objects.values_list("version", flat=True)) == [2, 1]


def test_same_values_create_no_new_version(workspace):
    model, created = health_model_update(
        workspace_id=workspace.id, healthy_threshold=70, at_risk_threshold=40
    )
    assert (model.version, created) == (1, False)
