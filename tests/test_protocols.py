"""Protocols: which data each one fits and scores on, and why it skips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from simsbench.datasets import MultimodalDataset
from simsbench.estimators import PooledSVR
from simsbench.protocols import (
    PROTOCOLS,
    AVMCAblation,
    Multimodal,
    ProtocolError,
    TaskCombination,
    UnimodalMLabel,
    UnimodalOwnLabel,
    get_protocol,
)


class _Recorder(RegressorMixin, BaseEstimator):
    """Predicts the training mean; remembers what it was fitted on."""

    def __init__(self, modalities=("text", "audio", "vision"), tasks=("T", "A", "V")):
        self.modalities = modalities
        self.tasks = tasks

    def fit(self, X, y, X_valid=None, y_valid=None):
        self.keys_ = sorted(X)
        self.y_shape_ = np.shape(y)
        self.n_nan_rows_ = int(np.isnan(np.asarray(y, float).reshape(len(y), -1)).all(1).sum())
        self.had_valid_ = X_valid is not None
        y = np.asarray(y, float)
        col = y if y.ndim == 1 else y[:, 0]
        self.mean_ = float(np.nanmean(col))
        return self

    def predict(self, X):
        n = len(next(v for k, v in X.items() if not k.endswith("_lengths")))
        return np.full(n, self.mean_) + np.linspace(-1e-3, 1e-3, n)


class _MultiTask(_Recorder):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class _Semi(_MultiTask):
    _semi_supervised = True


class _Mixup(_MultiTask):
    def __init__(self, modalities=("text", "audio", "vision"), tasks=("T", "A", "V"),
                 mixup_audio=True, mixup_vision=True):
        super().__init__(modalities, tasks)
        self.mixup_audio = mixup_audio
        self.mixup_vision = mixup_vision


class _NeedsCheckpoint(_Recorder):
    def check_runnable(self, dataset):
        return False, "needs a local BERT checkpoint (pretrained=PATH)"


def _m_only(ds: MultimodalDataset) -> MultimodalDataset:
    """The same data with the unimodal labels removed (like a MOSI file)."""
    splits = {k: dataclasses.replace(sp, labels={"M": sp.labels["M"]} if sp.labels else {})
              for k, sp in ds.splits.items()}
    return dataclasses.replace(ds, splits=splits, fingerprint="m-only", name="m_only")


def test_registry_names():
    assert set(PROTOCOLS) >= {"multimodal", "unimodal_own_label", "unimodal_m_label",
                              "task_combination", "avmc_ablation"}
    assert get_protocol("unimodal_own_label", modalities="audio") == UnimodalOwnLabel("audio")
    with pytest.raises(ProtocolError, match="unknown protocol 'nope'"):
        get_protocol("nope")


def test_multimodal_single_and_multi_task_targets(tiny):
    proto = Multimodal()
    single = proto.fit_data(_Recorder(), tiny)
    assert single.y_train.shape == (tiny["train"].n_samples,)
    assert set(single.X_train) >= {"text", "audio", "vision"}
    multi = proto.fit_data(_MultiTask(), tiny)
    assert multi.y_train.shape == (tiny["train"].n_samples, 4)
    np.testing.assert_array_equal(multi.y_train[:, 1], tiny.y("train", "T"))
    np.testing.assert_array_equal(multi.y_test, tiny.y("test", "M"))


def test_multimodal_skips_multitask_without_unimodal_labels(tiny):
    skip, reason = Multimodal().skip(_MultiTask(), _m_only(tiny))
    assert skip and "T, A, V" in reason and "m_only" in reason
    assert Multimodal().skip(_Recorder(), _m_only(tiny)) == (False, "")


@pytest.mark.parametrize("modality, label", [("text", "T"), ("audio", "A"), ("vision", "V")])
def test_unimodal_own_label(tiny, modality, label):
    proto = UnimodalOwnLabel(modality)
    est = proto.configure(_MultiTask())
    assert est.modalities == (modality,)
    data = proto.fit_data(est, tiny)
    assert {k for k in data.X_train if not k.endswith("_lengths")} <= {modality, "text_bert"}
    assert modality in data.X_train
    # One label column even for a multi-task model: its M head learns this label.
    np.testing.assert_array_equal(data.y_train, tiny.y("train", label))
    np.testing.assert_array_equal(data.y_test, tiny.y("test", label))
    skip, reason = proto.skip(_Recorder(), _m_only(tiny))
    assert skip and f"label(s) {label}" in reason


def test_unimodal_m_label_runs_without_unimodal_labels(tiny):
    proto = UnimodalMLabel("vision")
    assert proto.skip(_Recorder(), _m_only(tiny)) == (False, "")
    data = proto.fit_data(_Recorder(), tiny)
    np.testing.assert_array_equal(data.y_train, tiny.y("train", "M"))
    with pytest.raises(ProtocolError, match="exactly one modality"):
        UnimodalMLabel(("text", "audio"))


def test_skip_when_estimator_lacks_modalities_parameter(tiny):
    class NoModalities(RegressorMixin, BaseEstimator):
        def fit(self, X, y):
            return self

    skip, reason = UnimodalOwnLabel("text").skip(NoModalities(), tiny)
    assert skip and "no parameter 'modalities'" in reason


def test_task_combination(tiny):
    proto = TaskCombination(("M", "A", "V"))
    assert proto.params == {"labels": ["M", "A", "V"]}
    est = proto.configure(_MultiTask())
    assert est.tasks == ("A", "V")
    assert TaskCombination(("M",)).configure(_MultiTask()).tasks == ()
    skip, reason = proto.skip(_Recorder(), tiny)
    assert skip and "not a multi-task estimator" in reason
    with pytest.raises(ProtocolError, match="start with 'M'"):
        TaskCombination(("T", "A"))


def test_avmc_ablation_variants(tiny):
    est = AVMCAblation("no_mixup_av_unimodal").configure(_Mixup())
    assert (est.mixup_audio, est.mixup_vision, est.tasks) == (False, False, ())
    est = AVMCAblation("no_mixup_v").configure(_Mixup())
    assert (est.mixup_audio, est.mixup_vision, est.tasks) == (True, False, ("T", "A", "V"))
    skip, reason = AVMCAblation("full").skip(_MultiTask(), tiny)
    assert skip and "mixup" in reason
    with pytest.raises(ProtocolError, match="unknown avmc_ablation variant"):
        AVMCAblation("no_mixup_t")


def test_semi_supervised_estimator_gets_unlabelled_rows(tiny_v2):
    data = Multimodal().fit_data(_Semi(), tiny_v2)
    n_tr, n_u = tiny_v2["train"].n_samples, tiny_v2["unlabelled"].n_samples
    assert n_u > 0
    assert data.y_train.shape == (n_tr + n_u, 4)
    assert np.isnan(data.y_train[n_tr:]).all() and not np.isnan(data.y_train[:n_tr]).any()
    assert len(data.X_train) == n_tr + n_u
    # A supervised estimator never sees them.
    assert Multimodal().fit_data(_MultiTask(), tiny_v2).y_train.shape == (n_tr, 4)


def test_estimator_can_refuse_to_run(tiny):
    skip, reason = Multimodal().skip(_NeedsCheckpoint(), tiny)
    assert skip and "BERT checkpoint" in reason


def test_evaluate_uses_validation_split_and_scores_test(tiny):
    est = _Recorder()
    info = Multimodal().evaluate(est, tiny, ("acc2", "mae", "corr"))
    assert est.had_valid_
    assert set(info["metrics"]) == {"acc2", "mae", "corr"}
    mean = tiny.y("train", "M").mean()
    expected_mae = np.mean(np.abs(np.clip(tiny.y("test", "M"), -1, 1) - mean))
    assert info["metrics"]["mae"] == pytest.approx(expected_mae, abs=2e-3)
    assert info["n_test"] == tiny["test"].n_samples


def test_evaluate_classical_estimator_without_valid(tiny):
    info = UnimodalOwnLabel("text").evaluate(PooledSVR(), tiny, ("acc2", "mae"))
    assert 0.0 <= info["metrics"]["acc2"] <= 1.0
    assert info["fit_time"] >= 0


def test_protocols_are_frozen_dataclasses_built_from_task_keys():
    keys = {"modalities": ("text", "audio", "vision"), "labels": ("M", "V", "T"),
            "variant": None, "seeds": (1,)}
    proto = PROTOCOLS["task_combination"].from_task(keys)
    assert proto == TaskCombination(("M", "T", "V")) and proto.tasks == ("T", "V")
    assert proto.label == "M, T, V"
    assert hash(proto) == hash(TaskCombination(["M", "V", "T"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        proto.labels = ("M",)
    assert PROTOCOLS["avmc_ablation"].from_task(keys) == AVMCAblation("full")
    assert AVMCAblation("no_mixup_av_unimodal").label == "w/o Mixup-AV & Unimodal tasks"
    assert PROTOCOLS["unimodal_own_label"].from_task(
        {"modalities": ["audio"], "labels": ["A"]}).params == {"modality": "audio"}
    with pytest.raises(ProtocolError, match="uses label 'A'"):
        UnimodalOwnLabel("audio", labels=("M",))
