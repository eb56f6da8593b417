"""LMF, MLMF and MLF-DNN: reference sizes, optimizer groups, the low-rank
fusion's algebra, multi-task behaviour and learning on synthetic data."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # deep tests skip cleanly without torch

import numpy as np
import torch

from simsbench.datasets import LABELS, make_synthetic
from simsbench.estimators import LFDNN, LMF, MLFDNN, MLMF
from simsbench.estimators._deep import count_parameters
from simsbench.estimators.modules._late_fusion import LowRankFusion

SIMS_DIMS, SIMS_LENS = (768, 33, 709), (39, 400, 55)


def _fit(est, ds, labels="M"):
    est.set_params(n_threads=1)  # small models: one thread is fastest
    return est.fit(ds.X("train"), ds.y("train", labels),
                   X_valid=ds.X("valid"), y_valid=ds.y("valid", labels))


def _mae_corr(est, ds):
    y = ds.y("test")
    p = np.clip(est.predict(ds.X("test")), -1, 1)
    return float(np.mean(np.abs(p - y))), float(np.corrcoef(p, y)[0, 1])


# --------------------------------------------------------------------------
# sizes: the reference's trainable-parameter counts (MMSA's models at their CH-SIMS
# configuration, src/MMSA/config/config_regression.json)

@pytest.mark.parametrize("cls, expected", [
    (LMF, 272_381),      # the 5 fusion scalars included
    (MLFDNN, 283_388),
    (MLMF, 1_413_392),
])
def test_reference_parameter_count(cls, expected):
    module = cls().build_module(feature_dims=SIMS_DIMS, seq_lens=SIMS_LENS)
    assert count_parameters(module) == expected


def test_lmf_text_output_is_half_the_text_hidden():
    module = LMF(hidden_dims=(10, 4, 6)).build_module((12, 5, 7), (4, 6, 5))
    assert module.fusion.text_factor.shape == (4, 10 // 2 + 1, 1)
    assert module.fusion.audio_factor.shape == (4, 5, 1)
    assert module.fusion.video_factor.shape == (4, 7, 1)
    assert module.trunk.text_subnet.linear_1.out_features == 5


# --------------------------------------------------------------------------
# the low-rank fusion is tensor fusion with a rank-r weight tensor

def test_low_rank_fusion_equals_tensor_fusion_with_rank_r_weights():
    torch.manual_seed(3)
    dims = {"audio": 3, "vision": 4, "text": 2}
    fusion = LowRankFusion(dims, rank=5)
    with torch.no_grad():
        fusion.fusion_bias.fill_(0.7)
    reps = {m: torch.randn(6, d) for m, d in dims.items()}
    one = torch.ones(6, 1)
    a, v, t = (torch.cat([one, reps[m]], dim=1) for m in ("audio", "vision", "text"))
    # Full weight tensor W = sum_r w_r * (A_r (x) V_r (x) T_r)
    A, V, T = (getattr(fusion, n)[..., 0] for n in
               ("audio_factor", "video_factor", "text_factor"))
    W = torch.einsum("r,ri,rj,rk->ijk", fusion.fusion_weights[0], A, V, T)
    expected = torch.einsum("bi,bj,bk,ijk->b", a, v, t, W) + 0.7
    torch.testing.assert_close(fusion(reps), expected)


def test_low_rank_fusion_over_a_modality_subset():
    torch.manual_seed(0)
    fusion = LowRankFusion({"text": 3}, rank=2)
    h = torch.randn(5, 3)
    h1 = torch.cat([torch.ones(5, 1), h], dim=1)
    expected = (h1 @ fusion.text_factor[..., 0].t()) @ fusion.fusion_weights[0]
    torch.testing.assert_close(fusion({"text": h}), expected + fusion.fusion_bias[0, 0])


# --------------------------------------------------------------------------
# optimizer groups (MMSA src/MMSA/trains/singleTask/LMF.py, trains/multiTask/MLMF.py,
# trains/multiTask/MLF_DNN.py); the reference configuration's frozen fusion weights are
# checked in test_reference_lmf_mfn.py, the corrected (trained) ones here

def _groups(est):
    names = {id(p): n for n, p in est.net_.module_.named_parameters()}
    return [({names[id(p)] for p in g["params"]}, g["lr"], g["weight_decay"])
            for g in est.net_.optimizer_.param_groups]


def _group_of(groups, name):
    hits = [(lr, wd) for params, lr, wd in groups if name in params]
    assert len(hits) == 1, name
    return hits[0]


def _init_module(est):
    """The module ``est`` started from (fit seeds torch with random_state)."""
    torch.manual_seed(est.random_state)
    return est.build_module(feature_dims=(16, 5, 7), seq_lens=(6, 12, 8))


def test_lmf_optimizer_groups_and_trained_fusion_weights(tiny):
    est = _fit(LMF(**LMF._tiny_params, factor_lr=3e-4, learning_rate=2e-3,
                   weight_decay=1e-3, freeze_fusion_weights=False, random_state=0), tiny)
    groups = _groups(est)
    assert _group_of(groups, "fusion.text_factor") == (3e-4, 1e-3)
    assert _group_of(groups, "fusion.audio_factor") == (3e-4, 1e-3)
    assert _group_of(groups, "fusion.fusion_weights") == (2e-3, 1e-3)
    assert _group_of(groups, "fusion.fusion_bias") == (2e-3, 1e-3)
    assert _group_of(groups, "trunk.video_subnet.linear_1.weight") == (2e-3, 1e-3)
    # the reference never updates fusion_weights/fusion_bias; corrected, they train
    init, fitted = _init_module(est).fusion, est.net_.module_.fusion
    assert not torch.equal(init.fusion_weights, fitted.fusion_weights)
    assert not torch.equal(init.fusion_bias, fitted.fusion_bias)


def test_mlmf_optimizer_groups(tiny):
    est = _fit(MLMF(**MLMF._tiny_params, learning_rate=1e-3, factor_lr=5e-4,
                    weight_decay_text=1e-4, weight_decay_audio=0.0,
                    weight_decay_vision=2e-4, weight_decay=5e-3, freeze_fusion_weights=False,
                    random_state=0),
               tiny, LABELS)
    groups = _groups(est)
    assert _group_of(groups, "trunk.text_subnet.rnn.weight_ih_l0") == (1e-3, 1e-4)
    assert _group_of(groups, "trunk.audio_subnet.linear_1.weight") == (1e-3, 0.0)
    assert _group_of(groups, "trunk.video_subnet.norm.weight") == (1e-3, 2e-4)
    assert _group_of(groups, "fusion.video_factor") == (5e-4, 5e-3)
    assert _group_of(groups, "fusion.fusion_weights") == (1e-3, 5e-3)
    assert _group_of(groups, "heads.post_text.layer_1.weight") == (1e-3, 5e-3)
    init = _init_module(est)
    assert not torch.equal(init.fusion.fusion_weights, est.net_.module_.fusion.fusion_weights)


def test_mlfdnn_optimizer_groups(tiny):
    est = _fit(MLFDNN(**MLFDNN._tiny_params, random_state=0), tiny, LABELS)
    groups = _groups(est)
    assert _group_of(groups, "trunk.text_subnet.linear_1.weight") == (2e-3, 1e-4)
    assert _group_of(groups, "trunk.audio_subnet.linear_3.bias") == (2e-3, 1e-3)
    assert _group_of(groups, "trunk.video_subnet.linear_2.weight") == (2e-3, 1e-4)
    assert _group_of(groups, "post_fusion.layer_1.weight") == (2e-3, 0.0)
    assert _group_of(groups, "heads.post_video.layer_3.weight") == (2e-3, 0.0)
    n_params = len(list(est.net_.module_.parameters()))
    assert sum(len(p) for p, _, _ in groups) == n_params


# --------------------------------------------------------------------------
# multi-task behaviour

@pytest.mark.parametrize("cls", [MLFDNN, MLMF])
def test_tasks_switch_unimodal_losses(cls, tiny):
    est = _fit(cls(**cls._tiny_params, tasks=("T",), random_state=0), tiny, LABELS)
    heads, init = est.net_.module_.heads, _init_module(est).heads
    assert not torch.equal(init.post_text.layer_3.weight, heads.post_text.layer_3.weight)
    # no loss on A and V: their heads get no gradient and are never updated
    for name in ("post_audio", "post_video"):
        for p0, p1 in zip(getattr(init, name).parameters(), getattr(heads, name).parameters()):
            assert torch.equal(p0, p1)
    pred = est.predict_all(tiny.X("test"))
    assert pred.shape == (tiny["test"].n_samples, 4) and np.isfinite(pred).all()
    np.testing.assert_array_equal(pred[:, 0], est.predict(tiny.X("test")))


@pytest.mark.parametrize("cls", [MLFDNN, MLMF])
def test_modality_subset_heads_and_representations(cls, tiny):
    mods = ("text", "vision")
    est = cls(**cls._tiny_params, modalities=mods, random_state=0, n_threads=1)
    est.fit(tiny.X("train", mods), tiny.y("train", LABELS),
            X_valid=tiny.X("valid", mods), y_valid=tiny.y("valid", LABELS))
    pred = est.predict_all(tiny.X("test", mods))
    assert np.isnan(pred[:, 2]).all()  # audio head absent
    assert np.isfinite(pred[:, [0, 1, 3]]).all()
    reps = est.get_representations(tiny.X("test", mods))
    assert set(reps) == {"text", "vision"}
    assert reps["vision"].shape == (tiny["test"].n_samples, cls._tiny_params["hidden_dims"][2])


def test_mlf_dnn_multitask_representations_follow_trunk(tiny):
    est = _fit(MLFDNN(**MLFDNN._tiny_params, random_state=0), tiny, LABELS)
    reps = est.get_representations(tiny.X("test"))
    assert {k: v.shape[1] for k, v in reps.items()} == {"audio": 4, "vision": 8, "text": 8}


@pytest.mark.parametrize("pooling", ["padded", "length_aware"])
def test_lmf_pooling_inputs(pooling, tiny):
    est = _fit(LMF(**LMF._tiny_params, pooling=pooling, random_state=0), tiny)
    # padded (the reference): the text LSTM runs over every padded step
    has_lengths = "text_lengths" in est._prepare_inputs(tiny.X("train"))
    assert has_lengths is (pooling == "length_aware")
    assert np.isfinite(est.predict(tiny.X("test"))).all()


# --------------------------------------------------------------------------
# parameter validation

@pytest.mark.parametrize("est, match", [
    (LMF(rank=0), "rank"),
    (LMF(hidden_dims=(1, 4, 8)), "hidden_dims"),
    (LMF(dropouts=(0.2, 0.2, 0.2)), "dropouts"),
    (LMF(factor_lr=0.0), "factor_lr"),
    (LMF(pooling="max"), "pooling"),
    (MLMF(post_dropouts=(0.4, 0.4, 1.0)), "post_dropouts"),
    (MLMF(post_text_dim=0), "post_text_dim"),
    (MLMF(weight_decay_vision=-1.0), "weight_decay_vision"),
    (MLFDNN(text_out=0), "text_out"),
    (MLFDNN(post_dropouts=(0.5, 0.5, 0.5)), "post_dropouts"),
    (MLFDNN(hidden_dims=(8, 4)), "hidden_dims"),
    (MLFDNN(weight_decay=-1e-3), "weight_decay"),
    (MLFDNN(tasks=("T", "X")), "tasks"),
    (MLFDNN(loss_weights=(1.0, 1.0)), "loss_weights"),
])
def test_invalid_hyperparameters(est, match, tiny):
    with pytest.raises(ValueError, match=match):
        _fit(est.set_params(max_epochs=1), tiny, LABELS)


# --------------------------------------------------------------------------
# learning on signal-bearing synthetic data

@pytest.mark.parametrize("cls, labels", [(LMF, "M"), (MLFDNN, LABELS), (MLMF, LABELS)])
def test_beats_the_mean_predictor(cls, labels, small):
    est = _fit(cls(random_state=0, n_threads=1), small, labels)
    mae, corr = _mae_corr(est, small)
    mean_mae = float(np.mean(np.abs(small.y("test") - small.y("train").mean())))
    assert mae < mean_mae
    assert corr > 0.3


# --------------------------------------------------------------------------
# Issue 4: the unimodal labels help MLF-DNN (CH-SIMS Tables 2 and 5)

@pytest.fixture(scope="module")
def scarce():
    """Few labelled clips and wide features: the regime where the unimodal
    labels (each modality's features carry its own label) add information
    that the M label alone does not pin down."""
    return make_synthetic(n_samples=(200, 100, 200), seq_lens=(8, 20, 10),
                          feature_dims=(128, 33, 256), n_latent=8, random_state=0)


@pytest.mark.slow
def test_mlf_dnn_multitask_beats_single_task(scarce):
    seeds = (0, 1, 2)

    def mean_mae(make, labels):
        return np.mean([_mae_corr(_fit(make(s), scarce, labels), scarce)[0] for s in seeds])

    mlf = mean_mae(lambda s: MLFDNN(random_state=s), LABELS)
    lf = mean_mae(lambda s: LFDNN(random_state=s), "M")
    m_only = mean_mae(lambda s: MLFDNN(tasks=(), random_state=s), LABELS)
    assert mlf < lf
    assert mlf < m_only
