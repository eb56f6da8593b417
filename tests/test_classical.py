"""Pooled-feature SVR baselines and the pooling transformer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from simsbench.datasets import make_synthetic
from simsbench.estimators import ModalityPooler, PooledSVR
from simsbench.metrics import corr, mae, scorer


def test_pooler_length_aware_mean():
    X = {
        "audio": np.array([[[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]], dtype=np.float32),
        "audio_lengths": np.array([2]),
    }
    out = ModalityPooler(modalities=("audio",)).fit_transform(X)
    np.testing.assert_allclose(out, [[2.0, 3.0]])
    padded = ModalityPooler(modalities=("audio",), pooling="padded_mean").fit_transform(X)
    np.testing.assert_allclose(padded, [[4 / 3, 2.0]])


def test_pooler_feature_names_and_errors(tiny):
    pool = ModalityPooler(modalities=("audio", "vision")).fit(tiny.X("train"))
    names = pool.get_feature_names_out()
    assert len(names) == 5 + 7 and names[0] == "audio_0" and names[-1] == "vision_6"
    with pytest.raises(ValueError, match="X has no 'vision'"):
        pool.transform(tiny.X("train", ("audio",)))
    with pytest.raises(ValueError, match="The 'pooling' parameter of ModalityPooler must be"):
        ModalityPooler(pooling="max").fit(tiny.X("train"))
    with pytest.raises(TypeError, match="dict of arrays"):
        ModalityPooler().fit(np.zeros((3, 4)))


@pytest.mark.parametrize("mods", [("text", "audio", "vision"), ("text",), ("vision",)])
def test_svr_beats_mean_predictor(small, mods):
    model = PooledSVR(modalities=mods).fit(small.X("train"), small.y("train"))
    pred = model.predict(small.X("test"))
    y = small.y("test")
    baseline = mae(y, np.full_like(y, small.y("train").mean()))
    assert mae(y, pred) < baseline
    assert corr(y, pred) > 0.3


def test_svr_on_sims_default_beats_mean():
    ds = make_synthetic(random_state=0)
    model = PooledSVR().fit(ds.X("train"), ds.y("train"))
    y, pred = ds.y("test"), model.predict(ds.X("test"))
    assert mae(y, pred) < mae(y, np.full_like(y, ds.y("train").mean()))
    assert corr(y, pred) > 0.5


def test_svr_with_sklearn_tools(tiny):
    X, y = tiny.X("train"), tiny.y("train", ("M", "T", "A", "V"))
    scores = cross_val_score(PooledSVR(), X, y, cv=3, scoring=scorer("mae"))
    assert scores.shape == (3,)
    search = GridSearchCV(PooledSVR(), {"C": [0.1, 1.0]}, cv=2).fit(X, y[:, 0])
    assert search.best_params_["C"] in (0.1, 1.0)
    assert clone(PooledSVR(C=3.0)).C == 3.0
