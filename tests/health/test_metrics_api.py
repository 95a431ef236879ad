"""GET/POST /v1/health/metrics, GET/PATCH/DELETE /v1/health/metrics/:key: validation, limits,
versions and isolation."""

from __future__ import annotations

import pytest

from health.models import HealthModel, Metric

EXPORTS = {
    "key": "custom.exports_28d",
    "label": "Exports, last 28 days",
    "category": "usage",
    "aggregate": "count",
    "event_types": ["export"],
    "window_days": 28,
}


def _versions(workspace):
    return list(HealthModel.objects.filter(workspace_id=workspace.id).order_by("version"))


def test_create_read_list_update_delete(client, workspace):
    response = client.post("/v1/health/metrics", EXPORTS, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["object"] == "metric" and body["id"].startswith("met_")
    assert body["key"] == "custom.exports_28d" and body["curve"] == "percentile"
    assert body["higher_is_better"] is True and body["unit"] == "events"
    assert client.get("/v1/health/metrics/custom.exports_28d").json() == body
    listed = client.get("/v1/health/metrics").json()
    assert listed["object"] == "list" and [m["key"] for m in listed["data"]] == ["custom.exports_28d"]

    patched = client.patch(
        "/v1/health/metrics/custom.exports_28d",
        {"curve": "points", "points": [{"value": 0, "score": 0}, {"value": 10, "score": 100}]},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["points"] == [{"value": 0.0, "score": 0.0}, {"value": 10.0, "score": 100.0}]
    deleted = client.delete("/v1/health/metrics/custom.exports_28d")
    assert deleted.json() == {"id": body["id"], "object": "metric", "deleted": True}
    assert client.get("/v1/health/metrics/custom.exports_28d").status_code == 404


def test_each_change_makes_a_model_version_that_carries_the_definitions(client, workspace):
    client.get("/v1/health/model")
    assert client.post("/v1/health/metrics", EXPORTS, format="json").status_code == 201
    ratio = {
        "key": "custom.exports_per_day",
        "label": "Exports per active day",
        "category": "engagement",
        "aggregate": "ratio",
        "numerator": "custom.exports_28d",
        "denominator": "usage.active_days_30d",
    }
    assert client.post("/v1/health/metrics", ratio, format="json").status_code == 201
    # The same values again change nothing.
    same = client.patch("/v1/health/metrics/custom.exports_28d", {"window_days": 28}, format="json")
    assert same.status_code == 200
    versions = _versions(workspace)
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[1].metrics == [Metric.objects.get(key="custom.exports_28d").definition]
    assert [m["key"] for m in versions[2].metrics] == ["custom.exports_28d", "custom.exports_per_day"]
    assert versions[2].weights["custom.exports_per_day"] == 0.0
    model = client.get("/v1/health/model").json()
    assert model["version"] == 3 and model["weights"]["custom.exports_28d"] == 0.0
    # The model weighs the metric like any signal.
    put = client.put("/v1/health/model", {"weights": {"custom.exports_28d": 5}}, format="json")
    assert put.status_code == 200 and put.json()["weights"]["custom.exports_28d"] == 5.0
    assert client.put("/v1/health/model", {"weights": {"custom.nope": 5}}, format="json").status_code == 400
    # An operand cannot go while a ratio uses it.
    refused = client.delete("/v1/health/metrics/custom.exports_28d")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "resource_in_use"
    assert client.delete("/v1/health/metrics/custom.exports_per_day").status_code == 200
    last = _versions(workspace)[-1]
    assert last.version == 5 and [m["key"] for m in last.metrics] == ["custom.exports_28d"]
    assert "custom.exports_per_day" not in last.weights and last.weights["custom.exports_28d"] == 5.0


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"key": "exports"}, "key"),
        ({"key": "custom." + "x" * 61}, "key"),
        ({"key": "custom.Exports"}, "key"),
        ({"category": "fun"}, "category"),
        ({"aggregate": "median"}, "aggregate"),
        ({"window_days": 0}, "window_days"),
        ({"window_days": 366}, "window_days"),
        ({"window_days": None}, "window_days"),
        ({"event_types": []}, "event_types"),
        ({"event_types": "export"}, "event_types"),
        ({"aggregate": "sum"}, "property"),
        ({"property": "amount"}, "property"),
        ({"curve": "points"}, "points"),
        ({"curve": "points", "points": [{"value": 2, "score": 0}, {"value": 1, "score": 100}]}, "points"),
        ({"curve": "points", "points": [{"value": 1, "score": 0}, {"value": 2, "score": 101}]}, "points"),
        ({"points": [{"value": 1, "score": 0}, {"value": 2, "score": 1}]}, "points"),
        ({"higher_is_better": "yes"}, "higher_is_better"),
        ({"label": "x\x00"}, "label"),
        ({"colour": "red"}, "colour"),
        (
            {
                "aggregate": "ratio",
                "window_days": None,
                "event_types": None,
                "numerator": "usage.breadth_30d",
                "denominator": "custom.missing",
            },
            "denominator",
        ),
        (
            {"aggregate": "change", "window_days": None, "event_types": None, "metric": "custom.exports_28d"},
            "metric",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(client, workspace, change, param):
    client.get("/v1/health/model")
    response = client.post("/v1/health/metrics", {**EXPORTS, **change}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param
    assert not Metric.objects.exists() and [v.version for v in _versions(workspace)] == [1]


def test_derived_metrics_take_aggregates_only(client):
    assert client.post("/v1/health/metrics", EXPORTS, format="json").status_code == 201
    change = {
        "key": "custom.exports_change",
        "label": "Export change",
        "category": "usage",
        "aggregate": "change",
        "metric": "custom.exports_28d",
    }
    assert client.post("/v1/health/metrics", change, format="json").status_code == 201
    of_change = {**change, "key": "custom.change_of_change", "metric": "custom.exports_change"}
    response = client.post("/v1/health/metrics", of_change, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "metric"
    for operand in ("usage.volume_trend_14d", "engagement.recency_days"):
        response = client.post(
            "/v1/health/metrics", {**change, "key": "custom.c2", "metric": operand}, format="json"
        )
        assert response.status_code == 400 and response.json()["error"]["param"] == "metric"
    # An operand cannot become derived either.
    response = client.patch(
        "/v1/health/metrics/custom.exports_28d",
        {
            "aggregate": "ratio",
            "window_days": None,
            "event_types": None,
            "numerator": "usage.breadth_30d",
            "denominator": "usage.active_days_30d",
        },
        format="json",
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "aggregate"
    response = client.patch("/v1/health/metrics/custom.exports_28d", {"key": "custom.other"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "key"


def test_at_most_50_metrics(client, workspace):
    for index in range(50):
        body = {**EXPORTS, "key": f"custom.m{index}"}
        assert client.post("/v1/health/metrics", body, format="json").status_code == 201
    response = client.post("/v1/health/metrics", {**EXPORTS, "key": "custom.m50"}, format="json")
    assert response.status_code == 400
    assert Metric.objects.filter(workspace_id=workspace.id).count() == 50
    assert (
        client.post("/v1/health/metrics", {**EXPORTS, "key": "custom.m0"}, format="json").status_code == 409
    )
    page = client.get("/v1/health/metrics", {"limit": 20}).json()
    assert page["has_more"] and len(page["data"]) == 20
    rest = client.get("/v1/health/metrics", {"limit": 100, "starting_after": page["data"][-1]["key"]}).json()
    assert len(rest["data"]) == 30 and not rest["has_more"]


def test_another_workspaces_metric_is_404(client, other_client):
    assert client.post("/v1/health/metrics", EXPORTS, format="json").status_code == 201
    path = "/v1/health/metrics/custom.exports_28d"
    for response in (
        other_client.get(path),
        other_client.patch(path, {"label": "Mine"}, format="json"),
        other_client.delete(path),
        other_client.get(path + "/cohorts"),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "resource_missing"
    assert other_client.get("/v1/health/metrics").json()["data"] == []
    assert Metric.objects.get(key="custom.exports_28d").definition["label"] == EXPORTS["label"]


def test_metric_scopes(make_client, workspace):
    reader = make_client(workspace, scopes="health:read")
    assert reader.get("/v1/health/metrics").status_code == 200
    assert reader.post("/v1/health/metrics", EXPORTS, format="json").status_code == 403
    writer = make_client(workspace, scopes="health:write")
    assert writer.post("/v1/health/metrics", EXPORTS, format="json").status_code == 201
