"""Signal scoring (integrations/signals.py): the curves and what each provider's data yields."""

from __future__ import annotations

import time

from integrations.signals import (
    hubspot_signals,
    monthly_amount,
    piecewise,
    salesforce_signals,
    stripe_signals,
)

# Whole seconds: (NOW - 3 * DAY) * 1000 / 1000 must give back exactly NOW - 3 days.
NOW = int(time.time())
DAY = 86400


def _billing_mean(signals):
    return sum(s["score"] for s in signals) / len(signals)


def test_piecewise_interpolates_and_clamps():
    curve = [(0, 100), (10, 0)]
    assert piecewise(-1, curve) == 100
    assert piecewise(5, curve) == 50
    assert piecewise(99, curve) == 0


def test_monthly_amount_normalizes_intervals():
    assert (
        monthly_amount({"unit_amount": 1200, "quantity": 2, "interval": "year", "interval_count": 1}) == 200
    )
    assert (
        monthly_amount({"unit_amount": 1000, "quantity": 1, "interval": "month", "interval_count": 3})
        == 1000 / 3
    )
    assert (
        round(monthly_amount({"unit_amount": 100, "quantity": 1, "interval": "week", "interval_count": 1}))
        == 433
    )


def test_past_due_with_failed_invoices_scores_below_active_paying_on_time():
    item = {"unit_amount": 5000, "quantity": 1, "interval": "month", "interval_count": 1, "currency": "usd"}
    active = stripe_signals(
        {
            "subscriptions": [{"status": "active", "items": [item]}],
            "invoices": [{"status": "paid", "amount_remaining": 0, "created": NOW - DAY}],
            "charges": [{"status": "succeeded", "created": NOW - DAY}],
        },
        NOW,
    )
    past_due = stripe_signals(
        {
            "subscriptions": [{"status": "past_due", "items": [item]}],
            "invoices": [
                {
                    "status": "open",
                    "amount_remaining": 5000,
                    "attempt_count": 2,
                    "attempted": True,
                    "due_date": NOW - 3 * DAY,
                    "created": NOW - 10 * DAY,
                }
            ],
            "charges": [
                {"status": "failed", "created": NOW - 2 * DAY},
                {"status": "failed", "created": NOW - DAY},
            ],
        },
        NOW,
    )

    assert _billing_mean(past_due) < _billing_mean(active) == 100
    by_key = {s["key"]: s for s in past_due}
    assert by_key["billing.failed_payments_90d"]["value"] == 2
    assert by_key["billing.overdue_amount"]["value"] == 50.0
    assert by_key["billing.subscription_status"]["label"] == "Subscription status: past_due"


def test_status_order_active_trialing_past_due_unpaid_canceled():
    scores = [
        {s["key"]: s for s in stripe_signals({"subscriptions": [{"status": status, "items": []}]}, NOW)}[
            "billing.subscription_status"
        ]["score"]
        for status in ("active", "trialing", "past_due", "unpaid", "canceled")
    ]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 5


def test_failed_payments_older_than_90_days_do_not_count():
    signals = stripe_signals({"charges": [{"status": "failed", "created": NOW - 91 * DAY}]}, NOW)
    assert signals[0]["value"] == 0 and signals[0]["score"] == 100


def test_no_provider_data_means_absent_signals_not_zero():
    assert stripe_signals({"customers": [{}]}, NOW) == []
    assert hubspot_signals({"companies": [{"last_activity_ms": None}]}, NOW) == []
    assert salesforce_signals({}, NOW) == []


def test_crm_activity_decays_with_age():
    fresh = hubspot_signals({"companies": [{"last_activity_ms": (NOW - 3 * DAY) * 1000}]}, NOW)[0]
    stale = hubspot_signals({"companies": [{"last_activity_ms": (NOW - 75 * DAY) * 1000}]}, NOW)[0]
    assert (fresh["value"], fresh["score"]) == (3, 100)
    assert stale["value"] == 75 and stale["score"] == 25


def test_support_cases_score_by_count_and_priority():
    signals = {
        s["key"]: s
        for s in salesforce_signals(
            {
                "accounts": [{"last_activity": None}],
                "cases": [
                    {"closed": False, "priority": "High"},
                    {"closed": False, "priority": "Low"},
                    {"closed": True, "priority": "High"},
                ],
            },
            NOW,
        )
    }
    assert signals["support.open_cases"]["value"] == 2
    assert signals["support.high_priority_open_cases"]["value"] == 1
    assert signals["support.high_priority_open_cases"]["score"] == 45
