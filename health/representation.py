"""API dicts of health objects, shared by the views, the webhooks and the admin."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from customers.models import HealthStatus
from health.churn_curve import applied_curve, churn_probability
from health.metrics import Spec, model_specs
from health.models import ARRAY_COLUMNS, CustomerHealth, HealthModel, HealthSnapshot
from health.signals import EVENTS_SOURCE
from perly.timestamps import iso

SIGNAL_FIELDS = ("key", "category", "label", "value", "unit", "score", "source", "computed_at")


# What a read of CustomerHealth needs to rebuild the signal breakdown (stored_signals).
BREAKDOWN_FIELDS = ("signals", "computed_at", "workspace_id", "model_version", *ARRAY_COLUMNS)

# Model versions never change once written, so their event-signal layout is cached per process.
_LAYOUTS: dict[tuple[str, int], tuple[list[Spec], dict[str, float]]] = {}
_LAYOUTS_MAX = 1024


def version_layout(workspace_id: str, version: int) -> tuple[list[Spec], dict[str, float]]:
    """A model version's event signals (the order of the stored arrays) and its weights."""
    key = (workspace_id, version)
    layout = _LAYOUTS.get(key)
    if layout is None:
        model = HealthModel.objects.filter(workspace_id=workspace_id, version=version).first()
        metrics, weights = (model.metrics, model.weights) if model is not None else ([], {})
        layout = (model_specs(metrics), weights)
        if len(_LAYOUTS) >= _LAYOUTS_MAX:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


def stored_signals(row) -> list[dict]:
    """The full signal breakdown of a CustomerHealth row (a model instance or a dict with
    BREAKDOWN_FIELDS), sorted by key: the event signals from their arrays (computed at the
    row's computed_at, weighed by its model version) merged with the other signals stored in
    `signals`."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    signals = list(get("signals") or [])
    scores = get("signal_scores")
    if scores and any(score is not None for score in scores):
        specs, weights = version_layout(get("workspace_id"), get("model_version"))
        values, contributions = get("signal_values"), get("signal_contributions")
        computed_at = iso(get("computed_at"))
        for index, spec in enumerate(specs[: len(scores)]):
            if scores[index] is None:
                continue
            signals.append(
                {
                    "key": spec.key,
                    "category": spec.category,
                    "label": spec.label,
                    "value": values[index],
                    "unit": spec.unit,
                    "score": scores[index],
                    "source": EVENTS_SOURCE,
                    "computed_at": computed_at,
                    "weight": float(weights.get(spec.key, 0.0)),
                    "contribution": contributions[index],
                }
            )
    signals.sort(key=lambda signal: signal["key"])
    return signals


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
    churn_probability: float | None = None,
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
        # An estimate from the workspace's applied fit (health.backtests), null before one.
        "churn_probability": churn_probability,
        "computed_at": iso(computed_at),
        "signals": [signal_representation(signal, with_weight=True) for signal in signals],
    }


def scores_on(customer_ids: list[str], days: list[date]) -> dict[tuple[str, date], float | None]:
    """The snapshot scores of those customers on those days, keyed (customer_id, day); one query."""
    rows = HealthSnapshot.objects.filter(customer_id__in=customer_ids, date__in=days)
    return {(cid, day): score for cid, day, score in rows.values_list("customer_id", "date", "score")}


def current_health_representations(rows: Iterable) -> dict[str, dict]:
    """health_score objects keyed by customer id, for current-health rows (CustomerHealth, or a
    rescore CurrentRow whose `signals` is the full breakdown), change_7d / change_30d against the snapshots 7 and 30 days before each
    row's computed_at. Shared by the API read and the health webhooks so that both say the same."""
    rows = list(rows)
    days = {row.computed_at.date() - timedelta(days=n) for row in rows for n in (7, 30)}
    past = scores_on([row.customer_id for row in rows], sorted(days)) if rows else {}
    curves = {
        workspace_id: applied_curve(workspace_id) for workspace_id in {row.workspace_id for row in rows}
    }
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
            signals=stored_signals(row) if isinstance(row, CustomerHealth) else row.signals,
            score_7d_ago=past.get((row.customer_id, today - timedelta(days=7))),
            score_30d_ago=past.get((row.customer_id, today - timedelta(days=30))),
            churn_probability=churn_probability(row.score, curves[row.workspace_id]),
        )
    return out
