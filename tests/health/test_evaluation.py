"""AUC, lift, churn by status, calibration and per-signal direction on hand-made sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from health.evaluation import (
    ChurnDataError,
    auc,
    backtest_result,
    calibration,
    churn_rate_by_status,
    lift_bottom_decile,
    signal_evaluation,
)


def test_auc_of_two_churners_and_two_stayers_counts_the_pairs_ranked_right():
    # Pairs (churner, stayer): (10, 20) yes, (10, 40) yes, (30, 20) no, (30, 40) yes -> 3 of 4.
    assert auc([10, 30, 20, 40], [True, True, False, False]) == 0.75


def test_auc_counts_a_tied_pair_half():
    # (10, 20) 1, (10, 30) 1, (20, 20) 0.5, (20, 30) 1 -> 3.5 of 4.
    assert auc([10, 20, 20, 30], [True, True, False, False]) == 0.875


def test_auc_of_all_tied_scores_is_a_coin():
    assert auc([50] * 6, [True, False, True, False, False, False]) == 0.5


def test_auc_is_one_when_every_churner_scores_below_every_stayer():
    assert auc([1, 2, 3, 80, 90], [True, True, True, False, False]) == 1.0


def test_auc_is_zero_when_the_ranking_is_backwards():
    assert auc([80, 90, 1, 2, 3], [True, True, False, False, False]) == 0.0


def test_auc_is_none_when_one_class_is_empty():
    assert auc([10, 20, 30], [False, False, False]) is None
    assert auc([10, 20, 30], [True, True, True]) is None
    assert auc([], []) is None


def test_auc_agrees_with_scikit_learn_on_random_scores_with_ties():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 20, size=500).astype(float)  # many ties
    churned = rng.random(500) < 0.2
    # roc_auc_score treats a higher value as the positive class: negate, since a lower score is riskier.
    assert auc(scores, churned) == pytest.approx(roc_auc_score(churned, -scores), abs=1e-12)


def test_auc_refuses_missing_scores():
    with pytest.raises(ValueError, match="finite"):
        auc([10, math.nan], [True, False])


def test_lift_is_the_bottom_tenth_churn_rate_over_the_overall_rate():
    scores = list(range(1, 21))
    churned = [score in (1, 2, 15, 16) for score in scores]
    # Bottom 2 of 20 both churned (rate 1.0); overall 4 / 20 = 0.2.
    assert lift_bottom_decile(scores, churned) == pytest.approx(1.0 / 0.2)


def test_lift_shares_the_places_at_the_cut_among_the_tied_scores():
    scores = [5, 5, 5, 5, 6, 7, 8, 9, 10, 11]
    churned = [True, False, False, False, False, False, False, False, False, True]
    # One place (10 / 10) for four tied at 5, one of whom churned: 0.25 churners in the decile.
    # Overall 2 / 10 = 0.2, so the lift is 0.25 / 0.2.
    assert lift_bottom_decile(scores, churned) == pytest.approx(0.25 / 0.2)


def test_lift_does_not_depend_on_the_order_of_tied_scores():
    scores = [5, 5, 5, 5, 6, 7, 8, 9, 10, 11]
    churned = [False, False, False, True, False, False, False, False, False, True]
    assert lift_bottom_decile(scores, churned) == pytest.approx(0.25 / 0.2)


def test_lift_of_all_tied_scores_is_one():
    assert lift_bottom_decile([50] * 7, [True, False, False, True, False, False, False]) == pytest.approx(1.0)


def test_lift_counts_a_fractional_decile_when_n_is_not_a_multiple_of_ten():
    scores = list(range(1, 16))
    churned = [score in (1, 3) for score in scores]
    # The decile is 1.5 observations: score 1 (churned) and half of score 2 (stayed): rate 1 / 1.5.
    # Overall 2 / 15.
    assert lift_bottom_decile(scores, churned) == pytest.approx((1 / 1.5) / (2 / 15))


def test_lift_is_none_without_churn_or_observations():
    assert lift_bottom_decile([1, 2, 3], [False, False, False]) is None
    assert lift_bottom_decile([], []) is None


def test_churn_rate_by_status_uses_the_models_threshold_rule():
    scores = [39.99, 40, 69.99, 70, 100]
    churned = [True, True, False, False, True]
    assert churn_rate_by_status(scores, churned, healthy=70, at_risk=40) == {
        "healthy": {"customers": 2, "churned": 1, "churn_rate": 0.5},
        "neutral": {"customers": 2, "churned": 1, "churn_rate": 0.5},
        "at_risk": {"customers": 1, "churned": 1, "churn_rate": 1.0},
    }


def test_churn_rate_of_an_empty_status_is_null():
    rates = churn_rate_by_status([80, 90], [True, False], healthy=70, at_risk=40)
    assert rates["at_risk"] == {"customers": 0, "churned": 0, "churn_rate": None}


def test_calibration_has_ten_bands_and_the_last_one_includes_100():
    bands = calibration([0, 9.99, 10, 95, 100], [True, False, False, True, False])
    assert [(band["min"], band["max"]) for band in bands] == [(10 * i, 10 * i + 10) for i in range(10)]
    assert bands[0] == {"min": 0, "max": 10, "customers": 2, "churned": 1, "churn_rate": 0.5}
    assert bands[1] == {"min": 10, "max": 20, "customers": 1, "churned": 0, "churn_rate": 0.0}
    assert bands[9] == {"min": 90, "max": 100, "customers": 2, "churned": 1, "churn_rate": 0.5}
    assert all(band["customers"] == 0 and band["churn_rate"] is None for band in bands[2:9])


def test_calibration_refuses_a_score_outside_0_to_100():
    with pytest.raises(ValueError, match="0 to 100"):
        calibration([101], [True])


def test_signal_whose_higher_values_go_with_less_churn_is_higher_is_better():
    # The missing value is left out: churner 1 vs stayers 2 and 4 -> AUC 1.0.
    assert signal_evaluation([1, 2, math.nan, 4], [True, False, True, False]) == {
        "observations": 3,
        "auc": 1.0,
        "higher_is_better": True,
    }


def test_signal_whose_higher_values_go_with_more_churn_is_not_higher_is_better():
    assert signal_evaluation([9, 1, 2], [True, False, False]) == {
        "observations": 3,
        "auc": 0.0,
        "higher_is_better": False,
    }


def test_signal_without_both_classes_has_no_direction():
    assert signal_evaluation([1, 2, math.nan], [False, False, True]) == {
        "observations": 2,
        "auc": None,
        "higher_is_better": None,
    }


def test_backtest_result_rounds_to_4_decimals_and_lists_signals_in_key_order():
    scores = [10, 30, 20, 40, 55, 75]
    churned = [True, True, False, False, False, True]
    result = backtest_result(
        scores,
        churned,
        healthy=70,
        at_risk=40,
        signals={"usage.z": [1, 1, 2, 2, 3, 3], "usage.a": [5, 0, 5, 0, 5, 0]},
    )
    # Pairs ranked right: churner 10 beats 3 stayers, 30 beats 2 (40, 55), 75 beats none -> 5 / 9.
    assert result["auc"] == 0.5556
    assert (result["observations"], result["churned"]) == (6, 3)
    assert list(result["signals"]) == ["usage.a", "usage.z"]
    assert result["churn_rate_by_status"]["at_risk"] == {"customers": 3, "churned": 2, "churn_rate": 0.6667}
    assert result["churn_rate_by_status"]["healthy"] == {"customers": 1, "churned": 1, "churn_rate": 1.0}
    # The decile is 0.6 of the lowest score (10, churned): rate 1.0 over 0.5.
    assert result["lift_bottom_decile"] == 2.0
    assert result["calibration"][3] == {"min": 30, "max": 40, "customers": 1, "churned": 1, "churn_rate": 1.0}


def test_backtest_without_churn_fails_with_a_clear_error():
    with pytest.raises(ChurnDataError) as raised:
        backtest_result([10, 20], [False, False], healthy=70, at_risk=40)
    assert raised.value.code == "no_churn"
    assert "No observed customer churned" in raised.value.message


def test_backtest_where_everyone_churned_fails_with_a_clear_error():
    with pytest.raises(ChurnDataError) as raised:
        backtest_result([10, 20], [True, True], healthy=70, at_risk=40)
    assert raised.value.code == "no_stayers"
