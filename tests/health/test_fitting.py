"""The churn fit: grouped folds, flipped directions, thresholds, the churn curve, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from health.evaluation import ChurnDataError, auc
from health.fitting import (
    ChurnCurve,
    Observations,
    churn_probability,
    composite_scores,
    current_model_auc,
    customer_folds,
    fit_model,
    impute_missing,
    observations_from_rows,
    proposed_scores,
    thresholds_from_curve,
)
from tests.health.oracle import compute_score


def synthetic(customers: int = 300, dates: int = 3, seed: int = 1, missing: float = 0.0) -> Observations:
    """`good`: a higher score means less churn; `bad`: a higher score means MORE churn; `noise`."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 100, size=(customers, 3))
    rows = []
    for customer in range(customers):
        for _ in range(dates):
            good, bad, noise = np.clip(base[customer] + rng.normal(0, 5, size=3), 0, 100)
            z = -1.5 - 0.06 * (good - 50) + 0.04 * (bad - 50)
            churned = rng.random() < 1 / (1 + math.exp(-z))
            scores = {"good": good, "bad": bad, "noise": noise}
            if rng.random() < missing:
                scores["noise"] = None
            rows.append((f"cus_{customer}", scores, churned))
    return observations_from_rows(rows, ["bad", "good", "noise"])


def test_grouped_folds_never_put_one_customer_on_both_sides():
    observations = synthetic(customers=60, dates=4)
    folds = customer_folds(observations.customer_ids, observations.churned)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(observations.churned)))  # every row tested exactly once
    for train, test in folds:
        assert set(observations.customer_ids[train]).isdisjoint(observations.customer_ids[test])
        assert observations.churned[test].any()  # stratified: each test part holds churners


def test_a_signal_whose_higher_score_means_more_churn_is_flipped_in_the_proposal():
    fit = fit_model(synthetic(), current_weights={"good": 10, "bad": 10, "noise": 10})
    assert fit.flipped == ("bad",)
    assert fit.higher_is_better == {"bad": False, "good": True, "noise": True}
    assert fit.coefficients["bad"] > 0 > fit.coefficients["good"]
    assert all(weight >= 0 for weight in fit.weights.values())
    assert sum(fit.weights.values()) == pytest.approx(100, abs=0.001)
    assert fit.weights["good"] > fit.weights["bad"] > fit.weights["noise"]


def test_a_flip_reverses_the_current_direction_not_a_fixed_one():
    fit = fit_model(synthetic(), current_higher_is_better={"bad": False})
    assert fit.higher_is_better["bad"] is True


def test_thresholds_are_where_the_curve_crosses_twice_and_half_the_overall_rate():
    curve = ChurnCurve(intercept=0.0, slope=-0.05)
    # p(s) = 1 / (1 + exp(0.05 s)); logit(0.2) = ln(0.25), logit(0.05) = ln(0.05 / 0.95).
    assert thresholds_from_curve(curve, 0.1) == {
        "at_risk": round(math.log(0.25) / -0.05, 2),  # 27.73
        "healthy": round(math.log(0.05 / 0.95) / -0.05, 2),  # 58.89
    }


def test_at_risk_is_zero_when_twice_the_rate_is_not_a_probability():
    assert thresholds_from_curve(ChurnCurve(intercept=0.0, slope=-0.05), 0.6)["at_risk"] == 0.0


def test_thresholds_clamped_to_the_same_bound_stay_apart():
    # Churn likely everywhere: both crossings lie above 100.
    assert thresholds_from_curve(ChurnCurve(intercept=20.0, slope=-0.01), 0.1) == {
        "healthy": 100.0,
        "at_risk": 99.99,
    }
    # Churn unlikely everywhere: both crossings lie below 0.
    assert thresholds_from_curve(ChurnCurve(intercept=-20.0, slope=-0.01), 0.1) == {
        "healthy": 0.01,
        "at_risk": 0.0,
    }


def test_fitted_thresholds_sit_where_the_fitted_probability_crosses_the_rate_multiples():
    fit = fit_model(synthetic())
    rate = fit.overall_churn_rate
    at_risk, healthy = fit.thresholds["at_risk"], fit.thresholds["healthy"]
    assert 0 < at_risk < healthy < 100
    assert (
        churn_probability(at_risk - 0.5, fit.curve) > 2 * rate > churn_probability(at_risk + 0.5, fit.curve)
    )
    assert (
        churn_probability(healthy - 0.5, fit.curve) > rate / 2 > churn_probability(healthy + 0.5, fit.curve)
    )


def test_churn_probability_falls_as_the_score_rises_and_has_3_decimals():
    fit = fit_model(synthetic())
    probabilities = [churn_probability(score / 2, fit.curve) for score in range(201)]
    assert all(a >= b for a, b in zip(probabilities, probabilities[1:], strict=False))
    assert probabilities[0] > probabilities[-1]
    assert all(round(p, 3) == p for p in probabilities)


def test_churn_probability_is_null_without_a_score_or_a_fit():
    assert churn_probability(None, ChurnCurve(intercept=0.0, slope=-0.05)) is None
    assert churn_probability(50.0, None) is None


def test_churn_probability_does_not_overflow_at_extreme_curves():
    assert churn_probability(100.0, ChurnCurve(intercept=0.0, slope=-100.0)) == 0.0
    assert churn_probability(0.0, ChurnCurve(intercept=1000.0, slope=-1.0)) == 1.0


def test_the_same_rows_always_give_the_same_fit():
    assert fit_model(synthetic(missing=0.3)) == fit_model(synthetic(missing=0.3))


def test_cross_validated_auc_of_a_real_signal_is_close_to_the_in_sample_one():
    observations = synthetic()
    fit = fit_model(observations)
    in_sample = auc(proposed_scores(fit, observations), observations.churned)
    assert len(fit.fold_aucs) == 5
    assert fit.cv_auc == pytest.approx(np.mean(fit.fold_aucs))
    assert 0.7 < fit.cv_auc <= in_sample + 0.02


def test_a_missing_score_is_imputed_with_its_rows_composite():
    scores = np.array([[80.0, math.nan, 20.0], [math.nan, math.nan, 50.0]])
    weights = np.array([30.0, 50.0, 10.0])
    filled = impute_missing(scores, weights)
    composite = (30 * 80 + 10 * 20) / 40
    assert filled[0].tolist() == [80.0, composite, 20.0]
    assert filled[1].tolist() == [50.0, 50.0, 50.0]
    # With the imputed value counted, the weighted mean is still the renormalised composite.
    assert filled[0] @ weights / weights.sum() == pytest.approx(composite)


def test_the_composite_renormalises_like_the_score():
    weights = {"usage.breadth_30d": 40.0, "billing.mrr": 20.0, "support.open_cases": 10.0}
    signals = [{"key": "usage.breadth_30d", "score": 50.0}, {"key": "billing.mrr", "score": 80.0}]
    keys = sorted(weights)
    row = np.array([[{s["key"]: s["score"] for s in signals}.get(key, math.nan) for key in keys]])
    composite = composite_scores(row, np.array([weights[key] for key in keys]))[0]
    assert composite == pytest.approx(compute_score(signals, weights).score, abs=0.01)


def test_a_fit_with_missing_scores_reports_each_signals_coverage():
    fit = fit_model(synthetic(missing=0.4))
    assert fit.coverage["good"] == 1.0
    assert 0.5 < fit.coverage["noise"] < 0.7
    assert fit.flipped == ("bad",)


def test_observations_without_any_fitted_score_are_left_out():
    base = synthetic(customers=50)
    rows = [(f"cus_{i}", {"bad": None, "good": None, "noise": None}, True) for i in range(10)]
    extra = observations_from_rows(rows, base.keys)
    combined = Observations(
        base.keys,
        np.vstack([base.scores, extra.scores]),
        np.concatenate([base.churned, extra.churned]),
        np.concatenate([base.customer_ids, extra.customer_ids]),
    )
    assert fit_model(combined).observations == len(base.churned)


def test_current_model_auc_scores_the_rows_with_the_current_weights():
    observations = synthetic()
    good = observations.scores[:, observations.keys.index("good")]
    assert current_model_auc(observations, {"good": 5.0}) == auc(good, observations.churned)


def test_a_fit_without_churn_fails_clearly():
    observations = synthetic(customers=20)
    quiet = Observations(
        observations.keys, observations.scores, np.zeros(60, dtype=bool), observations.customer_ids
    )
    with pytest.raises(ChurnDataError) as raised:
        fit_model(quiet)
    assert raised.value.code == "no_churn"


def test_a_fit_needs_five_customers_for_its_folds():
    observations = synthetic(customers=4, dates=20)
    with pytest.raises(ChurnDataError) as raised:
        fit_model(observations)
    assert raised.value.code == "too_few_customers"


def test_a_signal_without_any_value_fails_the_fit_naming_it():
    rows = [(f"cus_{i}", {"good": float(i), "empty": None}, i % 3 == 0) for i in range(30)]
    with pytest.raises(ChurnDataError) as raised:
        fit_model(observations_from_rows(rows, ["empty", "good"]))
    assert (raised.value.code, raised.value.message) == (
        "signal_without_data",
        "Signal 'empty' has no value in any observation.",
    )
