"""Fit a health model to a workspace's own churn: weights, thresholds and a churn probability.

Input: one row per observation (a customer at an observation date) with the 0-100 scores of the
signals being fitted (NaN where the customer had no value for a signal) and whether it churned
within the horizon. Pure: no queries; the fit job gathers the rows and stores the result.

How it fits (scikit-learn, fixed random_state, so the same rows always give the same fit):

- Missing signals. The score renormalises: a missing signal's weight is left out, which is the
  same as giving the signal the observation's composite of its present signals (then
  sum(w * s) / sum(w) over all signals equals the renormalised score). So a missing score is
  imputed with that composite under the weights being fitted: start from the current model's
  weights, fit, re-impute with the proposed weights, IMPUTATION_ROUNDS times (once when nothing
  is missing). A signal absent from many observations takes some credit for the composite on
  those rows; each signal's `coverage` is reported so a reader can see it. An observation with
  no fitted signal has no score and is left out, as the score leaves it unscored.
- The regression: L2-regularised LogisticRegression (C=1.0) of churn on the standardised scores,
  coefficients turned back into per-score-point units. A negative coefficient means a higher
  score goes with less churn, as a score should.
- Proposed weights: each signal's coefficient magnitude, normalised to sum to WEIGHT_TOTAL (the
  scale of the default model, whose category weights add up to 100). A positive coefficient
  ("higher is worse") flips the signal's `higher_is_better` in the proposal; the proposal's
  composite then uses 100 - score for it, which is what flipping a percentile curve gives.
- The churn curve: a second logistic regression (same C, standardised) of churn on the proposed
  composite, refit on its own so intercept and slope are in score points. A slope that is not
  negative means the proposal does not rank churners lower: the fit fails (`no_separation`).
- Thresholds, from the curve and the overall churn rate r of the fitted observations:
  `at_risk` is the score below which the probability exceeds 2r, `healthy` the score above
  which it is below r / 2; both clamped to 0-100 and rounded to 2 decimals. When 2r >= 1 no
  probability exceeds it and `at_risk` is 0. When clamping leaves them equal (both at a bound),
  they are set 0.01 apart inside 0-100, since the model needs at_risk < healthy.
- cv_auc: StratifiedGroupKFold, 5 folds grouped by customer (one customer's dates never sit on
  both sides), the whole fit redone on each training part and the proposed composite's AUC
  measured on the held-out part; the mean of the folds that hold both classes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from health.evaluation import ChurnDataError, auc, require_churners_and_stayers
from health.rounding import round_half_up

RANDOM_STATE = 0
FOLDS = 5
REGULARISATION_C = 1.0
WEIGHT_TOTAL = 100.0
IMPUTATION_ROUNDS = 3
AT_RISK_FACTOR = 2.0
HEALTHY_FACTOR = 0.5


@dataclass(frozen=True)
class Observations:
    keys: tuple[str, ...]
    scores: np.ndarray  # (n, len(keys)) of 0-100 scores, NaN where the signal is missing
    churned: np.ndarray  # (n,) bool: churned within the horizon
    customer_ids: np.ndarray  # (n,) the customer of each row, for the grouped folds


def observations_from_rows(
    rows: Iterable[tuple[str, Mapping[str, float | None], bool]], keys: Sequence[str]
) -> Observations:
    """`rows` are (customer_id, {signal key: score or None}, churned)."""
    customer_ids, scores, churned = [], [], []
    for customer_id, signal_scores, label in rows:
        customer_ids.append(customer_id)
        scores.append([_missing_as_nan(signal_scores.get(key)) for key in keys])
        churned.append(bool(label))
    matrix = np.array(scores, dtype=float).reshape(len(scores), len(keys))
    return Observations(tuple(keys), matrix, np.array(churned, dtype=bool), np.array(customer_ids))


def _missing_as_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class ChurnCurve:
    """P(churn within the horizon | score) = 1 / (1 + exp(-(intercept + slope * score)))."""

    intercept: float
    slope: float

    def logit_at(self, probability: float) -> float:
        """The score at which the curve reaches `probability` (0 < probability < 1)."""
        return (math.log(probability / (1.0 - probability)) - self.intercept) / self.slope


def churn_probability(score: float | None, curve: ChurnCurve | None) -> float | None:
    """The estimate a health object carries: null without a score or an applied fit."""
    if score is None or curve is None:
        return None
    z = curve.intercept + curve.slope * float(score)
    # Written both ways so that exp never overflows.
    probability = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return round_half_up(probability, 3)


@dataclass(frozen=True)
class ModelFit:
    weights: dict[str, float]  # on the WEIGHT_TOTAL scale
    higher_is_better: dict[str, bool]  # the proposal's direction per signal
    flipped: tuple[str, ...]  # keys whose direction the proposal reverses
    coefficients: dict[str, float]  # per score point, on the scores as given
    coverage: dict[str, float]  # share of the fitted observations with the signal present
    thresholds: dict[str, float]  # {"healthy", "at_risk"}
    curve: ChurnCurve
    cv_auc: float | None
    fold_aucs: tuple[float | None, ...]
    observations: int
    churned: int
    customers: int
    overall_churn_rate: float


def composite_scores(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The renormalised weighted mean of each row's present scores (NaN when none is weighed)."""
    present = ~np.isnan(scores)
    weighed = np.where(present, weights, 0.0)
    total = weighed.sum(axis=1)
    weighted_sum = np.where(present, scores, 0.0) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weighted_sum / total, np.nan)


def impute_missing(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each missing score replaced by its row's composite, so the row's composite is unchanged."""
    composite = composite_scores(scores, weights)
    return np.where(np.isnan(scores), composite[:, None], scores)


def _oriented(scores: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    return np.where(flipped, 100.0 - scores, scores)


def _logistic(features: np.ndarray, churned: np.ndarray) -> tuple[np.ndarray, float]:
    """(coefficients per unit of each feature, intercept) of the L2 fit on standardised features."""
    scaler = StandardScaler().fit(features)
    model = LogisticRegression(C=REGULARISATION_C, max_iter=1000, random_state=RANDOM_STATE)
    model.fit(scaler.transform(features), churned)
    coefficients = model.coef_[0] / scaler.scale_
    intercept = float(model.intercept_[0] - coefficients @ scaler.mean_)
    return coefficients, intercept


def _start_weights(keys: Sequence[str], current: Mapping[str, float] | None) -> np.ndarray:
    weights = np.array([max(0.0, float((current or {}).get(key, 0.0))) for key in keys])
    return weights if weights.sum() > 0 else np.ones(len(keys))


@dataclass(frozen=True)
class _Proposal:
    weights: np.ndarray  # normalised to WEIGHT_TOTAL
    flipped: np.ndarray  # bool per key, against the scores as given
    coefficients: np.ndarray  # per score point, against the scores as given

    def composite(self, scores: np.ndarray) -> np.ndarray:
        return composite_scores(_oriented(scores, self.flipped), self.weights)


def _propose(scores: np.ndarray, churned: np.ndarray, start: np.ndarray) -> _Proposal:
    weights = start
    flipped = np.zeros(scores.shape[1], dtype=bool)
    rounds = IMPUTATION_ROUNDS if np.isnan(scores).any() else 1
    coefficients = np.zeros(scores.shape[1])
    for _ in range(rounds):
        oriented_coefficients, _ = _logistic(impute_missing(_oriented(scores, flipped), weights), churned)
        coefficients = np.where(flipped, -oriented_coefficients, oriented_coefficients)
        magnitude = np.abs(coefficients)
        if magnitude.sum() <= 0:
            raise ChurnDataError("no_separation", "No fitted signal separates churners from stayers.")
        weights = WEIGHT_TOTAL * magnitude / magnitude.sum()
        flipped = coefficients > 0  # a higher score goes with more churn
    return _Proposal(weights=weights, flipped=flipped, coefficients=coefficients)


def fit_churn_curve(composite: np.ndarray, churned: np.ndarray) -> ChurnCurve:
    coefficients, intercept = _logistic(composite.reshape(-1, 1), churned)
    slope = float(coefficients[0])
    if not slope < 0:
        raise ChurnDataError(
            "no_separation", "The fitted score does not rank churners below stayers: no curve to propose."
        )
    return ChurnCurve(intercept=intercept, slope=slope)


def _clamped(score: float) -> float:
    return round_half_up(min(100.0, max(0.0, score)), 2)


def thresholds_from_curve(curve: ChurnCurve, overall_rate: float) -> dict[str, float]:
    at_risk_rate = AT_RISK_FACTOR * overall_rate
    at_risk = 0.0 if at_risk_rate >= 1.0 else _clamped(curve.logit_at(at_risk_rate))
    healthy = _clamped(curve.logit_at(HEALTHY_FACTOR * overall_rate))
    if at_risk >= healthy:
        if healthy >= 0.01:
            at_risk = round_half_up(healthy - 0.01, 2)
        else:
            healthy = 0.01
    return {"healthy": healthy, "at_risk": at_risk}


def customer_folds(customer_ids: np.ndarray, churned: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) of the 5 customer-grouped, churn-stratified folds."""
    if len(np.unique(customer_ids)) < FOLDS:
        raise ChurnDataError("too_few_customers", f"A fit needs observations of at least {FOLDS} customers.")
    splitter = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=RANDOM_STATE)
    return list(splitter.split(np.zeros(len(churned)), churned, groups=customer_ids))


def fit_model(
    observations: Observations,
    *,
    current_weights: Mapping[str, float] | None = None,
    current_higher_is_better: Mapping[str, bool] | None = None,
) -> ModelFit:
    """Propose weights, directions, thresholds and the churn curve; raises ChurnDataError."""
    keys = observations.keys
    for index, key in enumerate(keys):
        if np.isnan(observations.scores[:, index]).all():
            raise ChurnDataError("signal_without_data", f"Signal '{key}' has no value in any observation.")
    scored = ~np.isnan(observations.scores).all(axis=1)
    scores = observations.scores[scored]
    churned = observations.churned[scored]
    customer_ids = observations.customer_ids[scored]
    require_churners_and_stayers(churned)
    start = _start_weights(keys, current_weights)
    folds = customer_folds(customer_ids, churned)

    proposal = _propose(scores, churned, start)
    curve = fit_churn_curve(proposal.composite(scores), churned)
    fold_aucs = tuple(_fold_auc(scores, churned, start, train, test) for train, test in folds)
    measured = [value for value in fold_aucs if value is not None]
    overall_rate = float(churned.mean())
    directions = current_higher_is_better or {}
    return ModelFit(
        weights={key: round_half_up(float(w), 4) for key, w in zip(keys, proposal.weights, strict=True)},
        higher_is_better={
            key: bool(directions.get(key, True)) ^ bool(flip)
            for key, flip in zip(keys, proposal.flipped, strict=True)
        },
        flipped=tuple(key for key, flip in zip(keys, proposal.flipped, strict=True) if flip),
        coefficients={key: float(c) for key, c in zip(keys, proposal.coefficients, strict=True)},
        coverage={key: float(np.mean(~np.isnan(scores[:, i]))) for i, key in enumerate(keys)},
        thresholds=thresholds_from_curve(curve, overall_rate),
        curve=curve,
        cv_auc=float(np.mean(measured)) if measured else None,
        fold_aucs=fold_aucs,
        observations=len(churned),
        churned=int(churned.sum()),
        customers=len(np.unique(customer_ids)),
        overall_churn_rate=overall_rate,
    )


def _fold_auc(
    scores: np.ndarray, churned: np.ndarray, start: np.ndarray, train: np.ndarray, test: np.ndarray
) -> float | None:
    if churned[train].all() or not churned[train].any():
        return None
    try:
        proposal = _propose(scores[train], churned[train], start)
    except ChurnDataError:
        return None
    composite = proposal.composite(scores[test])
    present = ~np.isnan(composite)
    return auc(composite[present], churned[test][present])


def proposed_scores(fit: ModelFit, observations: Observations) -> np.ndarray:
    """The proposal's composite of each row (NaN: unscored), as the applied model would score it."""
    flipped = np.array([key in fit.flipped for key in observations.keys], dtype=bool)
    weights = np.array([fit.weights.get(key, 0.0) for key in observations.keys])
    return composite_scores(_oriented(observations.scores, flipped), weights)


def current_model_auc(observations: Observations, weights: Mapping[str, float]) -> float | None:
    """AUC of the current model's composite on the same rows (rows it cannot score left out).
    Equal to the stored score's AUC when the rows hold every signal the model weighs."""
    vector = np.array([max(0.0, float(weights.get(key, 0.0))) for key in observations.keys])
    composite = composite_scores(observations.scores, vector)
    present = ~np.isnan(composite)
    return auc(composite[present], observations.churned[present])
