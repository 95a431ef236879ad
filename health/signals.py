"""The signal catalog and the scoring curves of the signals Perly computes from events.

A signal is one measured fact about a customer (`value`, `unit`) plus a 0-100 `score` saying how
good that value is. Event signals are computed here from per-customer aggregates; billing,
support and CRM signals arrive from integrations through `health.services.external_signals_upsert`.

Scoring curves of the event signals (each window ends at the computation time):

- usage.active_days_30d: distinct UTC days with an event in the last 30 days (at most 30).
  score = 100 * days / 20, capped at 100 (20 active days or more is full marks).
- usage.volume_trend_14d: events in the last 14 days as a percentage of the 14 days before.
  score = 2 * (percentage - 50), from 0 to 100: flat or growing is 100, a quarter less is 50,
  half the volume or less is 0 (a fall of that size is what a CSM wants flagged).
  With no events in the previous 14 days the value is null and the score is 100 if there were
  events in the last 14 days (a new or returning customer), else 0.
- usage.breadth_30d: distinct event types in the last 30 days. score = 100 * types / 5, capped.
- engagement.distinct_users_30d: distinct `properties.user_id` values in the last 30 days.
  score = 100 * users / 3, capped. Absent when no event in the window carries a user_id.
- engagement.recency_days: days since the last event ever. score = 100 up to 1 day, falling
  linearly to 0 at 30 days.

A customer with no event at all before the computation time has no event signals.
Roundings follow health.rounding.round_half_up; health.rescore_sql computes the same in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from health.rounding import round_half_up

CATEGORIES = ("usage", "engagement", "billing", "support")
DEFAULT_CATEGORY_WEIGHTS = {"usage": 40.0, "engagement": 30.0, "billing": 20.0, "support": 10.0}
EVENTS_SOURCE = "events"


@dataclass(frozen=True)
class SignalDef:
    key: str
    category: str
    label: str
    unit: str


CATALOG: dict[str, SignalDef] = {
    definition.key: definition
    for definition in (
        SignalDef("usage.active_days_30d", "usage", "Active days in the last 30", "days"),
        SignalDef("usage.volume_trend_14d", "usage", "Event volume, last 14 days vs previous 14", "%"),
        SignalDef("usage.breadth_30d", "usage", "Distinct event types in the last 30 days", "types"),
        SignalDef(
            "engagement.distinct_users_30d", "engagement", "Distinct users in the last 30 days", "users"
        ),
        SignalDef("engagement.recency_days", "engagement", "Days since the last event", "days"),
        SignalDef(
            "engagement.crm_last_activity_days", "engagement", "Days since the last CRM activity", "days"
        ),
        SignalDef("engagement.open_deal_amount", "engagement", "Open deal amount", "currency"),
        SignalDef("billing.mrr", "billing", "Monthly recurring revenue", "currency"),
        SignalDef("billing.subscription_status", "billing", "Subscription status", "status"),
        SignalDef(
            "billing.failed_payments_90d", "billing", "Failed payments in the last 90 days", "payments"
        ),
        SignalDef("billing.overdue_amount", "billing", "Overdue amount", "currency"),
        SignalDef("support.open_cases", "support", "Open support cases", "cases"),
        SignalDef("support.high_priority_open_cases", "support", "Open high-priority cases", "cases"),
    )
}
EVENT_SIGNAL_KEYS = (
    "usage.active_days_30d",
    "usage.volume_trend_14d",
    "usage.breadth_30d",
    "engagement.distinct_users_30d",
    "engagement.recency_days",
)


def default_weights() -> dict[str, float]:
    """Each category's default weight split evenly across that category's catalog signals."""
    weights: dict[str, float] = {}
    for category, total in DEFAULT_CATEGORY_WEIGHTS.items():
        keys = [key for key, definition in CATALOG.items() if definition.category == category]
        for key in keys:
            weights[key] = total / len(keys)
    return weights


def _round2(value: float) -> float:
    return round_half_up(value, 2)


def _capped(value: float) -> float:
    return _round2(max(0.0, min(100.0, value)))


@dataclass(frozen=True)
class EventAggregates:
    """What one grouped query returns per customer (see health.compute)."""

    active_days: int = 0
    recent_14d: int = 0
    previous_14d: int = 0
    types_30d: int = 0
    users_30d: int = 0
    last_event_at: datetime | None = None


def event_signals(agg: EventAggregates, as_of: datetime) -> list[dict]:
    """The event signals of one customer as `{key, value, score}`; empty if it has no events."""
    if agg.last_event_at is None:
        return []
    signals = [
        {"key": "usage.active_days_30d", "value": float(min(agg.active_days, 30))},
        _trend(agg.recent_14d, agg.previous_14d),
        {"key": "usage.breadth_30d", "value": float(agg.types_30d)},
    ]
    signals[0]["score"] = _capped(100.0 * min(agg.active_days, 30) / 20.0)
    signals[2]["score"] = _capped(100.0 * agg.types_30d / 5.0)
    if agg.users_30d > 0:
        signals.append(
            {
                "key": "engagement.distinct_users_30d",
                "value": float(agg.users_30d),
                "score": _capped(100.0 * agg.users_30d / 3.0),
            }
        )
    days = max(0.0, (as_of - agg.last_event_at).total_seconds() / 86400.0)
    signals.append({"key": "engagement.recency_days", "value": _round2(days), "score": recency_score(days)})
    return signals


def recency_score(days: float) -> float:
    if days <= 1.0:
        return 100.0
    return _capped(100.0 * (30.0 - days) / 29.0)


def _trend(recent: int, previous: int) -> dict:
    if previous == 0:
        return {"key": "usage.volume_trend_14d", "value": None, "score": 100.0 if recent > 0 else 0.0}
    percent = _round2(100.0 * recent / previous)
    return {"key": "usage.volume_trend_14d", "value": percent, "score": _capped(2.0 * (percent - 50.0))}
