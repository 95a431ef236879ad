"""GET /v1/customers/:id/health, GET /v1/signals/:id, GET/PUT /v1/health/model, and isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from health.models import HealthSnapshot
from health.services import external_signals_upsert, health_model_current, rescore_customers
from tests.health.conftest import add_events

NOW = timezone.now()


@pytest.fixture
def scored(make_customer, django_capture_on_commit_callbacks):
    customer = make_customer("Initech", external_id="acct_1", email="ops@initech.com")
    add_events(customer, [NOW - timedelta(days=day, hours=1) for day in range(10)], types=["login", "export"])
    with django_capture_on_commit_callbacks(execute=True):
        external_signals_upsert(
            workspace_id=customer.workspace_id,
            customer_id=customer.id,
            source="stripe",
            signals=[
                {
                    "key": "billing.mrr",
                    "category": "billing",
                    "label": "MRR",
                    "value": 99.0,
                    "unit": "usd",
                    "score": 90.0,
                }
            ],
        )
    return customer


def test_health_object_explains_the_score(client, scored):
    body = client.get(f"/v1/customers/{scored.id}/health").json()
    assert set(body) == {
        "object",
        "customer",
        "score",
        "status",
        "confidence",
        "model_version",
        "change_7d",
        "change_30d",
        "churn_probability",
        "computed_at",
        "signals",
    }
    assert body["object"] == "health_score"
    assert body["customer"] == scored.id
    assert body["model_version"] == 1
    assert [s["key"] for s in body["signals"]] == [
        "billing.mrr",
        "engagement.recency_days",
        "usage.active_days_30d",
        "usage.breadth_30d",
        "usage.volume_trend_14d",
    ]
    assert sum(s["contribution"] for s in body["signals"]) == pytest.approx(body["score"], abs=1e-9)
    assert body["confidence"] == pytest.approx((40 + 7.5 + 5) / 100, abs=1e-3)
    mrr = body["signals"][0]
    assert mrr == {
        "object": "signal",
        "key": "billing.mrr",
        "category": "billing",
        "label": "MRR",
        "value": 99.0,
        "unit": "usd",
        "score": 90.0,
        "source": "stripe",
        "computed_at": mrr["computed_at"],
        "weight": 5.0,
        "contribution": mrr["contribution"],
    }
    assert body["status"] == health_model_current(workspace_id=scored.workspace_id).status_for(body["score"])
    assert (body["change_7d"], body["change_30d"]) == (None, None)
    customer = client.get(f"/v1/customers/{scored.id}").json()
    assert customer["health"] == {
        "score": body["score"],
        "status": body["status"],
        "computed_at": body["computed_at"],
    }


def test_change_7d_and_30d_compare_with_snapshots(client, scored):
    current = client.get(f"/v1/customers/{scored.id}/health").json()["score"]
    today = timezone.now().date()
    for days, score in ((7, current - 12.5), (30, current + 3)):
        HealthSnapshot.objects.create(
            workspace_id=scored.workspace_id,
            customer_id=scored.id,
            date=today - timedelta(days=days),
            score=score,
            status="neutral",
            model_version=1,
            computed_at=NOW,
        )
    body = client.get(f"/v1/customers/{scored.id}/health").json()
    assert (body["change_7d"], body["change_30d"]) == (12.5, -3.0)


def test_unscored_customer_has_unknown_health(client, make_customer):
    customer = make_customer()
    body = client.get(f"/v1/customers/{customer.id}/health").json()
    assert (body["score"], body["status"], body["signals"], body["computed_at"]) == (
        None,
        "unknown",
        [],
        None,
    )


def test_signals_endpoint_lists_current_signals(client, scored):
    body = client.get(f"/v1/signals/{scored.id}").json()
    assert body["object"] == "list"
    assert [s["key"] for s in body["data"]][:2] == ["billing.mrr", "engagement.recency_days"]
    assert all(s["object"] == "signal" and "weight" not in s for s in body["data"])
    recency = body["data"][1]
    assert recency["source"] == "events"
    assert recency["value"] == pytest.approx(1 / 24, abs=0.01)
    assert recency["score"] == 100.0


def test_every_endpoint_answers_404_for_another_workspaces_customer(other_client, scored):
    for path in (
        f"/v1/customers/{scored.id}/health",
        f"/v1/customers/{scored.id}/health/history",
        f"/v1/signals/{scored.id}",
    ):
        response = other_client.get(path)
        assert response.status_code == 404, path
        error = response.json()["error"]
        assert (error["type"], error["code"], error["message"]) == (
            "invalid_request_error",
            "resource_missing",
            f"No such customer: '{scored.id}'.",
        )


def test_malformed_and_unknown_ids_answer_like_missing_ones(client):
    for customer_id in ("nope", "cus_" + "0" * 26):
        for path in (f"/v1/customers/{customer_id}/health", f"/v1/signals/{customer_id}"):
            response = client.get(path)
            assert response.status_code == 404
            assert response.json()["error"]["message"] == f"No such customer: '{customer_id}'."


def test_other_workspace_summary_and_at_risk_do_not_see_our_customers(other_client, scored):
    rescore_customers(workspace_id=scored.workspace_id)
    assert other_client.get("/v1/health/summary").json()["total_customers"] == 0
    assert other_client.get("/v1/health/at-risk?threshold=100").json()["data"] == []
    response = other_client.get(f"/v1/health/at-risk?starting_after={scored.id}&threshold=100")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "starting_after"


def test_health_scopes(make_client, workspace, scored):
    reader = make_client(workspace, scopes="health:read")
    assert reader.get(f"/v1/signals/{scored.id}").status_code == 200
    assert reader.put("/v1/health/model", {"thresholds": {"healthy": 80}}).status_code == 403
    other = make_client(workspace, scopes="customers:read")
    response = other.get(f"/v1/customers/{scored.id}/health")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"


def test_unknown_query_parameters_are_rejected(client, scored):
    response = client.get(f"/v1/customers/{scored.id}/health?verbose=1")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_unknown"


# --- The model ---------------------------------------------------------------------------------


def test_get_model_returns_defaults(client):
    body = client.get("/v1/health/model").json()
    assert body["object"] == "health_model"
    assert body["version"] == 1
    assert body["thresholds"] == {"healthy": 70.0, "at_risk": 40.0}
    assert body["category_weights"] == {"usage": 40.0, "engagement": 30.0, "billing": 20.0, "support": 10.0}
    assert body["weights"]["billing.mrr"] == 5.0


def test_put_model_creates_a_version_and_rescores(client, scored, django_capture_on_commit_callbacks):
    before = client.get(f"/v1/customers/{scored.id}/health").json()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.put(
            "/v1/health/model",
            {"weights": {"billing.mrr": 100}, "thresholds": {"healthy": 95}},
            format="json",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["version"], body["weights"]["billing.mrr"], body["thresholds"]) == (
        2,
        100.0,
        {"healthy": 95.0, "at_risk": 40.0},
    )
    after = client.get(f"/v1/customers/{scored.id}/health").json()
    assert after["model_version"] == 2
    assert after["score"] > before["score"]  # MRR (score 90) now dominates
    assert after["status"] == "neutral"  # 95 needed now
    assert client.get("/v1/health/model").json()["version"] == 2


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"weights": {"usage.breadth_30d": -1}}, "weights[usage.breadth_30d]", "parameter_invalid"),
        ({"weights": {"usage.nope": 1}}, "weights[usage.nope]", "parameter_invalid"),
        ({"weights": {"usage.breadth_30d": "5"}}, "weights[usage.breadth_30d]", "parameter_invalid"),
        ({"weights": [1]}, "weights", "parameter_invalid"),
        ({"thresholds": {"healthy": 30}}, "thresholds", "parameter_invalid"),
        ({"thresholds": {"healthy": 101, "at_risk": 40}}, "thresholds", "parameter_invalid"),
        ({"thresholds": {"at_risk": -1}}, "thresholds", "parameter_invalid"),
        ({"thresholds": {"healthy": 80, "medium": 50}}, "thresholds[medium]", "parameter_unknown"),
        ({"thresholds": {"healthy": True}}, "thresholds[healthy]", "parameter_invalid"),
        ({"version": 3}, "version", "parameter_unknown"),
    ],
)
def test_put_model_validation(client, body, param, code):
    response = client.put("/v1/health/model", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert client.get("/v1/health/model").json()["version"] == 1


def test_all_weights_zero_is_refused(client):
    from health.signals import CATALOG

    response = client.put("/v1/health/model", {"weights": dict.fromkeys(CATALOG, 0)}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "weights"
