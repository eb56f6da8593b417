"""AV-MC and AV-MC (Semi): parameter counts, learning, mixup switches and the
semi-supervised epoch."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # deep tests skip cleanly without torch

import numpy as np
import torch
from sklearn.base import clone

from simsbench.datasets import LABELS
from simsbench.estimators import AVMC, AVMCSemi
from simsbench.estimators._deep import count_parameters

V2_SHAPES = dict(feature_dims=(768, 25, 177), seq_lens=(50, 925, 232))
FAST = dict(n_threads=1, random_state=0)


# -- parameter counts (the reference's: tests/test_reference_avmc.py) ----------

def test_avmc_paper_encoder_parameter_count():
    # the paper's BiLSTM encoder (encoder="lstm") with the V1 widths
    module = AVMC(encoder="lstm").build_module(**V2_SHAPES)
    assert count_parameters(module) == 91_188
    assert count_parameters(AVMC().build_module(**V2_SHAPES)) == 66_440


def test_avmc_semi_without_unused_heads_parameter_count():
    module = AVMCSemi(reconstruction_heads=False).build_module(**V2_SHAPES)
    assert count_parameters(module) == 188_118 - 29_290
    assert not any(n.startswith("rec_") for n, _ in module.named_parameters())


def test_avsubnet_output_and_length_awareness():
    module = AVMCSemi(hidden_dims=(4, 3, 3)).build_module((6, 5, 7), (4, 9, 8))
    module.eval()
    x = torch.randn(2, 9, 5)
    lengths = torch.tensor([5, 9])
    out = module.audio_encoder(x, lengths)
    assert out.shape == (2, 12)  # 4 h
    # frames after the real length do not change the encoding
    x2 = x.clone()
    x2[0, 5:] = 100.0
    torch.testing.assert_close(module.audio_encoder(x2, lengths), out)


# -- learning on signal-bearing data ------------------------------------------

def _mae_corr(est, ds):
    p = est.predict(ds.X("test"))
    y = ds.y("test")
    return np.abs(p - y).mean(), np.corrcoef(p, y)[0, 1]


@pytest.fixture(scope="module")
def fitted_avmc(small_v2):
    est = AVMC(max_epochs=12, **FAST)
    return est.fit(small_v2.X("train"), small_v2.y("train", LABELS),
                   X_valid=small_v2.X("valid"), y_valid=small_v2.y("valid", LABELS))


def test_avmc_beats_mean_predictor(fitted_avmc, small_v2):
    mae, corr = _mae_corr(fitted_avmc, small_v2)
    baseline = np.abs(small_v2.y("test") - small_v2.y("train").mean()).mean()
    assert mae < baseline
    assert corr > 0.3
    heads = fitted_avmc.predict_all(small_v2.X("test"))
    assert heads.shape == (small_v2["test"].n_samples, 4) and np.isfinite(heads).all()
    assert np.abs(heads[:, 0]).max() < 1.0  # M squashed to (-1, 1)


def test_avmc_semi_uses_unlabelled_and_is_as_good_as_supervised(fitted_avmc, small_v2):
    X, y = small_v2.X_semi(), small_v2.y_semi(LABELS)
    assert np.isnan(y).all(axis=1).sum() == small_v2["unlabelled"].n_samples
    est = AVMCSemi(max_epochs=12, **FAST).fit(
        X, y, X_valid=small_v2.X("valid"), y_valid=small_v2.y("valid", LABELS))
    mae, corr = _mae_corr(est, small_v2)
    baseline = np.abs(small_v2.y("test") - small_v2.y("train").mean()).mean()
    assert mae < baseline
    assert corr > 0.3
    mae_sup, _ = _mae_corr(fitted_avmc, small_v2)
    # Within reach of the supervised model: the reference V1_Semi form (M in
    # (-3, 3), no backward on unlabelled batches) gives up a few points on
    # this small data set, where the unlabelled clips add no information.
    assert mae <= mae_sup * 1.15, (mae, mae_sup)
    reps = est.get_representations(small_v2.X("test"))
    assert reps["audio"].shape[1] == 4 * est.hidden_dims[1]


# -- the training steps --------------------------------------------------------

@pytest.mark.parametrize("cls", [AVMC, AVMCSemi])
def test_mixup_switches_change_training(cls, tiny_v2):
    ds = tiny_v2
    X, y = (ds.X_semi(), ds.y_semi(LABELS)) if cls is AVMCSemi else (ds.X("train"),
                                                                    ds.y("train", LABELS))
    base = cls(**{**cls._tiny_params, "max_epochs": 2}, random_state=0)
    for p in ("mixup_audio", "mixup_vision", "tasks"):
        assert p in base.get_params()
    preds = {}
    for name, params in {
        "full": {},
        "no_a": {"mixup_audio": False},
        "no_v": {"mixup_vision": False},
        "no_av": {"mixup_audio": False, "mixup_vision": False},
        "no_av_tasks": {"mixup_audio": False, "mixup_vision": False, "tasks": ()},
    }.items():
        est = clone(base).set_params(**params).fit(
            X, y, X_valid=ds.X("valid"), y_valid=ds.y("valid", LABELS))
        preds[name] = est.predict(ds.X("test"))
    names = list(preds)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.allclose(preds[a], preds[b]), (a, b)


@pytest.mark.parametrize("params", [{"encoder": "lstm"}, {"mixup_level": "representation"},
                                    {"encoder": "lstm", "mixup_level": "input"}])
def test_avmc_encoder_and_mixup_level_variants(params, tiny_v2):
    ds = tiny_v2
    est = AVMC(**AVMC._tiny_params, random_state=0).set_params(**params)
    est.fit(ds.X("train"), ds.y("train", LABELS), X_valid=ds.X("valid"),
            y_valid=ds.y("valid", LABELS))
    p = est.predict(ds.X("test"))
    assert p.shape == (ds["test"].n_samples,) and np.isfinite(p).all()


def test_semi_consistency_backpropagates_on_unlabelled_batch(tiny_v2):
    # the corrected behaviour; the reference's is in test_reference_avmc.py
    ds = tiny_v2
    est = AVMCSemi(**{**AVMCSemi._tiny_params, "max_epochs": 1}, random_state=0,
                   unlabelled_batches="backward")
    est.fit(ds.X_semi(), ds.y_semi(LABELS), X_valid=ds.X("valid"),
            y_valid=ds.y("valid", LABELS))
    net = est.net_
    X_u = est._prepare_inputs(ds.X("unlabelled"))
    X_u = {k: torch.as_tensor(np.asarray(v)) for k, v in X_u.items()}
    y_u = torch.full((ds["unlabelled"].n_samples, 4), float("nan"))
    net.optimizer_.zero_grad(set_to_none=True)
    net._semi_pass = True
    step = net.train_step_single((X_u, y_u))
    net._semi_pass = False
    assert torch.isfinite(step["loss"]) and step["loss"].item() > 0
    for m in ("audio", "vision"):
        grads = [p.grad for p in getattr(net.module_, f"post_{m}").parameters()]
        assert all(g is not None for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
    # the supervised-only text head gets no gradient from unlabelled rows
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in net.module_.post_text.parameters())


def test_semi_epoch_has_two_passes(tiny_v2):
    ds = tiny_v2
    est = AVMCSemi(**{**AVMCSemi._tiny_params, "max_epochs": 1}, random_state=0)
    X, y = ds.X_semi(), ds.y_semi(LABELS)
    est.fit(X, y, X_valid=ds.X("valid"), y_valid=ds.y("valid", LABELS))
    n_all, n_lab = len(y), int((~np.isnan(y).all(axis=1)).sum())
    sizes = [b["train_batch_size"] for b in est.net_.history[-1, "batches"]
             if "train_batch_size" in b]
    assert sum(sizes) == n_all + n_lab


@pytest.mark.parametrize("cls, params", [
    (AVMC, {"encoder": "gru"}),
    (AVMC, {"mixup_level": "hidden"}),
    (AVMC, {"hidden_dims": (8, 0, 4)}),
    (AVMCSemi, {"post_dims": (8, 8)}),
    (AVMCSemi, {"dropouts": (0.1, 1.5)}),
    (AVMCSemi, {"output_range": 0.0}),
    (AVMCSemi, {"mixup_alpha": -1.0}),
    (AVMCSemi, {"unlabelled_batches": "drop"}),
    (AVMCSemi, {"reconstruction_heads": "yes"}),
    (AVMC, {"learning_rate_audio": 0.0}),
])
def test_invalid_hyperparameters_raise(cls, params, tiny_v2):
    est = cls(**cls._tiny_params).set_params(**params)
    key = next(iter(params))
    with pytest.raises(ValueError, match=key):
        est.fit(tiny_v2.X("train"), tiny_v2.y("train", LABELS))
