"""The SIMS metrics equal the reference's on labels that went through the
loader's dtype path (stored float32, used as float64).

The reference function is transcribed here from its description in
ch-sims-v2 ``utils/metricsTop.py`` (``__eval_sims_regression``): everything
happens on the float32 arrays the models and the data loader produce;
bins are ``(lo, hi]`` intervals tested with ``>`` and ``<=``; Acc2_weak keeps
the clips whose clipped truth is ``>= -0.4`` and ``<= 0.4``.
"""

from __future__ import annotations

import numpy as np
import pytest

from simsbench import metrics
from simsbench.datasets import load_mmsa, make_synthetic_mmsa, write_mmsa


def _reference_sims(pred32: np.ndarray, truth32: np.ndarray) -> dict[str, float]:
    p = np.clip(pred32, -1.0, 1.0)
    t = np.clip(truth32, -1.0, 1.0)

    def classes(x, cuts):
        out = x.copy()
        for i in range(len(cuts) - 1):
            out[(x > cuts[i]) & (x <= cuts[i + 1])] = i
        return out

    def acc(cuts, sel=slice(None)):
        return float(np.sum(classes(p[sel], cuts) == classes(t[sel], cuts)) / len(t[sel]))

    weak = np.intersect1d(np.where(t >= -0.4)[0], np.where(t <= 0.4)[0])
    return {
        "acc2": acc([-1.01, 0.0, 1.01]),
        "acc2_weak": acc([-1.01, 0.0, 1.01], weak),
        "acc3": acc([-1.01, -0.1, 0.1, 1.01]),
        "acc5": acc([-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]),
        "n_weak": len(weak),
    }


def _case(rng):
    n = int(rng.integers(5, 60))
    # CH-SIMS / v2 labels: averages of annotators on a 0.1/0.2 grid, incl. +-0.4.
    grid = np.round(np.arange(-1.0, 1.01, 0.1), 1)
    truth32 = rng.choice(grid, size=n).astype(np.float32)
    pred32 = rng.uniform(-1.3, 1.3, size=n).astype(np.float32)
    hit = rng.random(n) < 0.3  # some predictions exactly on a boundary
    pred32[hit] = rng.choice(grid, size=int(hit.sum())).astype(np.float32)
    return pred32, truth32


def test_acc2_weak_equals_the_reference_on_float32_labels_in_200_cases():
    rng = np.random.default_rng(0)
    kept_edge = 0
    for _ in range(200):
        pred32, truth32 = _case(rng)
        ref = _reference_sims(pred32, truth32)
        truth64 = truth32.astype(np.float64)  # the loader's dtype path
        pred64 = pred32.astype(np.float64)    # DeepRegressor.predict's
        if ref["n_weak"] == 0:
            with pytest.warns(RuntimeWarning):
                assert np.isnan(metrics.acc2_weak(truth64, pred64))
            continue
        assert metrics.acc2_weak(truth64, pred64) == ref["acc2_weak"]
        assert metrics.acc2_weak(truth32, pred32) == ref["acc2_weak"]
        kept_edge += int(np.any(np.abs(truth32) == np.float32(0.4)))
    assert kept_edge > 100  # the +-0.4 clips were really exercised


@pytest.mark.parametrize("name", ["acc2", "acc3", "acc5"])
def test_binned_accuracies_equal_the_reference_on_float32_labels(name):
    rng = np.random.default_rng(1)
    for _ in range(200):
        pred32, truth32 = _case(rng)
        ref = _reference_sims(pred32, truth32)
        got = getattr(metrics, name)(truth32.astype(np.float64), pred32.astype(np.float64))
        assert got == ref[name]


def test_every_sims_metric_on_labels_through_the_loader(tmp_path):
    # Labels stored float32 in an MMSA pickle, read back by load_mmsa.
    sup, _ = make_synthetic_mmsa(n_samples=(20, 10, 40), seq_lens=(5, 9, 7),
                                 feature_dims=(12, 4, 6), random_state=3)
    rng = np.random.default_rng(2)
    grid = np.array([-0.4, 0.4, -0.2, 0.2, 0.0, 0.8, -1.0], dtype=np.float32)
    sup["test"]["regression_labels"] = rng.choice(grid, size=40).astype(np.float32)
    ds = load_mmsa(write_mmsa(sup, tmp_path / "s.pkl"))
    y = ds.y("test")
    assert y.dtype == np.float64  # widened by the loader
    pred32 = rng.uniform(-1, 1, size=40).astype(np.float32)
    ref = _reference_sims(pred32, y.astype(np.float32))
    assert ref["n_weak"] == int(np.sum(np.abs(sup["test"]["regression_labels"]) <= 0.4 + 1e-6))
    scores = metrics.score_all(y, pred32.astype(np.float64), metrics.SIMSV2_METRICS)
    for name in ("acc2", "acc2_weak", "acc3", "acc5"):
        assert scores[name] == ref[name], name
    t, p = np.clip(y.astype(np.float32), -1, 1), np.clip(pred32, -1, 1)
    assert scores["mae"] == pytest.approx(float(np.mean(np.abs(p - t))), abs=1e-6)
    assert scores["corr"] == pytest.approx(float(np.corrcoef(p, t)[0, 1]), abs=1e-6)
