"""EF-LSTM, LF-DNN, TFN, MTFN and MLF-DNN against the reference implementation.

Each model in its reference configuration (the class defaults) is compared
with a re-implementation of the reference's forward pass written in this file
from MMSA's source (github thuiar/MMSA): ``src/MMSA/models/singleTask/
EF_LSTM.py``, ``LF_DNN.py``, ``TFN.py``, ``src/MMSA/models/multiTask/
MLF_DNN.py``, ``MTFN.py``, the encoders of ``src/MMSA/models/subNets/
FeatureNets.py``, the aligner of ``src/MMSA/models/subNets/AlignNets.py`` and
the input averaging of ``src/MMSA/data_loader.py``.  The re-implementation
works on plain tensors named as the reference names its parameters; the
models' weights are copied into it by name.  Also checked: the reference's
parameter names, shapes and trainable counts, the optimizer groups of MMSA's
trainers (``src/MMSA/trains/...``), and the named corrections.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("torch")  # deep tests skip cleanly without torch

import numpy as np
import torch

from simsbench.datasets import LABELS
from simsbench.estimators import EFLSTM, LFDNN, MLFDNN, MTFN, TFN
from simsbench.estimators._deep import _to_tensors, count_parameters
from simsbench.estimators._fidelity import apply_variant, corrections, variant_of

FEATURE_DIMS, SEQ_LENS = (16, 5, 7), (6, 12, 8)  # the ``tiny`` fixture's shapes
SIMS_DIMS, SIMS_LENS = (768, 33, 709), (39, 400, 55)

# Small configurations (the reference's structure, small widths).
SMALL = {
    "EFLSTM": dict(hidden_dim=6, num_layers=2),
    "LFDNN": dict(hidden_dims=(6, 4, 5), text_out=7, post_fusion_dim=6),
    "TFN": dict(hidden_dims=(6, 4, 5), text_out=7, post_fusion_dim=6),
    "MTFN": dict(hidden_dims=(6, 4, 5), text_out=7, post_fusion_dim=6, post_text_dim=5,
                 post_audio_dim=3, post_vision_dim=4),
    "MLFDNN": dict(hidden_dims=(6, 4, 5), text_out=7, post_fusion_dim=6, post_text_dim=5,
                   post_audio_dim=3, post_vision_dim=4),
}
CLASSES = {"EFLSTM": EFLSTM, "LFDNN": LFDNN, "TFN": TFN, "MTFN": MTFN, "MLFDNN": MLFDNN}
MULTITASK = ("MTFN", "MLFDNN")


# ---------------------------------------------------------------------------
# the reference, re-implemented on tensors named as the reference names them

def _bn(x, P, name, training):
    """BatchNorm1d over channel axis 1 (eps 1e-5)."""
    w, b = P[f"{name}.weight"], P[f"{name}.bias"]
    if training:
        dims = [0] + list(range(2, x.dim()))
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
    else:
        mean, var = P[f"{name}.running_mean"], P[f"{name}.running_var"]
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + 1e-5) \
        * w.reshape(shape) + b.reshape(shape)


def _lin(x, P, name):
    return x @ P[f"{name}.weight"].t() + P[f"{name}.bias"]


def _lstm_final(x, P, prefix, layers):
    """Top layer's hidden state after every (padded) step; gates i, f, g, o."""
    inp = x
    for layer in range(layers):
        w_ih, w_hh = P[f"{prefix}.weight_ih_l{layer}"], P[f"{prefix}.weight_hh_l{layer}"]
        bias = P[f"{prefix}.bias_ih_l{layer}"] + P[f"{prefix}.bias_hh_l{layer}"]
        h = x.new_zeros(x.shape[0], w_hh.shape[1])
        c = torch.zeros_like(h)
        outs = []
        for t in range(inp.shape[1]):
            i, f, g, o = (inp[:, t] @ w_ih.t() + h @ w_hh.t() + bias).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        inp = torch.stack(outs, dim=1)
    return h


def _normalized(x):
    """MMSA data_loader ``__normalize``: the mean over the padded axis, NaN -> 0."""
    m = x.mean(dim=1)
    return torch.where(torch.isnan(m), torch.zeros_like(m), m)


def _avg_pool_align(x, T):
    """MMSA AlignSubNet('avg_pool'): pad with the last frame to a multiple of T,
    average consecutive windows."""
    R = x.shape[1]
    if R == T:
        return x
    if R % T == 0:
        pad, p = 0, R // T
    else:
        pad, p = T - R % T, R // T + 1
    x = torch.cat([x, x[:, -1:].expand(-1, pad, -1)], dim=1)
    return x.reshape(x.shape[0], T, p, -1).mean(dim=2)


def _subnet(x, P, name, training):
    y = _bn(x, P, f"{name}.norm", training)  # Dropout: identity in these checks
    for k in (1, 2, 3):
        y = torch.relu(_lin(y, P, f"{name}.linear_{k}"))
    return y


def _text_subnet(x, P):
    # num_layers == 1: the reference sets its dropout to 0
    return _lin(_lstm_final(x, P, "text_subnet.rnn", 1), P, "text_subnet.linear_1")


def _mlp3(x, P, prefix):
    x = torch.relu(_lin(x, P, f"{prefix}_layer_1"))
    x = torch.relu(_lin(x, P, f"{prefix}_layer_2"))
    return _lin(x, P, f"{prefix}_layer_3")[:, 0]


def _encoders(P, text, audio, vision, training):
    a = _subnet(_normalized(audio), P, "audio_subnet", training)
    v = _subnet(_normalized(vision), P, "video_subnet", training)
    return a, v, _text_subnet(text, P)


def _tensor_fusion(a, v, t):
    one = a.new_ones(a.shape[0], 1)
    a1, v1, t1 = (torch.cat([one, h], dim=1) for h in (a, v, t))
    z = torch.bmm(a1[:, :, None], v1[:, None, :]).reshape(a.shape[0], -1, 1)
    return torch.bmm(z, t1[:, None, :]).reshape(a.shape[0], -1)


def reference_forward(name, P, text, audio, vision, cfg, training=False):
    """M (or M, T, A, V) of the reference model ``name`` on padded inputs."""
    if name == "EFLSTM":
        T = text.shape[1]
        x = torch.cat([text, _avg_pool_align(audio, T), _avg_pool_align(vision, T)], dim=-1)
        h = _lstm_final(_bn(x, P, "norm", training), P, "lstm", cfg["num_layers"])
        return _lin(torch.relu(_lin(h, P, "linear")), P, "out")[:, 0]
    a, v, t = _encoders(P, text, audio, vision, training)
    if name in ("LFDNN", "MLFDNN"):
        m = _mlp3(torch.cat([a, v, t], dim=1), P, "post_fusion")
    else:  # TFN, MTFN: sigmoid(x) * output_range + output_shift
        m = torch.sigmoid(_mlp3(_tensor_fusion(a, v, t), P, "post_fusion")) * 6.0 - 3.0
    if name not in MULTITASK:
        return m
    return m, _mlp3(t, P, "post_text"), _mlp3(a, P, "post_audio"), _mlp3(v, P, "post_video")


# ---------------------------------------------------------------------------
# the reference's parameters (names and shapes from the models' __init__)

def _linear(name, n_in, n_out):
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def _subnet_shapes(name, d, h):
    out = {f"{name}.norm.weight": (d,), f"{name}.norm.bias": (d,)}
    for k, n_in in ((1, d), (2, h), (3, h)):
        out.update(_linear(f"{name}.linear_{k}", n_in, h))
    return out


def _lstm_shapes(prefix, d, h, layers):
    out = {}
    for layer in range(layers):
        out[f"{prefix}.weight_ih_l{layer}"] = (4 * h, d if layer == 0 else h)
        out[f"{prefix}.weight_hh_l{layer}"] = (4 * h, h)
        out[f"{prefix}.bias_ih_l{layer}"] = (4 * h,)
        out[f"{prefix}.bias_hh_l{layer}"] = (4 * h,)
    return out


def _mlp3_shapes(prefix, n_in, d):
    return {**_linear(f"{prefix}_layer_1", n_in, d), **_linear(f"{prefix}_layer_2", d, d),
            **_linear(f"{prefix}_layer_3", d, 1)}


def reference_shapes(name, cfg, dims, lens):
    """Trainable parameters of the reference model (requires_grad only: TFN's
    and MTFN's output_range/output_shift are excluded)."""
    d_t, d_a, d_v = dims
    if name == "EFLSTM":
        h = cfg["hidden_dim"]
        return {"norm.weight": (lens[0],), "norm.bias": (lens[0],),
                **_lstm_shapes("lstm", sum(dims), h, cfg["num_layers"]),
                **_linear("linear", h, h), **_linear("out", h, 1)}
    h_t, h_a, h_v = cfg["hidden_dims"]
    t_out, post = cfg["text_out"], cfg["post_fusion_dim"]
    shapes = {**_subnet_shapes("audio_subnet", d_a, h_a),
              **_subnet_shapes("video_subnet", d_v, h_v),
              **_lstm_shapes("text_subnet.rnn", d_t, h_t, 1),
              **_linear("text_subnet.linear_1", h_t, t_out)}
    if name in ("LFDNN", "MLFDNN"):
        shapes.update(_mlp3_shapes("post_fusion", h_a + h_v + t_out, post))
    else:
        shapes.update(_mlp3_shapes("post_fusion", (h_a + 1) * (h_v + 1) * (t_out + 1), post))
    if name in MULTITASK:
        shapes.update(_mlp3_shapes("post_text", t_out, cfg["post_text_dim"]))
        shapes.update(_mlp3_shapes("post_audio", h_a, cfg["post_audio_dim"]))
        shapes.update(_mlp3_shapes("post_video", h_v, cfg["post_vision_dim"]))
    return shapes


def reference_name(ours: str) -> str:
    """The reference's name of one of our parameters or buffers."""
    name = re.sub(r"^(trunk|heads)\.", "", ours)
    name = name.replace("fusion.linear.", "post_fusion_layer_1.")
    return re.sub(r"^(post_\w+)\.layer_(\d)\.", r"\1_layer_\2.", name)


def reference_state(module) -> dict:
    return {reference_name(k): v.detach() for k, v in module.state_dict().items()}


def _config(est) -> dict:
    return est.get_params(deep=False)


# ---------------------------------------------------------------------------
# data: padded clips (zeros after each clip's real length, lengths < L)

def _padded_inputs(n=9, seed=5):
    rng = np.random.default_rng(seed)
    X = {}
    for m, L, D in zip(("text", "audio", "vision"), SEQ_LENS, FEATURE_DIMS):
        lengths = rng.integers(1, L, size=n)
        lengths[0] = L  # one clip without padding
        x = rng.normal(size=(n, L, D)).astype(np.float32)
        x[np.arange(L)[None, :] >= lengths[:, None]] = 0.0
        X[m], X[f"{m}_lengths"] = x, lengths
    return X


def _fit(est, ds, epochs=1):
    labels = LABELS if est._multitask else "M"
    est.set_params(max_epochs=epochs, batch_size=16, random_state=0, n_threads=1)
    return est.fit(ds.X("train"), ds.y("train", labels),
                   X_valid=ds.X("valid"), y_valid=ds.y("valid", labels))


def _predictions(est, X):
    return est.predict_all(X) if est._multitask else est.predict(X)


def _reference_predictions(name, est, X):
    P = {k: v.double() if v.is_floating_point() else v
         for k, v in reference_state(est.net_.module_).items()}
    with torch.no_grad():
        out = reference_forward(name, P, *(torch.from_numpy(X[m]).double()
                                           for m in ("text", "audio", "vision")),
                                _config(est))
    if name in MULTITASK:
        return torch.stack(out, dim=1).numpy()
    return out.numpy()


# ---------------------------------------------------------------------------
# forward pass: the reference configuration is the reference

@pytest.mark.parametrize("name", list(CLASSES))
def test_eval_forward_equals_reference(name, tiny):
    est = _fit(CLASSES[name](**SMALL[name]), tiny)
    X = _padded_inputs()
    want = _reference_predictions(name, est, X)
    np.testing.assert_allclose(_predictions(est, X), want, rtol=1e-5, atol=1e-5)
    # The check can fail: the corrected inputs give other predictions.
    corrected = {"alignment": "length_aware"} if name == "EFLSTM" else {"pooling": "length_aware"}
    est.set_params(**corrected)
    assert np.abs(_predictions(est, X) - want).max() > 1e-3


@pytest.mark.parametrize("name", [n for n in CLASSES if n != "EFLSTM"])
def test_text_dropout_is_inert_in_training_mode(name):
    """Train mode, every dropout 0 but the text one: the reference's text
    dropout is a no-op, so the output is deterministic and the reference's;
    ``text_state_dropout=True`` (correction text_dropout) makes it act."""
    params = dict(SMALL[name])
    if name in MULTITASK:
        params.update(dropouts=(0.0, 0.0, 0.5), post_dropouts=(0.0,) * 4)
    else:
        params.update(dropouts=(0.0, 0.0, 0.5, 0.0))
    X = _padded_inputs(n=12)
    raw = [torch.from_numpy(X[m]).double() for m in ("text", "audio", "vision")]
    outs = {}
    for flag in (False, True):
        est = CLASSES[name](**params, text_state_dropout=flag)
        torch.manual_seed(0)
        module = est.build_module(FEATURE_DIMS, SEQ_LENS).double().train()
        inputs = {k: v.double() if v.is_floating_point() else v
                  for k, v in _to_tensors(est._prepare_inputs(X)).items()}
        with torch.no_grad():
            got = module(**inputs)
            want = reference_forward(name, reference_state(module), *raw, _config(est),
                                     training=True)
        got, want = (torch.stack(o, 1) if isinstance(o, tuple) else o for o in (got, want))
        outs[flag] = (got, want)
    torch.testing.assert_close(*outs[False], rtol=1e-7, atol=1e-9)
    assert (outs[True][0] - outs[True][1]).abs().max() > 1e-4


def test_ef_lstm_training_mode_equals_reference():
    """Train mode without dropout: BatchNorm over the time steps with batch
    statistics, the aligner and the stacked LSTM over every padded step."""
    est = EFLSTM(**SMALL["EFLSTM"], dropout=0.0)
    torch.manual_seed(0)
    module = est.build_module(FEATURE_DIMS, SEQ_LENS).double().train()
    X = _padded_inputs(n=12)
    inputs = {k: v.double() if v.is_floating_point() else v
              for k, v in _to_tensors(est._prepare_inputs(X)).items()}
    raw = [torch.from_numpy(X[m]).double() for m in ("text", "audio", "vision")]
    with torch.no_grad():
        torch.testing.assert_close(
            module(**inputs),
            reference_forward("EFLSTM", reference_state(module), *raw, _config(est),
                              training=True), rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------------------
# parameters: the reference's names, shapes and trainable counts

# Trainable parameters of the reference models with CH-SIMS shapes, counted
# by instantiating MMSA's classes with the CH-SIMS configuration.
SIMS_COUNTS = {"EFLSTM": 215_695, "LFDNN": 635_821, "TFN": 35_632_077,
               "MTFN": 140_957_188, "MLFDNN": 283_388}


@pytest.mark.parametrize("name", list(CLASSES))
def test_parameters_are_the_reference_ones(name):
    est = CLASSES[name]()  # the CH-SIMS configuration
    with torch.device("meta"):  # shapes only: nothing is allocated
        module = est.build_module(SIMS_DIMS, SIMS_LENS)
    want = reference_shapes(name, _config(est), SIMS_DIMS, SIMS_LENS)
    got = {reference_name(n): tuple(p.shape) for n, p in module.named_parameters()}
    assert got == want
    assert all(p.requires_grad for p in module.parameters())
    assert count_parameters(module) == SIMS_COUNTS[name]
    assert sum(int(np.prod(s)) for s in want.values()) == SIMS_COUNTS[name]


def _reference_groups(name, est, ref_name):
    """(lr, weight decay) of a parameter in the Adam of MMSA's trainer."""
    lr, wd = est.learning_rate, est.weight_decay
    if name == "TFN":  # Adam(parameters()[2:], lr): no weight decay
        return lr, 0.0
    if name in MULTITASK:
        encoder = ref_name.split(".")[0]
        param = {"text_subnet": "weight_decay_text", "audio_subnet": "weight_decay_audio",
                 "video_subnet": "weight_decay_vision"}.get(encoder)
        if param:
            return lr, getattr(est, param)
        # MTFN's trainer passes no top-level weight decay; MLF-DNN's passes it
        return lr, (0.0 if name == "MTFN" else wd)
    return lr, wd  # EF-LSTM, LF-DNN: Adam(parameters(), lr, weight_decay)


@pytest.mark.parametrize("name", list(CLASSES))
def test_optimizer_groups_are_the_reference_trainers(name, tiny):
    est = _fit(CLASSES[name](**SMALL[name]), tiny)
    names = {id(p): n for n, p in est.net_.module_.named_parameters()}
    seen = []
    for group in est.net_.optimizer_.param_groups:
        for p in group["params"]:
            ref = reference_name(names[id(p)])
            assert (group["lr"], group["weight_decay"]) == pytest.approx(
                _reference_groups(name, est, ref)), ref
            seen.append(ref)
    assert sorted(seen) == sorted(reference_name(n) for n in names.values())  # each once


def test_mtfn_reference_weight_decay_groups_use_the_config():
    est = MTFN()
    groups = dict((pattern.split("_")[0], opts["weight_decay"])
                  for pattern, opts in est._param_groups())
    assert groups == {"text": 1e-3, "audio": 1e-4, "video": 1e-5}
    assert est.weight_decay == 0.0


# ---------------------------------------------------------------------------
# named corrections

EXPECTED_CORRECTIONS = {
    "EFLSTM": {"alignment": {"alignment": ("padded", "length_aware")}},
    **{n: {"pooling": {"pooling": ("padded", "length_aware")},
           "text_dropout": {"text_state_dropout": (False, True)}}
       for n in ("LFDNN", "TFN", "MTFN", "MLFDNN")},
}


@pytest.mark.parametrize("name", list(CLASSES))
def test_corrections_and_variants(name, tiny):
    cls = CLASSES[name]
    found = {c.name: dict(c.params) for c in corrections(cls)}
    assert found == {"selection": {"selection": ("reference", "weighted")},
                     "epoch_cap": {"max_epochs": (None, 100)},
                     **EXPECTED_CORRECTIONS[name]}
    assert variant_of(cls()) == "reference"
    corrected = apply_variant(cls(), "corrected")
    assert variant_of(corrected) == "corrected"
    for corr_name in EXPECTED_CORRECTIONS[name]:  # one ablation row each
        assert variant_of(apply_variant(cls(), f"reference+{corr_name}")) == \
            f"reference+{corr_name}"
    # the corrected model still fits (tiny) and predicts
    est = _fit(corrected.set_params(**SMALL[name]), tiny, epochs=2)
    pred = est.predict(tiny.X("test"))
    assert pred.shape == (tiny["test"].n_samples,) and np.isfinite(pred).all()


@pytest.mark.parametrize("name", [n for n in CLASSES if n != "EFLSTM"])
def test_bad_text_state_dropout_is_a_clear_error(name, tiny):
    est = CLASSES[name](**SMALL[name], text_state_dropout="yes")
    with pytest.raises(ValueError, match=r"text_state_dropout.{0,30} must be"):
        _fit(est, tiny)
