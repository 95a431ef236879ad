"""API dicts of health objects, shared by the views, the webhooks and the admin."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from customers.api.serializers import iso
from customers.models import HealthStatus
from health.models import HealthSnapshot

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


def scores_on(customer_ids: list[str], days: list[date]) -> dict[tuple[str, date], float | None]:
    """The snapshot scores of those customers on those days, keyed (customer_id, day); one query."""
    rows = HealthSnapshot.objects.filter(customer_id__in=customer_ids, date__in=days)
    return {(cid, day): score for cid, day, score in rows.values_list("customer_id", "date", "score")}


def current_health_representations(rows: Iterable) -> dict[str, dict]:
    """health_score objects keyed by customer id, for current-health rows (CustomerHealth or a
    rescore CurrentRow), change_7d / change_30d against the snapshots 7 and 30 days before each
    row's computed_at. Shared by the API read and the health webhooks so that both say the same."""
    rows = list(rows)
    days = {row.computed_at.date() - timedelta(days=n) for row in rows for n in (7, 30)}
    past = scores_on([row.customer_id for row in rows], sorted(days)) if rows else {}
    out = {}
    for row in rows:
        today = row.computed_at.date()
        out[row.customer_id] = health_representation(
            customer_id=row.customer_id,
            score=row.score,
            status=row.status,
            confidence=row.confidence,
            model_version=row.model_version,
            computed_at=row.computed_at,
            signals=row.signals,
            score_7d_ago=past.get((row.customer_id, today - timedelta(days=7))),
            score_30d_ago=past.get((row.customer_id, today - timedelta(days=30))),
        )
    return out


def iso_date(value: date) -> str:
    return value.isoformat()
