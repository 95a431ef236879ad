"""The set-based SQL rescoring and its Python reference (tests/health/oracle.py, the documented
formulas) give identical results.

Both run on the same data from the same starting state (a savepoint rolled back in between):
a first rollup (baselines + snapshots), then a rescore two days later with a new model version,
which moves statuses and so publishes webhooks (read from the real outbox rows, written in the
scoring transaction)."""

from __future__ import annotations

import json
import random
import struct
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer
from health import rescore_sql
from health.models import ARRAY_COLUMNS, CustomerHealth, ExternalSignal, HealthModel, HealthSnapshot
from health.representation import BREAKDOWN_FIELDS, signal_representation, stored_signals
from health.rescore import rescore
from health.rounding import round_half_up
from health.services import external_signals_upsert, health_model_current, health_rollup
from tests.health import oracle
from tests.health.conftest import add_events


def _dataset(make_customer, now):
    rng = random.Random(20261126)
    customers = []
    for index in range(60):
        customer = make_customer(f"Parity {index}")
        customers.append(customer)
        if index % 10 == 0:
            continue  # no events at all
        if index % 10 == 1:  # silent for more than the window: recency only
            add_events(customer, [now - timedelta(days=40 + rng.random() * 10)])
            continue
        count = rng.randint(1, 120)
        power = 1 + index % 4
        when = [now - timedelta(seconds=86400 * 45 * rng.random() ** power) for _ in range(count)]
        types = [f"type{n}" for n in range(1 + index % 7)]
        users = [f"u{n}" for n in range(index % 5)] or None
        add_events(customer, when, types=types, users=users)
    # Window edges: exactly 30 days (in), exactly 14 and 28 days, and an event at as_of (out).
    edge = make_customer("Edges")
    add_events(
        edge,
        [now - timedelta(days=30), now - timedelta(days=14), now - timedelta(days=28), now],
        types=["a", "b"],
        users=["x"],
    )
    # A trend on an exact tie: 25 recent vs 32 previous = 78.125 %.
    tie = make_customer("Tie")
    add_events(tie, [now - timedelta(days=1, minutes=n) for n in range(25)])
    add_events(tie, [now - timedelta(days=20, minutes=n) for n in range(32)])
    # External signals, with and without events; a deleted customer is not scored.
    for customer, score in ((customers[2], 12.5), (customers[10], 87.0), (customers[23], 55.55)):
        external_signals_upsert(
            workspace_id=customer.workspace_id,
            customer_id=customer.id,
            source="stripe",
            signals=[
                {"key": "billing.mrr", "value": 1200, "score": score},
                {"key": "support.open_cases", "value": 3.0, "score": 100 - score, "label": ""},
            ],
        )
    ExternalSignal.objects.update(computed_at=now - timedelta(hours=1))
    Customer.objects.filter(pk=customers[5].pk).update(deleted_at=now)
    return tie


def _state(workspace_id, outbox):
    # Every stored column (the event signals' columns and the other signals' JSON), and the
    # breakdown the API rebuilds from them (row[5]).
    health = [
        (
            row["customer_id"],
            row["score"],
            row["status"],
            row["confidence"],
            row["model_version"],
            stored_signals(row),
            row["computed_at"],
            row["notified_score"],
            row["notified_status"],
            row["signals"],
            tuple(tuple(row[column] or ()) for column in ARRAY_COLUMNS),
        )
        for row in CustomerHealth.objects.filter(workspace_id=workspace_id)
        .order_by("customer_id")
        .values(
            "customer_id",
            "score",
            "status",
            "confidence",
            "model_version",
            "notified_score",
            "notified_status",
            *BREAKDOWN_FIELDS,
        )
    ]
    mirror = list(
        Customer.all_objects.filter(workspace_id=workspace_id)
        .order_by("id")
        .values_list("id", "health_score", "health_status", "health_computed_at")
    )
    snapshots = list(
        HealthSnapshot.objects.filter(workspace_id=workspace_id)
        .order_by("customer_id", "date")
        .values_list("customer_id", "date", "score", "status", "confidence", "model_version", "computed_at")
    )
    webhooks = sorted(
        (event["data"]["object"]["customer"], event["type"], repr(event["data"])) for event in outbox.events()
    )
    # repr, not ==: a JSON 5 where the other path has 5.0 must fail too.
    return repr(health), repr(mirror), repr(snapshots), webhooks, health


def _run(workspace, outbox, now, sql: bool, reweight=None):
    with transaction.atomic():
        if sql:
            health_rollup(now=now)
        else:
            model = health_model_current(workspace_id=workspace.id)
            oracle.rescore(workspace_id=workspace.id, model=model, as_of=now, snapshot_date=now.date())
        # Two days later under a stricter, re-weighted model: statuses move, webhooks go out.
        current = health_model_current(workspace_id=workspace.id)
        weights = {**current.weights, "usage.breadth_30d": 7.25, "engagement.recency_days": 13.1}
        if reweight is not None:
            weights = reweight(weights)
        model = HealthModel.objects.create(
            workspace_id=workspace.id,
            version=current.version + 1,
            weights=weights,
            healthy_threshold=63.5,
            at_risk_threshold=45.0,
        )
        (rescore if sql else oracle.rescore)(
            workspace_id=workspace.id, model=model, as_of=now + timedelta(days=2)
        )
        state = _state(workspace.id, outbox)
        transaction.set_rollback(True)
    return state


@pytest.mark.django_db
def test_sql_rescoring_gives_the_oracles_results(workspace, make_customer, health_outbox):
    now = timezone.now().replace(microsecond=123456)
    tie = _dataset(make_customer, now)
    portable = _run(workspace, health_outbox, now, sql=False)
    set_based = _run(workspace, health_outbox, now, sql=True)

    assert set_based[0] == portable[0]  # scores, statuses, confidences, signal breakdowns
    assert set_based[1] == portable[1]  # the customers' mirror
    assert set_based[2] == portable[2]  # snapshots
    assert set_based[3] == portable[3]  # webhooks
    # The data exercises what it should: every status, webhooks, the rounding tie.
    health = portable[4]
    assert {row[2] for row in health} == {"healthy", "neutral", "at_risk", "unknown"}
    assert len(health) == 61  # 62 customers, one deleted
    assert portable[3], "the second pass published no webhook"
    trend = next(
        signal
        for row in health
        if row[0] == tie.id
        for signal in row[5]
        if signal["key"] == "usage.volume_trend_14d"
    )
    assert trend["value"] == 78.13  # 78.125 rounds half up, in both paths


def _without_event_weights(weights: dict) -> dict:
    # Event signals weighing nothing (0, or not in the model at all): a customer with events
    # only has no weight present, so no score; one with external signals too is scored on those.
    out = {key: value for key, value in weights.items() if key != "usage.active_days_30d"}
    return out | dict.fromkeys(
        (
            "usage.volume_trend_14d",
            "usage.breadth_30d",
            "engagement.distinct_users_30d",
            "engagement.recency_days",
        ),
        0.0,
    )


@pytest.mark.django_db
def test_sql_rescoring_and_the_oracle_agree_when_event_signals_weigh_nothing(
    workspace, make_customer, health_outbox
):
    now = timezone.now().replace(microsecond=123456)
    _dataset(make_customer, now)
    portable = _run(workspace, health_outbox, now, sql=False, reweight=_without_event_weights)
    set_based = _run(workspace, health_outbox, now, sql=True, reweight=_without_event_weights)
    assert set_based[:4] == portable[:4]
    rows = portable[4]
    assert sum(row[1] is not None for row in rows) == 3  # the three customers with external signals
    # usage.active_days_30d (third in key order) present, weighing nothing.
    assert any(row[10][1] and row[10][1][2] is not None and row[10][2][2] == 0.0 for row in rows)


@pytest.mark.django_db
def test_rescore_of_given_customers_rescores_only_them(workspace, make_customer):
    now = timezone.now()
    first, second = make_customer(), make_customer()
    add_events(first, [now - timedelta(hours=1)])
    model = health_model_current(workspace_id=workspace.id)
    assert rescore(workspace_id=workspace.id, model=model, customer_ids=[first.id], as_of=now) == 1
    assert list(CustomerHealth.objects.values_list("customer_id", flat=True)) == [first.id]
    assert Customer.objects.get(pk=second.pk).health_computed_at is None


@pytest.mark.django_db
def test_stored_breakdown_reads_back_as_the_computed_one(workspace, make_customer):
    """The event signals are stored apart and rebuilt on read: the API's signal objects are
    exactly those of the oracle's breakdown after a JSON round trip (what the API served when
    the whole breakdown was stored as JSON), types included."""
    now = timezone.now().replace(microsecond=654321)
    _dataset(make_customer, now)
    health_rollup(now=now)
    model = health_model_current(workspace_id=workspace.id)
    results = oracle.computed(workspace_id=workspace.id, model=model, as_of=now)
    rows = {row.customer_id: row for row in CustomerHealth.objects.filter(workspace_id=workspace.id)}
    assert len(rows) == len(results) == 61
    for customer_id, result in results.items():
        expected = json.loads(json.dumps(result.signals))
        stored = stored_signals(rows[customer_id])
        as_api = [repr(signal_representation(signal, with_weight=True)) for signal in stored]
        assert as_api == [repr(signal_representation(signal, with_weight=True)) for signal in expected]


@pytest.mark.django_db
def test_sql_rounding_is_round_half_up():
    """rescore_sql._r (float8 arithmetic) == health.rounding.round_half_up, on exact decimal
    ties (78.125), floats a few ulps either side of a tie, and the scoring's own quotients."""
    rng = random.Random(4)
    values = [0.0, 0.005, 0.015, 2.675, 3.125, 78.125, 1.0049999999999999, 99.995, 100.0, 0.00005, 12.34565]
    for _ in range(3000):
        tie = rng.randint(0, 200_000) * 2 + 1
        for middle in (tie / 2000.0, tie / 20000.0):
            bits = struct.unpack("<q", struct.pack("<d", middle))[0] + rng.randint(-2, 2)
            values.append(struct.unpack("<d", struct.pack("<q", bits))[0])
        values.append(
            rng.choice([40 / 3, 7.5, 5.0, 7.25, 13.1]) * rng.randint(0, 10000) / 100 / rng.uniform(5, 80)
        )
        values.append(100.0 * rng.randint(0, 3000) / rng.randint(1, 3000))
    values += [-value for value in values[:50]]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT x, {rescore_sql._r('x')}, {rescore_sql._r('x', 4)} FROM unnest(%s::float8[]) AS t(x)",  # noqa: S608
            [values],
        )
        rows = cursor.fetchall()
    assert len(rows) == len(values)
    for value, two, four in rows:
        assert (value, two, four) == (value, round_half_up(value, 2), round_half_up(value, 4))
