"""How well scores rank churners: the pure measures behind backtests and model fits.

Every function takes one entry per observation (a customer at an observation date): its score,
and whether it churned within the horizon. A lower score means more risk throughout, as in the
health score itself. No queries; numpy only.

- auc: the probability that a random churner scores below a random stayer, a tie counting half
  (the Mann-Whitney U statistic over churners x stayers). 1.0 ranks every churner below every
  stayer, 0.5 is a coin, 0.0 is exactly backwards. None when either class is empty.
- lift_bottom_decile: the churn rate of the lowest-scored 10% over the overall churn rate. The
  bottom decile is exactly n / 10 observations' worth: everyone strictly below the cut score is
  in it, and the observations tied at the cut share the places left, each counting with the
  same fraction. That is the expected rate over every way of breaking the tie, so the figure
  does not depend on the input's order (all-equal scores give a lift of exactly 1.0).
- churn_rate_by_status: the statuses of health.models.HealthModel.status_for (healthy at or
  above `healthy`, at_risk below `at_risk`, neutral between).
- calibration: ten score bands [0, 10), [10, 20), ..., [90, 100] (the last one includes 100).
- signal_evaluation: one signal's own AUC on its values (missing values left out) and its
  direction: `higher_is_better` is true when higher values go with less churn (AUC >= 0.5; a
  signal that separates nothing keeps the default direction).

Rates and AUCs are returned unrounded; backtest_result rounds them to 4 decimals for the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from health.rounding import round_half_up

STATUSES = ("healthy", "neutral", "at_risk")
BAND_WIDTH = 10
BANDS = 10


class ChurnDataError(Exception):
    """The observations cannot answer the question (no churn, no signal data, ...): the job fails
    with this `code` and `message` as its `error`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def require_churners_and_stayers(churned: np.ndarray) -> None:
    """No ranking can be judged without both: raise the job's error."""
    if not churned.any():
        raise ChurnDataError(
            "no_churn", "No observed customer churned within the horizon of any observation date."
        )
    if churned.all():
        raise ChurnDataError("no_stayers", "Every observed customer churned: there is no stayer to compare.")


def _arrays(scores: Sequence[float] | np.ndarray, churned: Sequence[bool] | np.ndarray):
    values = np.asarray(scores, dtype=float)
    labels = np.asarray(churned, dtype=bool)
    if values.shape != labels.shape or values.ndim != 1:
        raise ValueError("scores and churned must be one-dimensional and of the same length.")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite numbers (leave unscored observations out).")
    return values, labels


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties getting the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, len(values)])
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def auc(scores, churned) -> float | None:
    values, labels = _arrays(scores, churned)
    churners = int(labels.sum())
    stayers = len(labels) - churners
    if churners == 0 or stayers == 0:
        return None
    stayer_rank_sum = average_ranks(values)[~labels].sum()
    # U of the stayers: the (churner, stayer) pairs where the stayer scores higher, ties half.
    u_stayers = stayer_rank_sum - stayers * (stayers + 1) / 2.0
    return float(u_stayers / (churners * stayers))


def lift_bottom_decile(scores, churned) -> float | None:
    """None when there is no observation or no churn (a lift over a zero rate means nothing)."""
    values, labels = _arrays(scores, churned)
    n = len(values)
    if n == 0 or not labels.any():
        return None
    size = n / 10.0
    places = -(-n // 10)  # ceil(n / 10): the cut score is where the cumulative count reaches n / 10
    cut = np.sort(values)[places - 1]
    below = values < cut
    tied = values == cut
    places_left = size - int(below.sum())
    churned_in_decile = labels[below].sum() + places_left * labels[tied].mean()
    return float((churned_in_decile / size) / labels.mean())


def _rate_row(labels: np.ndarray) -> dict:
    customers = len(labels)
    churners = int(labels.sum())
    return {
        "customers": customers,
        "churned": churners,
        "churn_rate": churners / customers if customers else None,
    }


def churn_rate_by_status(scores, churned, *, healthy: float, at_risk: float) -> dict[str, dict]:
    values, labels = _arrays(scores, churned)
    masks = {
        "healthy": values >= healthy,
        "neutral": (values < healthy) & (values >= at_risk),
        "at_risk": values < at_risk,
    }
    return {status: _rate_row(labels[masks[status]]) for status in STATUSES}


def calibration(scores, churned) -> list[dict]:
    values, labels = _arrays(scores, churned)
    if np.any((values < 0) | (values > 100)):
        raise ValueError("scores must be from 0 to 100.")
    band = np.minimum((values // BAND_WIDTH).astype(int), BANDS - 1)
    return [
        {"min": index * BAND_WIDTH, "max": (index + 1) * BAND_WIDTH, **_rate_row(labels[band == index])}
        for index in range(BANDS)
    ]


def signal_evaluation(values, churned) -> dict:
    """`values` holds NaN where the observation has no value for the signal."""
    raw = np.asarray(values, dtype=float)
    labels = np.asarray(churned, dtype=bool)
    present = ~np.isnan(raw)
    signal_auc = auc(raw[present], labels[present])
    return {
        "observations": int(present.sum()),
        "auc": signal_auc,
        "higher_is_better": None if signal_auc is None else signal_auc >= 0.5,
    }


def _round4(value: float | None) -> float | None:
    return None if value is None else round_half_up(value, 4)


def _rounded_rates(row: dict) -> dict:
    return {**row, "churn_rate": _round4(row["churn_rate"])}


def backtest_result(
    scores,
    churned,
    *,
    healthy: float,
    at_risk: float,
    signals: Mapping[str, Sequence[float] | np.ndarray] | None = None,
) -> dict:
    """The result fields of a backtest, rounded for the API (ChurnDataError without both classes)."""
    values, labels = _arrays(scores, churned)
    require_churners_and_stayers(labels)
    churners = int(labels.sum())
    evaluated = {}
    for key, signal_values in sorted((signals or {}).items()):
        row = signal_evaluation(signal_values, labels)
        evaluated[key] = {**row, "auc": _round4(row["auc"])}
    return {
        "observations": len(labels),
        "churned": churners,
        "auc": _round4(auc(values, labels)),
        "churn_rate_by_status": {
            status: _rounded_rates(row)
            for status, row in churn_rate_by_status(values, labels, healthy=healthy, at_risk=at_risk).items()
        },
        "lift_bottom_decile": _round4(lift_bottom_decile(values, labels)),
        "calibration": [_rounded_rates(row) for row in calibration(values, labels)],
        "signals": evaluated,
    }
