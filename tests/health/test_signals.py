"""Each event signal's computation, at the edges of its window (the production rescore, read back
as the API explains it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from health.models import CustomerHealth
from health.representation import stored_signals
from health.rescore import rescore
from health.services import health_model_current
from tests.health.conftest import add_events

NOW = timezone.now().replace(microsecond=0)


def signals_of(customer, as_of=NOW) -> dict[str, dict]:
    model = health_model_current(workspace_id=customer.workspace_id)
    assert (
        rescore(workspace_id=customer.workspace_id, model=model, customer_ids=[customer.id], as_of=as_of) == 1
    )
    row = CustomerHealth.objects.get(customer_id=customer.id)
    return {signal["key"]: signal for signal in stored_signals(row) if signal["source"] == "events"}


def _score(customer, key: str) -> tuple:
    signal = signals_of(customer)[key]
    return signal["value"], signal["score"]


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


def test_active_days_score_is_full_from_20_days(make_customer):
    twenty, ten = make_customer(), make_customer()
    add_events(twenty, [NOW - timedelta(days=day, hours=1) for day in range(20)])
    add_events(ten, [NOW - timedelta(days=day, hours=1) for day in range(0, 20, 2)])
    assert _score(twenty, "usage.active_days_30d")[1] == 100.0
    assert _score(ten, "usage.active_days_30d")[1] == 50.0


def test_volume_trend_compares_last_14_days_with_the_previous_14(make_customer):
    customer = make_customer()
    recent = [NOW - timedelta(days=14) + timedelta(seconds=1), NOW - timedelta(days=1)]
    previous = [NOW - timedelta(days=14, seconds=1)] + [NOW - timedelta(days=28) + timedelta(seconds=5)] * 3
    too_old = [NOW - timedelta(days=28, seconds=1)]
    add_events(customer, recent + previous + too_old)
    signal = signals_of(customer)["usage.volume_trend_14d"]
    assert signal["value"] == 50.0  # 2 events against 4
    assert signal["score"] == 0.0  # half the volume or less scores 0


def _volumes(customer, recent: int, previous: int) -> None:
    add_events(customer, [NOW - timedelta(days=2, minutes=n) for n in range(recent)])
    add_events(customer, [NOW - timedelta(days=20, minutes=n) for n in range(previous)])


def test_volume_trend_without_previous_volume(make_customer):
    new, silent, growing, falling = (make_customer() for _ in range(4))
    _volumes(new, 3, 0)
    add_events(silent, [NOW - timedelta(days=29)])  # in the window, before both halves
    _volumes(growing, 30, 10)
    _volumes(falling, 75, 100)
    assert _score(new, "usage.volume_trend_14d") == (None, 100.0)
    assert _score(silent, "usage.volume_trend_14d") == (None, 0.0)
    assert _score(growing, "usage.volume_trend_14d") == (300.0, 100.0)
    assert _score(falling, "usage.volume_trend_14d") == (75.0, 50.0)


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


@pytest.mark.parametrize(
    ("days", "value", "score"),
    [(0.001, 0.0, 100.0), (1.0, 1.0, 100.0), (15.5, 15.5, 50.0), (30.0, 30.0, 0.0), (45.0, 45.0, 0.0)],
)
def test_recency_curve_edges(make_customer, days, value, score):
    customer = make_customer()
    add_events(customer, [NOW - timedelta(days=days)])
    assert _score(customer, "engagement.recency_days") == (value, score)


def test_events_after_the_computation_time_are_ignored(make_customer):
    customer = make_customer()
    add_events(customer, [NOW + timedelta(hours=1)])
    assert signals_of(customer) == {}


def test_customer_without_events_has_no_event_signals(make_customer):
    customer = make_customer()
    assert signals_of(customer) == {}
