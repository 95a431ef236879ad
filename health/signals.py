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
Roundings follow health.rounding.round_half_up. These five are predefined metrics of
health.metrics (BUILTIN_SPECS: points curves equal to these formulas), computed by
health.rescore_sql with the workspace's own metrics; tests/health/oracle.py is their Python
reference.
"""

from __future__ import annotations

from dataclasses import dataclass

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
