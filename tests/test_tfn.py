"""TFN and MTFN: parameter counts, the chunked tensor-fusion layer against the
explicit outer product, learning on synthetic data, and the multi-task
acceptance checks."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # deep tests skip cleanly without torch

import pickle

import numpy as np
import torch

from simsbench.datasets import LABELS, make_synthetic
from simsbench.estimators import MTFN, TFN
from simsbench.estimators._deep import count_parameters
from simsbench.estimators.modules._fusion import (
    TensorFusion,
    _Workspace,
    dropout_mask,
    naive_tensor_fusion,
    tensor_fusion_linear,
)

SMALL_TFN = dict(hidden_dims=(16, 8, 16), text_out=16, post_fusion_dim=16, n_threads=1)
SMALL_MTFN = dict(SMALL_TFN, post_text_dim=8, post_audio_dim=4, post_vision_dim=8)


# ---------------------------------------------------------------------------
# parameter counts of MMSA src/MMSA/models/singleTask/TFN.py and
# src/MMSA/models/multiTask/MTFN.py with CH-SIMS shapes (built on the meta
# device: shapes only; tests/test_reference_late_fusion.py checks every name)

def test_tfn_parameter_count_matches_reference():
    with torch.device("meta"):
        module = TFN().build_module(feature_dims=(768, 33, 709), seq_lens=(39, 400, 55))
    assert count_parameters(module) == 35_632_077
    assert module.fusion.fusion_dim == 33 * 129 * 257
    assert count_parameters(module.fusion) == 35_009_600


def test_mtfn_parameter_count_matches_reference():
    with torch.device("meta"):
        module = MTFN().build_module(feature_dims=(768, 33, 709), seq_lens=(39, 400, 55))
    assert count_parameters(module) == 140_957_188
    assert module.fusion.fusion_dim == 33 * 257 * 257
    assert count_parameters(module.fusion) == 139_495_552


# ---------------------------------------------------------------------------
# the fusion layer

def _factors(B, sizes, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(B, n, dtype=dtype, generator=g, requires_grad=True) for n in sizes]


@pytest.mark.parametrize("p", [0.0, 0.4])
def test_fusion_gradcheck(p):
    torch.manual_seed(0)
    a, v, t = _factors(3, (3, 4, 2))
    W, b = _factors(5, (24, 1))
    b = b.detach().reshape(5).requires_grad_()
    mask, scale = dropout_mask((3, 3, 8), p)
    assert (mask is None) == (p == 0)

    def f(a, v, t, W, b):
        return tensor_fusion_linear(a, v, t, W, b, mask, scale)

    assert torch.autograd.gradcheck(f, (a, v, t, W, b))
    torch.testing.assert_close(f(a, v, t, W, b), naive_tensor_fusion(a, v, t, W, b, mask, scale))


@pytest.mark.parametrize("present", [("audio", "vision", "text"), ("text",), ("audio", "vision")])
def test_fusion_module_matches_explicit_outer_product(present):
    torch.manual_seed(0)
    sizes = {"audio": 3, "vision": 4, "text": 5}
    layer = TensorFusion(tuple(sizes[m] if m in present else 0
                               for m in ("audio", "vision", "text")), 6, 0.3).double()
    xs = {m: torch.randn(7, sizes[m], dtype=torch.float64, requires_grad=True) for m in present}
    # explicit: [1;a] ⊗ [1;v] ⊗ [1;t], audio-major, over the present modalities
    z = torch.ones(7, 1, dtype=torch.float64)
    for m in ("audio", "vision", "text"):
        if m in present:
            aug = torch.cat([torch.ones(7, 1, dtype=torch.float64), xs[m]], 1)
            z = (z[:, :, None] * aug[:, None, :]).reshape(7, -1)
    assert z.shape[1] == layer.fusion_dim
    layer.eval()
    out = layer(**xs)
    ref = layer.linear(z)
    torch.testing.assert_close(out, ref)
    # gradients of the inputs and the weights, direct-grad path included
    out.square().sum().backward()
    got = [xs[m].grad.clone() for m in present] + [layer.linear.weight.grad.clone()]
    for x in [*xs.values(), layer.linear.weight, layer.linear.bias]:
        x.grad = None
    layer.linear(z).square().sum().backward()
    want = [xs[m].grad for m in present] + [layer.linear.weight.grad]
    for g1, g2 in zip(got, want):
        torch.testing.assert_close(g1, g2)


def test_direct_weight_grad_reuses_buffer_and_accumulates():
    torch.manual_seed(0)
    a, v, t = _factors(4, (3, 2, 5))
    W = torch.randn(6, 30, dtype=torch.float64, requires_grad=True)
    W_ref = W.detach().clone().requires_grad_()
    mask, scale = dropout_mask((4, 3, 10), 0.5)
    ws = _Workspace()
    for _ in range(2):  # accumulates into the existing .grad
        tensor_fusion_linear(a, v, t, W, None, mask, scale, True, ws).square().sum().backward()
    assert ws.grad is W.grad
    naive_tensor_fusion(a, v, t, W_ref, None, mask, scale).square().sum().mul(2).backward()
    torch.testing.assert_close(W.grad, W_ref.grad)
    # after set_to_none the same storage is reused for the next gradient
    ptr = W.grad.data_ptr()
    W.grad = None
    tensor_fusion_linear(a, v, t, W, None, mask, scale, True, ws).square().sum().backward()
    assert W.grad.data_ptr() == ptr


def test_dropout_mask_rate_scale_and_seed():
    torch.manual_seed(3)
    keep, scale = dropout_mask((64, 5, 4000), 0.4)
    assert keep.dtype == torch.uint8 and keep.shape == (64, 5, 4000)
    rate = 1 - keep.double().mean().item()
    assert abs(rate - 0.4) < 0.005
    assert scale == pytest.approx(1 / (1 - round(0.4 * 65536) / 65536), rel=1e-12)
    torch.manual_seed(3)
    again, _ = dropout_mask((64, 5, 4000), 0.4)
    assert torch.equal(keep, again)
    assert dropout_mask((4, 4), 0.0) == (None, 1.0)
    with pytest.raises(ValueError, match="dropout"):
        TensorFusion((2, 2, 2), 3, 1.0)


# ---------------------------------------------------------------------------
# estimators

def _mae_corr(y, p):
    return float(np.abs(p - y).mean()), float(np.corrcoef(p, y)[0, 1])


def test_tfn_beats_mean_predictor(small):
    est = TFN(**SMALL_TFN, learning_rate=2e-3, max_epochs=40, random_state=0)
    est.fit(small.X("train"), small.y("train"), X_valid=small.X("valid"),
            y_valid=small.y("valid"))
    y_tr, y_te = small.y("train"), small.y("test")
    mae, corr = _mae_corr(y_te, est.predict(small.X("test")))
    assert mae < np.abs(y_te - y_tr.mean()).mean()
    assert corr > 0.3
    # the fused output is squashed into (-3, 3)
    out = est.predict(small.X("test"))
    assert np.all(np.abs(out) < 3)


def test_mtfn_beats_mean_predictor_and_heads(small):
    est = MTFN(**SMALL_MTFN, max_epochs=40, random_state=0)
    est.fit(small.X("train"), small.y("train", LABELS), X_valid=small.X("valid"),
            y_valid=small.y("valid", LABELS))
    y_tr, y_te = small.y("train", LABELS), small.y("test", LABELS)
    allp = est.predict_all(small.X("test"))
    assert allp.shape == (len(y_te), 4)
    np.testing.assert_array_equal(allp[:, 0], est.predict(small.X("test")))
    for k in (0, 1, 3):  # M, T and V are trained (A has loss weight 0)
        mae, corr = _mae_corr(y_te[:, k], allp[:, k])
        assert mae < np.abs(y_te[:, k] - y_tr[:, k].mean()).mean(), LABELS[k]
        assert corr > 0.3, LABELS[k]
    reps = est.get_representations(small.X("test"))
    assert {k: v.shape[1] for k, v in reps.items()} == {"text": 16, "audio": 8, "vision": 16}


def test_mtfn_missing_modality_heads_are_nan(tiny):
    mods = ("text", "vision")
    est = MTFN(**MTFN._tiny_params, modalities=mods, random_state=0)
    est.fit(tiny.X("train", mods), tiny.y("train", LABELS))
    allp = est.predict_all(tiny.X("test", mods))
    assert np.isnan(allp[:, 2]).all() and np.isfinite(allp[:, [0, 1, 3]]).all()
    assert set(est.get_representations(tiny.X("test", mods))) == set(mods)


def test_mtfn_optimizer_groups_and_fused_adam(tiny):
    est = MTFN(**{**MTFN._tiny_params, "max_epochs": 1}, weight_decay_text=0.1,
               weight_decay_audio=0.2, weight_decay_vision=0.3, weight_decay=0.4,
               random_state=0)
    est.fit(tiny.X("train"), tiny.y("train", LABELS))
    opt = est.net_.optimizer_
    names = {id(p): n for n, p in est.net_.module_.named_parameters()}
    seen = set()
    for group in opt.param_groups:
        assert group["fused"]
        for p in group["params"]:
            n = names[id(p)]
            want = {"text_subnet": 0.1, "audio_subnet": 0.2, "video_subnet": 0.3}.get(
                n.split(".")[0], 0.4)
            assert group["weight_decay"] == want, n
            seen.add(n)
    assert seen == set(names.values())


def test_workspace_reused_released_and_not_pickled(tiny):
    est = TFN(**TFN._tiny_params, random_state=0).fit(tiny.X("train"), tiny.y("train"))
    assert est.net_.module_.fusion._workspace.grad is None
    layer = TensorFusion((2, 3, 4), 5, 0.2)
    xs = dict(audio=torch.randn(4, 2), vision=torch.randn(4, 3), text=torch.randn(4, 4))
    layer(**xs).sum().backward()
    ws = layer._workspace
    assert ws.grad is not None and ws.keep is not None and not ws.keep_busy
    keep_ptr = ws.keep.data_ptr()
    out1 = layer(**xs)  # the mask buffer is taken by this step ...
    out2 = layer(**xs)  # ... so a second forward before backward gets its own
    assert ws.keep_busy and ws.keep.data_ptr() == keep_ptr
    (out1.sum() + out2.sum()).backward()
    clone = pickle.loads(pickle.dumps(layer))
    assert clone._workspace.grad is None and clone._workspace.keep is None
    torch.testing.assert_close(clone.linear.weight, layer.linear.weight)


def test_two_forwards_before_backward_keep_their_masks():
    """The reused mask buffer must not be overwritten by a second forward."""
    torch.manual_seed(0)
    layer = TensorFusion((2, 3, 4), 5, 0.5).double()
    xs = {k: torch.randn(6, n, dtype=torch.float64) for k, n in
          (("audio", 2), ("vision", 3), ("text", 4))}
    W = layer.linear.weight
    torch.manual_seed(1)
    (layer(**xs).sum() + layer(**xs).sum()).backward()
    got = W.grad.clone()
    W.grad = None
    torch.manual_seed(1)
    layer(**xs).sum().backward()
    layer(**xs).sum().backward()  # accumulates
    torch.testing.assert_close(got, W.grad)


@pytest.mark.parametrize("est, param, bad", [
    (TFN(), "hidden_dims", (8, 8)),
    (TFN(), "dropouts", (0.1, 0.1, 0.1, 1.0)),
    (TFN(), "text_out", 0),
    (MTFN(), "post_dropouts", (0.2, 0.2, 0.2)),
    (MTFN(), "post_audio_dim", 0),
    (MTFN(), "weight_decay_text", -1.0),
])
def test_invalid_hyperparameters(est, param, bad, tiny):
    est = est.set_params(**{param: bad})
    with pytest.raises(ValueError, match=param):
        est.fit(tiny.X("train"), tiny.y("train", LABELS))


# ---------------------------------------------------------------------------
# Issue 4 (CH-SIMS paper): multi-task supervision helps, on a small dataset

@pytest.fixture(scope="module")
def multitask_data():
    """Few training clips whose unimodal labels differ markedly from M (each
    modality's features carry its own unimodal label in the synthetic
    generator): the T/A/V supervision is informative."""
    return make_synthetic(n_samples=(200, 100, 150), seq_lens=(10, 40, 16),
                          feature_dims=(32, 12, 24),
                          label_spread={"T": 0.5, "A": 0.5, "V": 0.5}, n_latent=8,
                          random_state=0)


def test_mtfn_beats_tfn_and_single_task(multitask_data):
    ds = multitask_data
    y_tr, y_va = ds.y("train", LABELS), ds.y("valid", LABELS)
    y_te = ds.y("test")
    mae = {"TFN": [], "MTFN": [], "MTFN-M": []}
    for seed in range(3):
        for name, est, yt, yv in [
            ("TFN", TFN(**SMALL_TFN, max_epochs=60, random_state=seed), y_tr[:, 0], y_va[:, 0]),
            ("MTFN", MTFN(**SMALL_MTFN, max_epochs=60, random_state=seed), y_tr, y_va),
            ("MTFN-M", MTFN(**SMALL_MTFN, tasks=(), max_epochs=60, random_state=seed),
             y_tr, y_va),
        ]:
            est.fit(ds.X("train"), yt, X_valid=ds.X("valid"), y_valid=yv)
            mae[name].append(np.abs(est.predict(ds.X("test")) - y_te).mean())
    mean = {k: float(np.mean(v)) for k, v in mae.items()}
    assert mean["MTFN"] < mean["TFN"], mean
    assert mean["MTFN"] < mean["MTFN-M"], mean


def test_restores_best_epoch_weights(tiny):
    """The memory-lean early stopping still restores the best epoch."""
    params = {**TFN._tiny_params, "max_epochs": 8, "early_stop": 2}
    est = TFN(**params, random_state=0).fit(tiny.X("train"), tiny.y("train"),
                                            X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    assert est.best_epoch_ == int(np.argmin(est.valid_loss_curve_)) + 1
    assert type(dict(est.net_.callbacks_)["early_stopping"]).__name__ == "LeanEarlyStopping"
    ref = TFN(**{**params, "max_epochs": est.best_epoch_}, random_state=0).fit(
        tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    np.testing.assert_array_equal(est.predict(tiny.X("test")), ref.predict(tiny.X("test")))
