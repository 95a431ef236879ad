"""Billing, engagement and support signals from synced provider records, with their 0-100 scores.

Each builder takes one Perly customer's records (grouped by stream, as stored) and returns the
signal dicts health.services.external_signals_upsert expects. A signal without data is left
out (absent, not zero). The scores are deliberately simple, monotonic curves: a past-due
customer with failed payments always scores lower on billing than an active one paying on time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import date, datetime

DAY = 86400

# Best status wins when a customer has several subscriptions.
SUBSCRIPTION_STATUS_SCORES = {
    "active": 100.0,
    "trialing": 75.0,
    "past_due": 30.0,
    "incomplete": 30.0,
    "paused": 20.0,
    "unpaid": 10.0,
    "canceled": 0.0,
    "incomplete_expired": 0.0,
}
MRR_STATUSES = ("active", "trialing", "past_due")
HIGH_PRIORITIES = {"high", "critical", "urgent"}

ACTIVITY_CURVE = [(0, 100), (7, 100), (14, 85), (30, 65), (60, 35), (90, 15), (180, 0)]
FAILED_PAYMENTS_CURVE = [(0, 100), (1, 60), (2, 35), (3, 15), (4, 0)]
OVERDUE_TO_MRR_CURVE = [(0, 70), (1, 35), (3, 10), (6, 0)]
OPEN_CASES_CURVE = [(0, 100), (1, 85), (3, 60), (5, 40), (10, 10), (15, 0)]
HIGH_PRIORITY_CASES_CURVE = [(0, 100), (1, 45), (2, 20), (3, 0)]


def piecewise(value: float, points: list[tuple[float, float]]) -> float:
    """Linear interpolation between (x, score) points, flat beyond the ends."""
    if value <= points[0][0]:
        return float(points[0][1])
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if value <= x1:
            return round(y0 + (y1 - y0) * (value - x0) / (x1 - x0), 2)
    return float(points[-1][1])


def signal(key: str, category: str, label: str, value: float | None, unit: str | None, score: float) -> dict:
    return {
        "key": key,
        "category": category,
        "label": label,
        "value": value,
        "unit": unit,
        "score": max(0.0, min(100.0, round(float(score), 2))),
    }


def monthly_amount(item: dict) -> float:
    """One subscription item's price x quantity, in minor units per month."""
    amount = (item.get("unit_amount") or 0) * (item.get("quantity") or 1)
    count = item.get("interval_count") or 1
    per_month = {"day": 365 / 12, "week": 52 / 12, "month": 1.0, "year": 1 / 12}
    return amount * per_month.get(item.get("interval") or "month", 1.0) / count


def _days_since(value, now: float) -> int | None:
    """Whole days from a date, ISO string or epoch-ms value to now."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        ts = value / 1000
    else:
        text = str(value)
        try:
            if len(text) == 10:
                ts = datetime.combine(date.fromisoformat(text), datetime.min.time()).timestamp()
            else:
                ts = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return max(0, int((now - ts) // DAY))


def activity_signal(days: int) -> dict:
    return signal(
        "engagement.crm_last_activity_days",
        "engagement",
        "Days since the last CRM activity",
        float(days),
        "days",
        piecewise(days, ACTIVITY_CURVE),
    )


def stripe_signals(streams: dict[str, list[dict]], now: float | None = None) -> list[dict]:
    now = now or time.time()
    subscriptions = streams.get("subscriptions") or []
    invoices = streams.get("invoices") or []
    charges = streams.get("charges") or []
    signals = []
    if subscriptions:
        paying = [s for s in subscriptions if s.get("status") in MRR_STATUSES]
        minor = sum(monthly_amount(item) for s in paying for item in s.get("items") or [])
        currency = next(
            (i.get("currency") for s in paying for i in s.get("items") or [] if i.get("currency")), None
        )
        mrr = round(minor / 100, 2)
        signals.append(
            signal(
                "billing.mrr",
                "billing",
                "Monthly recurring revenue",
                mrr,
                currency or "usd",
                100 if mrr > 0 else 0,
            )
        )
        best = max(subscriptions, key=lambda s: SUBSCRIPTION_STATUS_SCORES.get(s.get("status"), 0))
        status = best.get("status") or "unknown"
        signals.append(
            signal(
                "billing.subscription_status",
                "billing",
                f"Subscription status: {status}",
                None,
                None,
                SUBSCRIPTION_STATUS_SCORES.get(status, 0),
            )
        )
    else:
        mrr = 0.0
    if charges or invoices:
        window = now - 90 * DAY
        failed_charges = sum(
            1 for c in charges if c.get("status") == "failed" and (c.get("created") or 0) >= window
        )
        # Invoices whose payment attempts failed (their charges may predate the first sync).
        failed_attempts = sum(
            i.get("attempt_count") or 0
            for i in invoices
            if i.get("status") in ("open", "uncollectible")
            and i.get("attempted")
            and (i.get("created") or 0) >= window
        )
        failed = max(failed_charges, failed_attempts)
        signals.append(
            signal(
                "billing.failed_payments_90d",
                "billing",
                "Failed payments in the last 90 days",
                float(failed),
                "payments",
                piecewise(failed, FAILED_PAYMENTS_CURVE),
            )
        )
    if invoices:
        overdue_minor = sum(
            i.get("amount_remaining") or 0
            for i in invoices
            if i.get("status") in ("open", "uncollectible")
            and ((i.get("due_date") and i["due_date"] < now) or (i.get("attempt_count") or 0) > 0)
        )
        overdue = round(overdue_minor / 100, 2)
        if overdue <= 0:
            score = 100.0
        elif mrr > 0:
            score = piecewise(overdue / mrr, OVERDUE_TO_MRR_CURVE)
        else:
            score = 10.0
        currency = next((i.get("currency") for i in invoices if i.get("currency")), None)
        signals.append(
            signal(
                "billing.overdue_amount",
                "billing",
                "Overdue invoice amount",
                overdue,
                currency or "usd",
                score,
            )
        )
    return signals


def hubspot_signals(streams: dict[str, list[dict]], now: float | None = None) -> list[dict]:
    now = now or time.time()
    signals = []
    activity = [
        d
        for c in streams.get("companies") or []
        if (d := _days_since(c.get("last_activity_ms"), now)) is not None
    ]
    if activity:
        signals.append(activity_signal(min(activity)))
    deals = streams.get("deals") or []
    if deals:
        open_deals = [d for d in deals if not d.get("closed")]
        amount = round(sum(d.get("amount") or 0 for d in open_deals), 2)
        if open_deals:
            probabilities = [d["probability"] for d in open_deals if d.get("probability") is not None]
            score = 60 + 40 * max(probabilities) if probabilities else 75
            top = max(open_deals, key=lambda d: d.get("amount") or 0)
            label = f"Open deal amount (stage: {top.get('stage') or 'unknown'})"
        else:
            score, label = 50, "Open deal amount (no open deal)"
        signals.append(signal("engagement.open_deal_amount", "engagement", label, amount, "amount", score))
    return signals


def salesforce_signals(streams: dict[str, list[dict]], now: float | None = None) -> list[dict]:
    now = now or time.time()
    signals = []
    dates = [a.get("last_activity") for a in streams.get("accounts") or []]
    dates += [o.get("last_activity") for o in streams.get("opportunities") or []]
    activity = [d for value in dates if (d := _days_since(value, now)) is not None]
    if activity:
        signals.append(activity_signal(min(activity)))
    if streams.get("accounts"):
        open_cases = [c for c in streams.get("cases") or [] if not c.get("closed")]
        high = [c for c in open_cases if (c.get("priority") or "").lower() in HIGH_PRIORITIES]
        signals.append(
            signal(
                "support.open_cases",
                "support",
                "Open support cases",
                float(len(open_cases)),
                "cases",
                piecewise(len(open_cases), OPEN_CASES_CURVE),
            )
        )
        signals.append(
            signal(
                "support.high_priority_open_cases",
                "support",
                "High-priority open support cases",
                float(len(high)),
                "cases",
                piecewise(len(high), HIGH_PRIORITY_CASES_CURVE),
            )
        )
    return signals


BUILDERS: dict[str, Callable[[dict[str, list[dict]], float | None], list[dict]]] = {
    "stripe": stripe_signals,
    "hubspot": hubspot_signals,
    "salesforce": salesforce_signals,
}


def build_signals(provider: str, streams: dict[str, list[dict]], now: float | None = None) -> list[dict]:
    return BUILDERS[provider](streams, now)


def group_by_stream(rows: Iterable[tuple[str, dict]]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for stream, data in rows:
        grouped.setdefault(stream, []).append(data)
    return grouped
