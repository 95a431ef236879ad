"""Workspace-defined metrics computed in the rescore pass: every aggregate and derived kind at its
window's edges, the curves (points clamping, percentile ties, the min-max fallback), parity with
the Python oracle, and versions in history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from health import services
from health.models import CustomerHealth
from health.representation import stored_signals
from health.rescore import rescore
from health.services import health_model_current, health_model_update, metric_create
from tests.health import oracle
from tests.health.conftest import add_events
from tests.health.test_rescore_parity import _dataset, _state

NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
LINEAR = [{"value": 0, "score": 0}, {"value": 100, "score": 100}]


def _metric(workspace, key, aggregate, **fields):
    body = {"key": key, "label": key, "category": "usage", "aggregate": aggregate, **fields}
    if aggregate not in ("ratio", "change"):
        body.setdefault("window_days", 7)
    body.setdefault("curve", "points")
    if body["curve"] == "points":
        body.setdefault("points", LINEAR)
    return metric_create(workspace_id=workspace.id, data=body)


def _signals(customer, as_of=NOW):
    model = health_model_current(workspace_id=customer.workspace_id)
    rescore(workspace_id=customer.workspace_id, model=model, as_of=as_of)
    row = CustomerHealth.objects.get(customer_id=customer.id)
    return {signal["key"]: signal for signal in stored_signals(row)}


def _event(customer, when, type_="export", **properties):
    from events.models import Event

    Event.objects.create(
        workspace_id=customer.workspace_id,
        customer_id=customer.id,
        type=type_,
        timestamp=when,
        properties=properties,
    )


@pytest.mark.django_db
def test_each_aggregate_and_derived_kind_at_its_window_edges(workspace, make_customer):
    edge = NOW - timedelta(days=7)
    _metric(workspace, "custom.exports", "count", event_types=["export"])
    _metric(workspace, "custom.export_days", "active_days", event_types=["export"])
    _metric(workspace, "custom.users", "distinct_users")
    _metric(workspace, "custom.amount", "sum", property="amount", event_types=["export"])
    _metric(workspace, "custom.since_export", "days_since", event_types=["export"])
    _metric(workspace, "custom.refunds", "count", event_types=["refund"])
    _metric(
        workspace,
        "custom.exports_per_day",
        "ratio",
        numerator="custom.exports",
        denominator="custom.export_days",
    )
    _metric(
        workspace,
        "custom.exports_per_refund",
        "ratio",
        numerator="custom.exports",
        denominator="custom.refunds",
    )
    _metric(workspace, "custom.exports_change", "change", metric="custom.exports")
    customer = make_customer()
    _event(customer, edge, amount=5, user_id="u1")  # exactly window_days back: in
    _event(customer, edge - timedelta(seconds=1), amount=100, user_id="u2")  # just before: previous window
    _event(customer, NOW - timedelta(days=14), amount=1)  # first instant of the previous window
    _event(customer, NOW - timedelta(days=14, seconds=1), amount=1)  # before both windows
    _event(customer, NOW - timedelta(days=3), amount="lots")  # not a number: adds nothing
    _event(customer, NOW - timedelta(hours=1), amount=2, user_id="u1")
    _event(customer, NOW - timedelta(hours=2), type_="login", user_id="u3")  # another type
    _event(customer, NOW, amount=1000, user_id="u4")  # at the computation time: out
    signals = _signals(customer)

    def value(key):
        return signals[key]["value"] if key in signals else None

    assert value("custom.exports") == 3.0
    assert value("custom.export_days") == 3.0  # 7 days back, 3 days back, today
    assert value("custom.users") == 2.0  # u1 and u3 (u2 is before the window, u4 at as_of)
    assert value("custom.amount") == 7.0
    assert value("custom.since_export") == 0.04  # one hour, in days, 2 decimals
    assert value("custom.exports_per_day") == 1.0
    assert value("custom.exports_change") == 50.0  # 3 now against 2 (edge - 1 s, 14 days back)
    # A zero denominator: no value, so the signal is absent (its weight is left out).
    assert "custom.exports_per_refund" not in signals
    assert value("custom.refunds") == 0.0
    assert signals["custom.exports"]["score"] == 3.0 and signals["custom.exports"]["unit"] == "events"
    assert signals["custom.exports"]["source"] == "events" and signals["custom.exports"]["weight"] == 0.0

    quiet = make_customer()
    _event(quiet, edge - timedelta(seconds=1), type_="export")
    _event(quiet, NOW - timedelta(days=1), type_="login")
    signals = _signals(quiet)
    assert signals["custom.since_export"]["value"] == 7.0  # none in the window: at most window_days
    assert signals["custom.exports"]["value"] == 0.0
    assert "custom.exports_change" in signals and signals["custom.exports_change"]["value"] == -100.0


@pytest.mark.django_db
def test_points_curves_are_piecewise_linear_and_clamped(workspace, make_customer):
    points = [{"value": 2, "score": 10}, {"value": 4, "score": 50}, {"value": 8, "score": 90}]
    _metric(workspace, "custom.exports", "count", points=points)
    scores = {}
    for count in (0, 2, 3, 6, 8, 20):
        customer = make_customer()
        add_events(
            customer, [NOW - timedelta(hours=n + 1) for n in range(count)] or [NOW - timedelta(days=20)]
        )
        scores[count] = _signals(customer)["custom.exports"]["score"]
    assert scores == {0: 10.0, 2: 10.0, 3: 30.0, 6: 70.0, 8: 90.0, 20: 90.0}


@pytest.mark.django_db
def test_percentile_gives_ties_their_mean_rank(workspace, make_customer):
    _metric(workspace, "custom.exports", "count", curve="percentile")
    _metric(workspace, "custom.exports_low", "count", curve="percentile", higher_is_better=False)
    counts = [1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 30, 30]
    customers = []
    for count in counts:
        customer = make_customer()
        add_events(customer, [NOW - timedelta(hours=n + 1) for n in range(count)])
        customers.append(customer)
    _signals(customers[0])
    rows = {row.customer_id: stored_signals(row) for row in CustomerHealth.objects.all()}
    n = len(counts)

    def score(customer, key):
        return next(s["score"] for s in rows[customer.id] if s["key"] == key)

    # The three 1s share ranks 1-3 (mean 2), the two 30s ranks 21-22 (mean 21.5).
    assert score(customers[0], "custom.exports") == round(100 * (2 - 1) / (n - 1), 2) == 4.76
    assert score(customers[3], "custom.exports") == round(100 * 3 / (n - 1), 2)
    assert score(customers[-1], "custom.exports") == round(100 * 20.5 / (n - 1), 2)
    assert score(customers[-1], "custom.exports_low") == round(100 * 0.5 / (n - 1), 2)
    assert score(customers[0], "custom.exports_low") == round(100 * 20 / (n - 1), 2)

    # Rescoring one customer ranks it among the others' stored values, not alone.
    model = health_model_current(workspace_id=workspace.id)
    before = score(customers[5], "custom.exports")
    rescore(workspace_id=workspace.id, model=model, customer_ids=[customers[5].id], as_of=NOW)
    after = stored_signals(CustomerHealth.objects.get(customer_id=customers[5].id))
    assert next(s["score"] for s in after if s["key"] == "custom.exports") == before


@pytest.mark.django_db
def test_fewer_than_20_customers_fall_back_to_min_max(workspace, make_customer):
    _metric(workspace, "custom.exports", "count", curve="percentile")
    _metric(workspace, "custom.exports_low", "count", curve="percentile", higher_is_better=False)
    customers = []
    for count in (2, 4, 4, 10):
        customer = make_customer()
        add_events(customer, [NOW - timedelta(hours=n + 1) for n in range(count)])
        customers.append(customer)
    _signals(customers[0])
    rows = {row.customer_id: stored_signals(row) for row in CustomerHealth.objects.all()}
    high = [next(s["score"] for s in rows[c.id] if s["key"] == "custom.exports") for c in customers]
    low = [next(s["score"] for s in rows[c.id] if s["key"] == "custom.exports_low") for c in customers]
    assert high == [0.0, 25.0, 25.0, 100.0]
    assert low == [100.0, 75.0, 75.0, 0.0]


def _custom_metrics(workspace):
    _metric(workspace, "custom.type1", "count", event_types=["type1"], window_days=14, curve="percentile")
    _metric(
        workspace,
        "custom.days",
        "active_days",
        window_days=90,
        points=[{"value": 1, "score": 0}, {"value": 40, "score": 100}],
    )
    _metric(
        workspace,
        "custom.users_7d",
        "distinct_users",
        window_days=7,
        curve="percentile",
        higher_is_better=False,
    )
    _metric(
        workspace,
        "custom.since_type2",
        "days_since",
        event_types=["type2"],
        window_days=40,
        curve="percentile",
    )
    _metric(
        workspace,
        "custom.per_day",
        "ratio",
        numerator="custom.type1",
        denominator="custom.days",
        curve="percentile",
    )
    _metric(
        workspace,
        "custom.type1_change",
        "change",
        metric="custom.type1",
        points=[{"value": -100, "score": 0}, {"value": 50, "score": 100}],
    )
    _metric(
        workspace,
        "custom.breadth_ratio",
        "ratio",
        numerator="usage.breadth_30d",
        denominator="engagement.distinct_users_30d",
    )
    health_model_update(
        workspace_id=workspace.id,
        weights={
            "custom.type1": 12.5,
            "custom.days": 3.0,
            "custom.users_7d": 7.0,
            "custom.since_type2": 4.0,
            "custom.per_day": 9.0,
            "custom.type1_change": 6.5,
        },
    )


@pytest.mark.django_db
def test_custom_metrics_give_the_oracles_results(workspace, make_customer, health_outbox):
    now = timezone.now().replace(microsecond=123456)
    _dataset(make_customer, now)
    _custom_metrics(workspace)
    model = health_model_current(workspace_id=workspace.id)
    states = []
    for sql in (False, True):
        with transaction.atomic():
            (rescore if sql else oracle.rescore)(
                workspace_id=workspace.id, model=model, as_of=now, snapshot_date=now.date()
            )
            (rescore if sql else oracle.rescore)(
                workspace_id=workspace.id, model=model, as_of=now + timedelta(days=2)
            )
            states.append(_state(workspace.id, health_outbox))
            transaction.set_rollback(True)
    portable, set_based = states
    assert set_based[:4] == portable[:4]
    keys = {signal["key"] for row in portable[4] for signal in row[5]}
    assert {
        "custom.type1",
        "custom.days",
        "custom.users_7d",
        "custom.since_type2",
        "custom.per_day",
        "custom.type1_change",
        "custom.breadth_ratio",
    } <= keys
    assert portable[3], "no webhook: the custom weights moved nothing"


@pytest.mark.django_db
def test_builtin_signals_keep_their_documented_formulas(workspace, make_customer):
    """The built-ins are metrics of the same machinery now; their values and scores are still
    those of the formulas health.signals documents (oracle.event_signals, the pre-metrics code)."""
    now = timezone.now().replace(microsecond=654321)
    _dataset(make_customer, now)
    model = health_model_current(workspace_id=workspace.id)
    rescore(workspace_id=workspace.id, model=model, as_of=now)
    aggregates = oracle.event_aggregates(workspace_id=workspace.id, as_of=now)
    checked = 0
    for row in CustomerHealth.objects.filter(workspace_id=workspace.id):
        stored = {s["key"]: (s["value"], s["score"]) for s in stored_signals(row) if s["source"] == "events"}
        documented = {
            s["key"]: (s["value"], s["score"]) for s in oracle.event_signals(aggregates[row.customer_id], now)
        }
        assert stored == documented
        checked += bool(documented)
    assert checked > 40


@pytest.mark.django_db
def test_a_metric_change_makes_a_version_and_history_keeps_the_old_one(
    client, workspace, make_customer, django_capture_on_commit_callbacks
):
    customer = make_customer()
    add_events(customer, [NOW - timedelta(days=d, hours=1) for d in range(5)], types=["export", "login"])
    day1, day2 = (NOW - timedelta(days=2)).date(), (NOW - timedelta(days=1)).date()
    services.health_backfill(start=day1, end=day1)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/v1/health/metrics",
            {
                "key": "custom.exports",
                "label": "Exports",
                "category": "usage",
                "aggregate": "count",
                "event_types": ["export"],
                "window_days": 7,
            },
            format="json",
        )
    assert response.status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        put = client.put("/v1/health/model", {"weights": {"custom.exports": 10}}, format="json")
    assert put.status_code == 200
    services.health_backfill(start=day2, end=day2)
    history = client.get(
        f"/v1/customers/{customer.id}/health/history", {"start": day1.isoformat(), "end": day2.isoformat()}
    ).json()["data"]
    assert [(p["date"], p["model_version"]) for p in history] == [
        (day1.isoformat(), 1),
        (day2.isoformat(), 3),
    ]
    health = client.get(f"/v1/customers/{customer.id}/health").json()
    assert health["model_version"] == 3
    exports = next(s for s in health["signals"] if s["key"] == "custom.exports")
    assert exports["weight"] == 10.0 and exports["contribution"] > 0
    assert sum(s["contribution"] for s in health["signals"]) == pytest.approx(health["score"], abs=1e-9)
    listed = client.get(f"/v1/signals/{customer.id}").json()["data"]
    assert "custom.exports" in {s["key"] for s in listed}


@pytest.mark.django_db
def test_windows_reaching_past_every_all_types_window_read_only_their_types(
    workspace, make_customer, health_outbox
):
    """A typed window older than the built-ins' 30 days (a change's previous window, a long
    days_since) makes the scan read only those types' older rows; the newest event of a customer
    silent for 30 days (recency) is then looked up, and every value is still the oracle's."""
    from health.metrics import model_specs
    from health.rescore_sql import _Plan

    now = timezone.now().replace(microsecond=250000)
    _dataset(make_customer, now)
    # Silent for 30 days; its newest event is of a type no older window reads, and an older one
    # is of a type one does: its recency is the newest, not the newest the narrowed scan saw.
    quiet = make_customer("Quiet")
    _event(quiet, now - timedelta(days=35), type_="type0")
    _event(quiet, now - timedelta(days=50), type_="type1")
    _metric(workspace, "custom.type1_28d", "count", event_types=["type1"], window_days=28, curve="percentile")
    _metric(workspace, "custom.type1_change", "change", metric="custom.type1_28d")
    _metric(
        workspace,
        "custom.since_type3",
        "days_since",
        event_types=["type3"],
        window_days=45,
        points=[{"value": 0, "score": 100}, {"value": 45, "score": 0}],
    )
    health_model_update(
        workspace_id=workspace.id,
        weights={"custom.type1_28d": 4.0, "custom.type1_change": 6.0, "custom.since_type3": 3.5},
    )
    model = health_model_current(workspace_id=workspace.id)
    plan = _Plan(model_specs(model.metrics), as_of=now, tz=UTC)
    assert "e.type = ANY" in plan.scan_filter, "the older typed windows should narrow the scan"
    states = []
    for sql in (False, True):
        with transaction.atomic():
            (rescore if sql else oracle.rescore)(
                workspace_id=workspace.id, model=model, as_of=now, snapshot_date=now.date()
            )
            states.append(_state(workspace.id, health_outbox))
            quiet_row = CustomerHealth.objects.get(customer_id=quiet.id)
            quiet_recency = {signal["key"]: signal for signal in stored_signals(quiet_row)}[
                "engagement.recency_days"
            ]["value"]
            assert quiet_recency == 35.0, ("oracle" if not sql else "sql", quiet_recency)
            transaction.set_rollback(True)
    portable, set_based = states
    assert set_based[:4] == portable[:4]
    recency = [
        signal["value"]
        for row in portable[4]
        for signal in row[5]
        if signal["key"] == "engagement.recency_days" and signal["value"] is not None
    ]
    assert any(value > 30 for value in recency), "no customer silent for 30 days: recency untested"
