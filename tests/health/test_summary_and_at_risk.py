"""GET /v1/health/summary and GET /v1/health/at-risk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Customer
from health.models import CustomerHealth, HealthSnapshot

TODAY = timezone.now().date()


def scored(make_customer, score, status=None, signals=None, **fields):
    customer = make_customer(**fields)
    if status is None:
        status = (
            "unknown"
            if score is None
            else "healthy"
            if score >= 70
            else "at_risk"
            if score < 40
            else "neutral"
        )
    Customer.objects.filter(pk=customer.pk).update(
        health_score=score, health_status=status, health_computed_at=timezone.now()
    )
    CustomerHealth.objects.create(
        customer_id=customer.id,
        workspace_id=customer.workspace_id,
        score=score,
        status=status,
        model_version=1,
        signals=signals or [],
        computed_at=timezone.now(),
    )
    customer.refresh_from_db()
    return customer


def snap(customer, days_ago: int, score: float):
    HealthSnapshot.objects.create(
        customer_id=customer.id,
        workspace_id=customer.workspace_id,
        date=TODAY - timedelta(days=days_ago),
        score=score,
        status="neutral",
        model_version=1,
        computed_at=timezone.now(),
    )


def test_summary_sums(client, make_customer):
    for score in (5, 9.99, 10, 35, 40, 55, 69.99, 70, 99.5, 100):
        scored(make_customer, score)
    scored(make_customer, None)
    make_customer()  # never scored
    body = client.get("/v1/health/summary").json()
    assert body["object"] == "health_summary"
    assert body["total_customers"] == 12
    assert body["by_status"] == {"healthy": 3, "neutral": 3, "at_risk": 4, "churned": 0, "unknown": 2}
    assert sum(body["by_status"].values()) == body["total_customers"]
    assert [b["count"] for b in body["distribution"]] == [2, 1, 0, 1, 1, 1, 1, 1, 0, 2]
    assert body["distribution"][0] == {"min": 0, "max": 10, "count": 2}
    assert body["distribution"][-1] == {"min": 90, "max": 100, "count": 2}
    assert sum(b["count"] for b in body["distribution"]) == 10
    assert body["average_score"] == pytest.approx(49.45, abs=0.01)
    assert body["median_score"] == 47.5
    assert body["computed_at"].endswith("Z")


def test_summary_filters_by_segment(client, make_customer):
    scored(make_customer, 80, plan="growth", owner="maya@x.io", lifecycle_stage="active")
    scored(make_customer, 20, plan="growth", owner="jon@x.io", lifecycle_stage="trial")
    scored(make_customer, 50, plan="starter", owner="maya@x.io", lifecycle_stage="active")
    assert client.get("/v1/health/summary?plan=growth").json()["total_customers"] == 2
    body = client.get("/v1/health/summary?owner=MAYA@x.io&lifecycle_stage=active").json()
    assert (body["total_customers"], body["average_score"], body["median_score"]) == (2, 65.0, 65.0)
    empty = client.get("/v1/health/summary?plan=none").json()
    assert (empty["total_customers"], empty["average_score"], empty["median_score"]) == (0, None, None)


@pytest.mark.parametrize("query", ["lifecycle_stage=dead", "plan=", "segment=x", "plan=a&plan=b"])
def test_summary_bad_filters_get_400(client, query):
    assert client.get(f"/v1/health/summary?{query}").status_code == 400


def test_at_risk_defaults_to_the_models_threshold_ordered_by_score_then_id(client, make_customer):
    low = [scored(make_customer, score) for score in (12.0, 30.0, 12.0, 39.99)]
    scored(make_customer, 40.0)
    scored(make_customer, None)
    body = client.get("/v1/health/at-risk").json()
    expected = sorted(low, key=lambda c: (c.health_score, c.id))
    assert [row["customer"]["id"] for row in body["data"]] == [c.id for c in expected]
    assert body["has_more"] is False
    assert body["url"] == "/v1/health/at-risk"


def test_at_risk_threshold_parameter(client, make_customer):
    scored(make_customer, 45.0)
    scored(make_customer, 75.0)
    assert [r["score"] for r in client.get("/v1/health/at-risk?threshold=50").json()["data"]] == [45.0]
    assert len(client.get("/v1/health/at-risk?threshold=100").json()["data"]) == 2
    assert client.get("/v1/health/at-risk?threshold=0").json()["data"] == []


@pytest.mark.parametrize("value", ["-1", "100.5", "abc", "nan", "inf", ""])
def test_at_risk_bad_threshold_gets_400(client, value):
    response = client.get(f"/v1/health/at-risk?threshold={value}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "threshold"


def test_at_risk_pagination_with_starting_after_and_ending_before(client, make_customer):
    customers = [scored(make_customer, float(score)) for score in (5, 5, 5, 10, 20, 30, 35)]
    expected = [c.id for c in sorted(customers, key=lambda c: (c.health_score, c.id))]
    seen, cursor = [], None
    while True:
        url = "/v1/health/at-risk?limit=3" + (f"&starting_after={cursor}" if cursor else "")
        body = client.get(url).json()
        seen += [row["customer"]["id"] for row in body["data"]]
        if not body["has_more"]:
            break
        cursor = seen[-1]
    assert seen == expected
    back = client.get(f"/v1/health/at-risk?limit=2&ending_before={expected[4]}").json()
    assert [row["customer"]["id"] for row in back["data"]] == expected[2:4]
    assert back["has_more"] is True
    both = client.get(f"/v1/health/at-risk?starting_after={expected[0]}&ending_before={expected[1]}")
    assert both.status_code == 400
    assert client.get("/v1/health/at-risk?starting_after=cus_bad").status_code == 400
    assert client.get("/v1/health/at-risk?limit=101").status_code == 400


def test_at_risk_object_has_previous_score_drop_date_and_weakest_signals(client, make_customer):
    signals = [
        {
            "key": "usage.breadth_30d",
            "category": "usage",
            "label": "B",
            "value": 1.0,
            "unit": "types",
            "score": 20.0,
            "source": "events",
            "computed_at": "2026-01-01T00:00:00Z",
            "weight": 13.3,
            "contribution": 5.0,
        },
        {
            "key": "engagement.recency_days",
            "category": "engagement",
            "label": "R",
            "value": 20.0,
            "unit": "days",
            "score": 34.0,
            "source": "events",
            "computed_at": "2026-01-01T00:00:00Z",
            "weight": 7.5,
            "contribution": 4.0,
        },
        {
            "key": "usage.active_days_30d",
            "category": "usage",
            "label": "A",
            "value": 2.0,
            "unit": "days",
            "score": 10.0,
            "source": "events",
            "computed_at": "2026-01-01T00:00:00Z",
            "weight": 13.3,
            "contribution": 2.0,
        },
    ]
    customer = scored(
        make_customer, 25.0, signals=signals, name="Fading", external_id="acct_9", email="a@b.io"
    )
    for days_ago, score in ((12, 50), (10, 30), (9, 55), (7, 60), (6, 38), (5, 36), (1, 30)):
        snap(customer, days_ago, score)
    never = scored(make_customer, 10.0)
    snap(never, 3, 20.0)
    body = client.get("/v1/health/at-risk").json()
    row = body["data"][1]
    assert row["customer"] == {
        "id": customer.id,
        "name": "Fading",
        "external_id": "acct_9",
        "email": "a@b.io",
    }
    assert (row["object"], row["score"], row["previous_score"]) == ("at_risk_customer", 25.0, 60.0)
    assert row["dropped_at"] == f"{(TODAY - timedelta(days=6)).isoformat()}T00:00:00Z"
    assert [s["key"] for s in row["weakest_signals"]] == ["usage.active_days_30d", "usage.breadth_30d"]
    assert body["data"][0]["dropped_at"] is None  # never above the threshold
    recent = client.get(f"/v1/health/at-risk?dropped_after={(TODAY - timedelta(days=6)).isoformat()}").json()
    assert [r["customer"]["id"] for r in recent["data"]] == [customer.id]
    later = client.get(f"/v1/health/at-risk?dropped_after={(TODAY - timedelta(days=5)).isoformat()}").json()
    assert later["data"] == []
    assert client.get("/v1/health/at-risk?dropped_after=last-week").status_code == 400


def test_summary_reflects_a_rescore_at_once_despite_its_cache(
    client, make_customer, django_capture_on_commit_callbacks
):
    from health.services import external_signals_upsert

    customer = make_customer()
    assert client.get("/v1/health/summary").json()["by_status"]["unknown"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        external_signals_upsert(
            workspace_id=customer.workspace_id,
            customer_id=customer.id,
            source="stripe",
            signals=[{"key": "billing.mrr", "score": 90.0, "value": 1.0}],
        )
    assert client.get("/v1/health/summary").json()["by_status"]["healthy"] == 1
