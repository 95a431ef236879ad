"""API dicts of health objects, shared by the views, the webhooks and the admin."""

from __future__ import annotations

from datetime import date, datetime

from customers.api.serializers import iso
from customers.models import HealthStatus

SIGNAL_FIELDS = ("key", "category", "label", "value", "unit", "score", "source", "computed_at")


def signal_representation(signal: dict, *, with_weight: bool) -> dict:
    data = {"object": "signal", **{name: signal.get(name) for name in SIGNAL_FIELDS}}
    if with_weight:
        data["weight"] = signal.get("weight", 0.0)
        data["contribution"] = signal.get("contribution", 0.0)
    return data


def change(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    return round(current - previous, 2)


def health_representation(
    *,
    customer_id: str,
    score: float | None,
    status: str,
    confidence: float,
    model_version: int | None,
    computed_at: datetime | None,
    signals: list[dict],
    score_7d_ago: float | None,
    score_30d_ago: float | None,
) -> dict:
    return {
        "object": "health_score",
        "customer": customer_id,
        "score": score,
        "status": status or HealthStatus.UNKNOWN,
        "confidence": confidence,
        "model_version": model_version,
        "change_7d": change(score, score_7d_ago),
        "change_30d": change(score, score_30d_ago),
        "computed_at": iso(computed_at),
        "signals": [signal_representation(signal, with_weight=True) for signal in signals],
    }


def iso_date(value: date) -> str:
    return value.isoformat()
