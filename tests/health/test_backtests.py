"""Backtests, model fits, apply and churn probability through the API (issue 15), on real
PostgreSQL; the jobs run in the health task, eagerly once the starting request commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Outcome
from health import backtests
from health.models import Backtest, CustomerHealth, HealthModel, HealthSnapshot, Metric, ModelFit
from health.services import end_of_day
from tests.health.conftest import SIX_EQUAL_SIGNALS, add_events

TODAY = timezone.now().date()
D1 = TODAY - timedelta(days=60)
D2 = TODAY - timedelta(days=45)
EXPORTS = {
    "key": "custom.exports",
    "label": "Exports",
    "category": "usage",
    "aggregate": "count",
    "event_types": ["export"],
    "window_days": 28,
}
TICKETS = {
    **EXPORTS,
    "key": "custom.tickets",
    "label": "Tickets",
    "category": "support",
    "event_types": ["ticket"],
}
DATES = {"observation_dates": [D1.isoformat(), D2.isoformat()], "horizon_days": 30}


def _outcome(customer, kind, at):
    Outcome.objects.create(
        workspace_id=customer.workspace_id, customer=customer, kind=kind, at=at, source="api"
    )


@pytest.fixture
def history(client, make_customer):
    """40 customers with 1..8 exports and 8..1 support tickets in the month before D1 and D2; the
    customers with few exports (and many tickets) mostly churn 10 days after D1, one stayer
    among them and one churner among the others."""
    for definition in (EXPORTS, TICKETS):
        assert client.post("/v1/health/metrics", definition, format="json").status_code == 201
    customers, churners = [], []
    for index in range(40):
        customer = make_customer(f"C{index}")
        exports = index % 8 + 1
        base = end_of_day(D1) - timedelta(days=3)
        add_events(customer, [base - timedelta(hours=n) for n in range(exports)], types=["export"])
        add_events(customer, [base - timedelta(hours=n) for n in range(9 - exports)], types=["ticket"])
        churns = (exports <= 3) != (index in (0, 13))
        if churns:
            _outcome(customer, "churned", end_of_day(D1) + timedelta(days=10))
            churners.append(customer)
        customers.append(customer)
    return customers, churners


def _run(client, django_capture_on_commit_callbacks, path: str, body: dict):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, body, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def _poll(client, path: str, job_id: str) -> dict:
    response = client.get(f"{path}/{job_id}")
    assert response.status_code == 200
    return response.json()


# --- Observations ---------------------------------------------------------------------------------


def test_observations_follow_the_cohort_rule(workspace, history, make_customer):
    customers, churners = history
    late = make_customer("Created after the dates, no history")  # not counted: nothing before D1
    add_events(late, [timezone.now() - timedelta(days=1)], types=["export"])
    model = HealthModel.objects.filter(workspace_id=workspace.id).order_by("-version").first()
    data = backtests.observations(workspace_id=workspace.id, model=model, dates=[D1, D2], horizon_days=30)
    # D1: all 40 (created today: imported history counts); D2: the churners are gone.
    assert len(data) == 40 + (40 - len(churners))
    assert late.pk not in set(data.customer_ids)
    assert int(data.churned.sum()) == len(churners)  # labelled at D1 only
    assert set(data.signal_scores) >= {"custom.exports", "custom.tickets", "usage.active_days_30d"}


# --- Backtests ------------------------------------------------------------------------------------


def test_backtest_of_a_draft_measures_it_and_writes_nothing(
    client, history, django_capture_on_commit_callbacks
):
    counts = (CustomerHealth.objects.count(), HealthSnapshot.objects.count(), HealthModel.objects.count())
    stored = sorted(
        CustomerHealth.objects.values_list("customer_id", "score", "model_version", "computed_at")
    )
    metrics = sorted(Metric.objects.values_list("key", "definition", "updated_at"))
    draft = {"weights": {key: 0 for key in client.get("/v1/health/model").json()["weights"]}}
    draft["weights"]["custom.exports"] = 10
    draft["thresholds"] = {"healthy": 60, "at_risk": 30}
    job = _run(client, django_capture_on_commit_callbacks, "/v1/health/backtests", {**DATES, "model": draft})
    assert job["object"] == "backtest" and job["id"].startswith("bt_") and job["status"] == "queued"
    assert job["auc"] is None
    done = _poll(client, "/v1/health/backtests", job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["observations"] == 40 + 40 - done["churned"]
    # Exports rank the churners low (two mislabelled customers keep it below 1).
    assert 0.8 < done["auc"] < 1.0
    assert done["signals"]["custom.exports"]["higher_is_better"] is True
    assert done["signals"]["custom.tickets"]["higher_is_better"] is False
    assert sum(band["customers"] for band in done["calibration"]) == done["observations"]
    assert set(done["churn_rate_by_status"]) == {"healthy", "neutral", "at_risk"}
    assert done["lift_bottom_decile"] > 1
    assert done["model"] == draft
    after = (CustomerHealth.objects.count(), HealthSnapshot.objects.count(), HealthModel.objects.count())
    assert after == counts
    assert (
        sorted(CustomerHealth.objects.values_list("customer_id", "score", "model_version", "computed_at"))
        == stored
    )
    assert sorted(Metric.objects.values_list("key", "definition", "updated_at")) == metrics
    listed = client.get("/v1/health/backtests").json()
    assert [row["id"] for row in listed["data"]] == [job["id"]]


def test_backtest_without_churn_fails_clearly(client, make_customer, django_capture_on_commit_callbacks):
    for index in range(5):
        add_events(make_customer(f"S{index}"), [end_of_day(D1) - timedelta(days=2)] * (index + 1))
    job = _run(client, django_capture_on_commit_callbacks, "/v1/health/backtests", DATES)
    done = _poll(client, "/v1/health/backtests", job["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "no_churn"
    assert "churned" in done["error"]["message"]
    assert done["auc"] is None


def test_a_backtest_over_customers_at_full_marks_succeeds(
    client, make_customer, django_capture_on_commit_callbacks
):
    """Six equally weighted billing and support signals at 100 round to 6 x 16.67 = 100.02; the
    score reads 100, so the calibration's top band takes them and the job succeeds."""
    from health.models import ExternalSignal

    keys = SIX_EQUAL_SIGNALS
    for index in range(10):
        customer = make_customer(f"F{index}")
        full = index < 6
        for key in keys:
            ExternalSignal.objects.create(
                workspace_id=customer.workspace_id,
                customer=customer,
                source="test",
                key=key,
                category=key.split(".")[0],
                label=key,
                value=1.0,
                score=100.0 if full else 20.0,
                computed_at=end_of_day(D1) - timedelta(days=2),
            )
        if not full or index == 0:
            _outcome(customer, "churned", end_of_day(D1) + timedelta(days=10))
    draft = {"weights": {key: 0 for key in client.get("/v1/health/model").json()["weights"]}}
    draft["weights"].update(dict.fromkeys(keys, 1))
    body = {"observation_dates": [D1.isoformat()], "horizon_days": 30, "model": draft}
    job = _run(client, django_capture_on_commit_callbacks, "/v1/health/backtests", body)
    done = _poll(client, "/v1/health/backtests", job["id"])
    assert done["status"] == "succeeded", done["error"]
    top = done["calibration"][-1]
    assert (top["max"], top["customers"], top["churned"]) == (100, 6, 1)


def test_a_second_backtest_while_one_is_queued_is_409(client, history):
    first = client.post("/v1/health/backtests", DATES, format="json")  # its task is never sent here
    assert first.status_code == 202
    second = client.post("/v1/health/backtests", DATES, format="json")
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "backtest_in_progress"
    assert first.json()["id"] in second.json()["error"]["message"]
    assert Backtest.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"observation_dates": [(D1 - timedelta(days=n)).isoformat() for n in range(53)]},
            "observation_dates",
        ),
        ({"observation_dates": [D1.isoformat()], "from": D1.isoformat()}, "from"),
        ({"observation_dates": [D1.isoformat(), D1.isoformat()]}, "observation_dates"),
        ({"observation_dates": [(TODAY - timedelta(days=10)).isoformat()]}, "observation_dates"),
        ({"observation_dates": ["2026-13-01"]}, "observation_dates[0]"),
        (
            {"from": (TODAY - timedelta(days=400)).isoformat(), "to": D1.isoformat(), "every_days": 1},
            "every_days",
        ),
        ({"horizon_days": 0}, "horizon_days"),
        ({"model": {"weights": {"custom.nope": 1}}}, "model.weights[custom.nope]"),
        ({"model": {"thresholds": {"healthy": 10, "at_risk": 20}}}, "model.thresholds"),
        ({"model": {"metrics": {"custom.exports": {"window_days": 3}}}}, "model.metrics[custom.exports]"),
        (
            {"model": {"metrics": {"custom.exports": {"curve": "points"}}}},
            "model.metrics[custom.exports].points",
        ),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_backtest_input_is_a_400_naming_the_field_and_queues_nothing(client, history, body, param):
    response = client.post("/v1/health/backtests", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == param
    assert Backtest.objects.count() == 0


def test_default_dates_are_twelve_weekly_ones_ending_horizon_days_ago():
    params = {"observation_dates": None, "from": None, "to": None, "every_days": None, "horizon_days": 30}
    days = backtests.resolve_dates(params, today=TODAY)
    assert (
        len(days) == 12
        and days[-1] == TODAY - timedelta(days=30)
        and days[0] == days[-1] - timedelta(weeks=11)
    )


# --- Fits and apply -------------------------------------------------------------------------------


def _succeeded_fit(client, django_capture_on_commit_callbacks, body=None) -> dict:
    job = _run(client, django_capture_on_commit_callbacks, "/v1/health/model/fit", body or DATES)
    assert job["object"] == "model_fit" and job["id"].startswith("fit_")
    done = _poll(client, "/v1/health/model/fits", job["id"])
    assert done["status"] == "succeeded", done["error"]
    return done


def test_fit_proposes_weights_flips_tickets_and_derives_thresholds(
    client, history, django_capture_on_commit_callbacks
):
    body = {**DATES, "signals": ["custom.exports", "custom.tickets"]}
    fit = _succeeded_fit(client, django_capture_on_commit_callbacks, body)
    proposal = fit["proposed_model"]
    assert set(proposal["weights"]) == {"custom.exports", "custom.tickets"}
    assert all(weight >= 0 for weight in proposal["weights"].values())
    assert sum(proposal["weights"].values()) == pytest.approx(100, abs=0.01)
    # Tickets are counted "higher is better" by their definition; churners have more of them.
    assert fit["flipped"] == ["custom.tickets"]
    assert proposal["higher_is_better"] == {"custom.exports": True, "custom.tickets": False}
    curve = fit["churn_curve"]
    assert curve["slope"] < 0 and curve["horizon_days"] == 30
    rate = fit["churned"] / fit["observations"]
    from health.fitting import ChurnCurve, thresholds_from_curve

    expected = thresholds_from_curve(ChurnCurve(curve["intercept"], curve["slope"]), rate)
    assert proposal["thresholds"] == expected
    assert proposal["thresholds"]["at_risk"] < proposal["thresholds"]["healthy"]
    assert 0.5 < fit["cv_auc"] <= 1.0
    assert fit["current_model_auc"] is not None
    assert fit["signals"] == ["custom.exports", "custom.tickets"]


def test_fit_with_an_unknown_signal_is_a_400(client, history):
    response = client.post("/v1/health/model/fit", {**DATES, "signals": ["custom.nope"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "signals[0]"
    assert ModelFit.objects.count() == 0


def test_apply_makes_a_version_flips_the_metric_and_rescores(
    client, workspace, history, django_capture_on_commit_callbacks
):
    fit = _succeeded_fit(
        client, django_capture_on_commit_callbacks, {**DATES, "signals": ["custom.exports", "custom.tickets"]}
    )
    before = HealthModel.objects.filter(workspace_id=workspace.id).order_by("-version").first()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/v1/health/model/fits/{fit['id']}/apply")
    assert response.status_code == 200, response.json()
    model = HealthModel.objects.filter(workspace_id=workspace.id).order_by("-version").first()
    assert model.version == before.version + 1 == response.json()["version"]
    assert model.created_by == f"fit:{fit['id']}"
    assert model.weights["custom.exports"] == fit["proposed_model"]["weights"]["custom.exports"]
    assert model.weights["usage.active_days_30d"] == 0.0
    assert model.healthy_threshold == fit["proposed_model"]["thresholds"]["healthy"]
    tickets = next(d for d in model.metrics if d["key"] == "custom.tickets")
    assert tickets["higher_is_better"] is False
    assert (
        Metric.objects.get(workspace_id=workspace.id, key="custom.tickets").definition["higher_is_better"]
        is False
    )
    # Rescored with the new version.
    rows = CustomerHealth.objects.filter(workspace_id=workspace.id)
    assert rows.count() == 40 and set(rows.values_list("model_version", flat=True)) == {model.version}
    assert _poll(client, "/v1/health/model/fits", fit["id"])["applied_version"] == model.version


def test_applying_a_failed_fit_is_409(client, make_customer, django_capture_on_commit_callbacks):
    add_events(make_customer("Alone"), [end_of_day(D1) - timedelta(days=2)])
    job = _run(client, django_capture_on_commit_callbacks, "/v1/health/model/fit", DATES)
    assert _poll(client, "/v1/health/model/fits", job["id"])["status"] == "failed"
    versions = HealthModel.objects.count()
    response = client.post(f"/v1/health/model/fits/{job['id']}/apply")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "fit_not_succeeded"
    assert HealthModel.objects.count() == versions


def test_churn_probability_null_before_a_fit_then_monotone_in_the_score(
    client, history, django_capture_on_commit_callbacks
):
    customers, _ = history
    for index, customer in enumerate(customers):  # this month's use, so today's scores differ
        add_events(
            customer,
            [timezone.now() - timedelta(days=1, hours=n) for n in range(index % 8 + 1)],
            types=["export"],
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.post("/v1/health/metrics", {**EXPORTS, "key": "custom.x"}, format="json").status_code
            == 201
        )
    health = client.get(f"/v1/customers/{customers[5].pk}/health").json()
    assert "churn_probability" in health and health["churn_probability"] is None
    assert client.get("/v1/health/model").json()["churn_probability"] is None
    fit = _succeeded_fit(
        client, django_capture_on_commit_callbacks, {**DATES, "signals": ["custom.exports", "custom.tickets"]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/v1/health/model/fits/{fit['id']}/apply").status_code == 200
    pairs = []
    for customer in customers:
        body = client.get(f"/v1/customers/{customer.pk}/health").json()
        if body["score"] is not None:
            assert body["churn_probability"] == round(body["churn_probability"], 3)
            pairs.append((body["score"], body["churn_probability"]))
    pairs.sort()
    assert len({score for score, _ in pairs}) > 2
    assert all(a[1] >= b[1] for a, b in zip(pairs, pairs[1:], strict=False))  # non-increasing in the score
    assert pairs[0][1] > pairs[-1][1]
    model = client.get("/v1/health/model").json()
    assert model["churn_probability"] == {
        "fit": fit["id"],
        "horizon_days": 30,
        "intercept": fit["churn_curve"]["intercept"],
        "slope": fit["churn_curve"]["slope"],
    }


# --- Tenancy and scopes ---------------------------------------------------------------------------


def test_another_workspaces_jobs_are_404(client, other_client, history, django_capture_on_commit_callbacks):
    backtest = _run(client, django_capture_on_commit_callbacks, "/v1/health/backtests", DATES)
    fit = _succeeded_fit(client, django_capture_on_commit_callbacks, {**DATES, "signals": ["custom.exports"]})
    for path in (f"/v1/health/backtests/{backtest['id']}", f"/v1/health/model/fits/{fit['id']}"):
        response = other_client.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing"
    response = other_client.post(f"/v1/health/model/fits/{fit['id']}/apply")
    assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing"
    assert other_client.get("/v1/health/backtests").json()["data"] == []
    assert other_client.get("/v1/health/model/fits").json()["data"] == []
    assert ModelFit.objects.get(pk=fit["id"]).applied_at is None


def test_read_keys_cannot_start_jobs(workspace, make_client):
    reader = make_client(workspace, scopes="health:read")
    for path in ("/v1/health/backtests", "/v1/health/model/fit"):
        response = reader.post(path, DATES, format="json")
        assert response.status_code == 403
    assert reader.get("/v1/health/backtests").status_code == 200
    assert reader.get("/v1/health/model/fits").status_code == 200


def test_stale_jobs_are_reaped_as_worker_lost(workspace):
    job = Backtest.objects.create(workspace_id=workspace.id, params={"horizon_days": 30})
    assert backtests.health_jobs_reap_stale(now=timezone.now()) == 0
    assert (
        backtests.health_jobs_reap_stale(now=timezone.now() + backtests.STALE_AFTER + timedelta(seconds=1))
        == 1
    )
    job.refresh_from_db()
    assert job.status == "failed" and job.error["code"] == "worker_lost"


def test_a_draft_that_no_longer_fits_the_workspace_fails_the_job_clearly(client, history):
    draft = {"weights": {"custom.exports": 5}}
    job = client.post("/v1/health/backtests", {**DATES, "model": draft}, format="json").json()
    assert client.delete("/v1/health/metrics/custom.exports").status_code == 200
    backtests.backtest_run(backtest_id=job["id"])  # what the queued task runs
    done = client.get(f"/v1/health/backtests/{job['id']}").json()
    assert done["status"] == "failed"
    assert done["error"]["code"] == "parameter_invalid" and "custom.exports" in done["error"]["message"]


def test_job_lists_are_newest_first_with_cursors(client, history, django_capture_on_commit_callbacks):
    first = _run(client, django_capture_on_commit_callbacks, "/v1/health/backtests", DATES)
    second = _run(
        client, django_capture_on_commit_callbacks, "/v1/health/backtests", {**DATES, "horizon_days": 20}
    )
    page = client.get("/v1/health/backtests?limit=1").json()
    assert [row["id"] for row in page["data"]] == [second["id"]] and page["has_more"] is True
    rest = client.get(f"/v1/health/backtests?limit=1&starting_after={second['id']}").json()
    assert [row["id"] for row in rest["data"]] == [first["id"]] and rest["has_more"] is False
    assert rest["data"][0]["horizon_days"] == 30 and page["data"][0]["horizon_days"] == 20


def test_a_retried_apply_answers_with_the_same_version_and_flips_nothing_back(
    client, workspace, history, django_capture_on_commit_callbacks
):
    fit = _succeeded_fit(
        client, django_capture_on_commit_callbacks, {**DATES, "signals": ["custom.exports", "custom.tickets"]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"/v1/health/model/fits/{fit['id']}/apply")
        retried = client.post(f"/v1/health/model/fits/{fit['id']}/apply")
    assert first.status_code == retried.status_code == 200
    assert retried.json()["version"] == first.json()["version"]
    assert HealthModel.objects.filter(workspace_id=workspace.id, created_by=f"fit:{fit['id']}").count() == 1
    tickets = Metric.objects.get(workspace_id=workspace.id, key="custom.tickets").definition
    assert tickets["higher_is_better"] is False  # flipped once, not flipped back

    # Once the model has moved on, applying the old fit again would rebuild on a changed model.
    moved = client.put("/v1/health/model", {"thresholds": {"healthy": 75, "at_risk": 35}}, format="json")
    assert moved.status_code == 200, moved.content
    again = client.post(f"/v1/health/model/fits/{fit['id']}/apply")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "fit_already_applied"


def test_a_retried_backtest_start_with_its_idempotency_key_is_the_same_job(client, history):
    headers = {"HTTP_IDEMPOTENCY_KEY": "bt-retry-1"}
    first = client.post("/v1/health/backtests", DATES, format="json", **headers)
    retried = client.post("/v1/health/backtests", DATES, format="json", **headers)
    assert first.status_code == retried.status_code == 202
    assert retried.json()["id"] == first.json()["id"]
    assert retried["Idempotent-Replayed"] == "true"
    assert Backtest.objects.count() == 1
