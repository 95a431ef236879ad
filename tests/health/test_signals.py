"""Each event signal's computation, at the edges of its window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from health.compute import event_aggregates
from health.signals import EventAggregates, event_signals, recency_score
from tests.health.conftest import add_events

NOW = timezone.now().replace(microsecond=0)


def signals_of(customer, as_of=NOW) -> dict[str, dict]:
    agg = event_aggregates(workspace_id=customer.workspace_id, as_of=as_of, customer_ids=[customer.id])
    return {signal["key"]: signal for signal in event_signals(agg[customer.id], as_of)}


def test_active_days_counts_days_inside_the_30_day_window_only(make_customer):
    customer = make_customer()
    add_events(
        customer,
        [
            NOW - timedelta(days=30, seconds=1),  # just outside
            NOW - timedelta(days=30) + timedelta(seconds=1),  # just inside
            NOW - timedelta(days=3),
            NOW - timedelta(days=3, hours=1),  # same day as the previous one, or the day before
            NOW - timedelta(seconds=1),
            NOW,  # the window ends at the computation time, exclusive
        ],
    )
    signal = signals_of(customer)["usage.active_days_30d"]
    days = {(NOW - timedelta(days=3)).date(), (NOW - timedelta(days=3, hours=1)).date()}
    assert signal["value"] == 2 + len(days)
    assert signal["score"] == pytest.approx(100 * (2 + len(days)) / 20, abs=0.01)


def test_active_days_score_is_full_from_20_days():
    assert event_signals(EventAggregates(active_days=20, last_event_at=NOW), NOW)[0]["score"] == 100.0
    assert event_signals(EventAggregates(active_days=10, last_event_at=NOW), NOW)[0]["score"] == 50.0


def test_volume_trend_compares_last_14_days_with_the_previous_14(make_customer):
    customer = make_customer()
    recent = [NOW - timedelta(days=14) + timedelta(seconds=1), NOW - timedelta(days=1)]
    previous = [NOW - timedelta(days=14, seconds=1)] + [NOW - timedelta(days=28) + timedelta(seconds=5)] * 3
    too_old = [NOW - timedelta(days=28, seconds=1)]
    add_events(customer, recent + previous + too_old)
    signal = signals_of(customer)["usage.volume_trend_14d"]
    assert signal["value"] == 50.0  # 2 events against 4
    assert signal["score"] == 0.0  # half the volume or less scores 0


def test_volume_trend_without_previous_volume():
    new = event_signals(EventAggregates(recent_14d=3, previous_14d=0, last_event_at=NOW), NOW)[1]
    silent = event_signals(EventAggregates(recent_14d=0, previous_14d=0, last_event_at=NOW), NOW)[1]
    growing = event_signals(EventAggregates(recent_14d=30, previous_14d=10, last_event_at=NOW), NOW)[1]
    assert (new["value"], new["score"]) == (None, 100.0)
    assert (silent["value"], silent["score"]) == (None, 0.0)
    assert (growing["value"], growing["score"]) == (300.0, 100.0)
    falling = event_signals(EventAggregates(recent_14d=75, previous_14d=100, last_event_at=NOW), NOW)[1]
    assert (falling["value"], falling["score"]) == (75.0, 50.0)


def test_breadth_counts_distinct_types_in_30_days(make_customer):
    customer = make_customer()
    add_events(customer, [NOW - timedelta(days=1)] * 4, types=["login", "export", "login", "invite"])
    add_events(customer, [NOW - timedelta(days=31)], types=["report"])
    signal = signals_of(customer)["usage.breadth_30d"]
    assert (signal["value"], signal["score"]) == (3.0, 60.0)


def test_distinct_users_counts_user_ids_and_is_absent_without_them(make_customer):
    with_users = make_customer()
    add_events(with_users, [NOW - timedelta(days=2)] * 5, users=["u1", "u2", "u1"])
    add_events(with_users, [NOW - timedelta(days=31)], users=["u9"])
    signal = signals_of(with_users)["engagement.distinct_users_30d"]
    assert (signal["value"], signal["score"]) == (2.0, 66.67)
    without = make_customer()
    add_events(without, [NOW - timedelta(days=2)])
    assert "engagement.distinct_users_30d" not in signals_of(without)


def test_recency_reaches_back_beyond_the_window(make_customer):
    customer = make_customer()
    add_events(customer, [NOW - timedelta(days=200)])
    signals = signals_of(customer)
    assert signals["engagement.recency_days"]["value"] == 200.0
    assert signals["engagement.recency_days"]["score"] == 0.0
    assert signals["usage.active_days_30d"]["value"] == 0.0


def test_recency_curve_edges():
    assert recency_score(0) == 100.0
    assert recency_score(1.0) == 100.0
    assert recency_score(15.5) == 50.0
    assert recency_score(30.0) == 0.0
    assert recency_score(45.0) == 0.0


def test_events_after_the_computation_time_are_ignored(make_customer):
    customer = make_customer()
    add_events(customer, [NOW + timedelta(hours=1)])
    aggregates = event_aggregates(workspace_id=customer.workspace_id, as_of=NOW, customer_ids=[customer.id])
    assert event_signals(aggregates[customer.id], NOW) == []


def test_customer_without_events_has_no_event_signals(make_customer):
    customer = make_customer()
    aggregates = event_aggregates(workspace_id=customer.workspace_id, as_of=NOW)
    assert aggregates[customer.id].last_event_at is None
    assert event_signals(aggregates[customer.id], NOW) == []
