"""Metrics against hand-computed cases, including every documented edge."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score

from simsbench import metrics as M


def test_sims_acc2_zero_is_negative():
    # truth 0 is class "non-positive"; a prediction of 0.01 is positive.
    y_true = [0.0, 0.0, 0.2, -0.2]
    y_pred = [0.0, 0.01, 0.2, 0.0]
    # matches: (0,0) yes, (0,0.01) no, (0.2,0.2) yes, (-0.2,0) yes -> 3/4
    assert M.acc2(y_true, y_pred) == pytest.approx(0.75)


def test_sims_clipping_before_everything():
    y_true = [1.0, -1.0]
    y_pred = [3.0, -2.0]  # clipped to 1, -1: perfect
    assert M.mae(y_true, y_pred) == 0.0
    assert M.acc5(y_true, y_pred) == 1.0


def test_sims_acc3_bins_upper_closed():
    # (-1.01,-0.1] (-0.1,0.1] (0.1,1.01]
    y_true = [-0.1, 0.1, 0.1000001, -0.0999999]
    y_pred = [-1.0, 0.0, 1.0, 0.0]
    # -0.1 -> class 0 (== -1 class 0) ok; 0.1 -> class 1 (0 is 1) ok;
    # 0.1000001 -> class 2 ok; -0.0999999 -> class 1 ok
    assert M.acc3(y_true, y_pred) == 1.0
    assert M.acc3([-0.1], [-0.05]) == 0.0


def test_sims_acc5_on_label_grid():
    grid = np.round(np.arange(-1, 1.01, 0.2), 1)
    expected = [0, 0, 1, 1, 1, 2, 3, 3, 3, 4, 4]
    from simsbench.metrics import _bin

    assert _bin(grid, 5).tolist() == expected
    assert M.acc5([-0.7, 0.7], [-1.0, 0.5]) == 1.0  # edges belong to the lower bin
    assert M.acc5([0.7], [1.0]) == 0.0


def test_sims_f1_weighted_on_two_bins():
    y_true = [-1, -1, 1, 1, 0]  # classes 0,0,1,1,0
    y_pred = [-1, 1, 1, 1, 0]   # classes 0,1,1,1,0
    # class 0: tp=2, fp=0, fn=1 -> p=1, r=2/3, f1=0.8 ; support 3
    # class 1: tp=2, fp=1, fn=0 -> p=2/3, r=1, f1=0.8 ; support 2
    assert M.f1(y_true, y_pred) == pytest.approx(0.8)


def test_mae_and_corr_hand_computed():
    y_true = np.array([0.0, 0.2, 0.4, 0.6])
    y_pred = np.array([0.1, 0.1, 0.5, 0.5])
    assert M.mae(y_true, y_pred) == pytest.approx(0.1)
    expected = np.corrcoef(y_true, y_pred)[0, 1]
    assert M.corr(y_true, y_pred) == pytest.approx(expected)


def test_corr_of_constant_prediction_is_nan_with_warning():
    with pytest.warns(RuntimeWarning, match="constant"):
        value = M.corr([0.2, -0.4, 0.6], [0.1, 0.1, 0.1])
    assert np.isnan(value)
    with pytest.warns(RuntimeWarning):
        res = M.score_all([0.2, -0.4, 0.6], [0.0, 0.0, 0.0])
    assert np.isnan(res["corr"]) and res["mae"] == pytest.approx(0.4)


def test_acc2_weak_includes_plus_minus_point_four():
    y_true = [-0.4, 0.4, 0.6, -0.6, 0.0]
    y_pred = [-0.1, 0.1, -1.0, 1.0, 0.3]
    # kept: -0.4 (pred neg: ok), 0.4 (pos: ok), 0.0 (pred 0.3 pos vs 0 neg: wrong)
    assert M.acc2_weak(y_true, y_pred) == pytest.approx(2 / 3)


def test_r2_on_clipped_values():
    y_true = [1.0, -1.0, 0.0]
    y_pred = [2.0, -5.0, 0.0]  # clipped: perfect
    assert M.r2(y_true, y_pred) == pytest.approx(1.0)


def test_mosi_has0_counts_zero_as_positive_and_non0_drops_it():
    y_true = [0.0, 1.0, -1.0, 0.0]
    y_pred = [0.0, 2.0, 0.5, -0.5]
    # has0: t>=0 -> [T,T,F,T], p>=0 -> [T,T,T,F] -> 2/4
    assert M.has0_acc2(y_true, y_pred) == pytest.approx(0.5)
    # non0: drop truths == 0 -> (1,2) ok, (-1,0.5) wrong -> 1/2
    assert M.non0_acc2(y_true, y_pred) == pytest.approx(0.5)


def test_mosi_round_half_even():
    # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0
    assert M.acc7([0, 2, 2, 0], [0.5, 1.5, 2.5, -0.5]) == 1.0
    assert M.acc7([1], [0.5]) == 0.0
    # Acc-5 clips to [-2, 2] first: 3 -> 2 and 2.6 -> 2
    assert M.mosi_acc5([3.0], [2.6]) == 1.0
    assert M.acc7([3.0], [2.6]) == 1.0  # 2.6 rounds to 3 within [-3, 3]


def test_mosi_mae_corr_unclipped():
    assert M.mosi_mae([3.0], [-3.0]) == pytest.approx(6.0)
    assert M.mae([3.0], [-3.0]) == pytest.approx(2.0)  # SIMS clips


def test_two_d_truth_scores_column_m():
    y = np.array([[0.2, -1, -1, -1], [-0.4, 1, 1, 1]])
    assert M.acc2(y, [0.5, -0.5]) == 1.0


def test_input_validation():
    with pytest.raises(ValueError, match="3 values"):
        M.mae([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="finite"):
        M.mae([0, np.nan], [0, 1])
    with pytest.raises(ValueError, match="unknown metric"):
        M.score_all([0], [0], metrics=("nope",))
    with pytest.raises(ValueError, match="unknown metric"):
        M.scorer("nope")


def test_metrics_are_unrounded():
    y_true = np.array([0.0, 0.2, 0.4])
    y_pred = np.array([0.0123456, 0.2, 0.4])
    assert M.mae(y_true, y_pred) == pytest.approx(0.0123456 / 3, rel=1e-12)


def test_scorer_in_cross_val_score():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    y = np.clip(X[:, 0] * 0.4, -1, 1)
    acc = cross_val_score(LinearRegression(), X, y, cv=3, scoring=M.scorer("acc2"))
    neg_mae = cross_val_score(LinearRegression(), X, y, cv=3, scoring=M.scorer("mae"))
    assert np.all(acc > 0.9)
    assert np.all(neg_mae <= 0)  # "greater is better" convention flips MAE


def test_metric_sets():
    assert M.metrics_for("sims") == ("acc2", "acc3", "acc5", "f1", "mae", "corr")
    assert "acc2_weak" in M.metrics_for("simsv2") and "r2" in M.metrics_for("simsv2")
    assert "has0_acc2" in M.metrics_for("mosi")
