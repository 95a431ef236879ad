"""churn_probability: the newest applied fit's logistic mapping of the score (health.backtests)."""

from __future__ import annotations

from dataclasses import dataclass

from health import fitting
from health.models import ModelFit


@dataclass(frozen=True)
class AppliedCurve:
    fit_id: str
    horizon_days: int
    curve: fitting.ChurnCurve


def applied_curve(workspace_id: str) -> AppliedCurve | None:
    """The newest applied fit's churn curve, or None before any fit was applied."""
    row = (
        ModelFit.objects.filter(workspace_id=workspace_id, applied_at__isnull=False)
        .order_by("-applied_at")
        .values_list("pk", "result__churn_curve")  # the curve only, not the whole fit result
        .first()
    )
    if row is None:
        return None
    curve = row[1]
    return AppliedCurve(
        fit_id=row[0],
        horizon_days=int(curve["horizon_days"]),
        curve=fitting.ChurnCurve(intercept=float(curve["intercept"]), slope=float(curve["slope"])),
    )


def churn_probability(score: float | None, applied: AppliedCurve | None) -> float | None:
    return fitting.churn_probability(score, applied.curve if applied else None)
