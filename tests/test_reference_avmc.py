"""AV-MC and AV-MC (Semi) in their reference configuration against the released
code (github thuiar/ch-sims-v2).

The reference computations below are written from a reading of
``ch-sims-v2 models/multiTask/V1.py``, ``models/multiTask/V1_Semi.py``,
``trains/multiTask/V1.py``, ``trains/multiTask/V1_Semi.py`` and
``data/load_data.py``, in float64 numpy with an explicit LSTM recurrence: they
share no code with simsbench.  Parameters are copied across by the
reference's names (``tliner``, ``audio_model``, ``post_video_layer_1``...).
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import numpy as np
import torch

from simsbench.datasets import LABELS
from simsbench.estimators import AVMC, AVMCSemi
from simsbench.estimators import _avmc_base as avmc_module
from simsbench.estimators._deep import count_parameters
from simsbench.estimators._fidelity import apply_variant, variant_of
from simsbench.protocols import AVMCAblation

V2_DIMS = (768, 25, 177)  # CH-SIMS v2 (text, audio, video) feature widths
V2_SHAPES = dict(feature_dims=V2_DIMS, seq_lens=(50, 925, 232))
SMALL = dict(hidden_dims=(6, 4, 3), post_dims=(5, 4, 6), post_fusion_dim=7, batch_size=16,
             n_threads=1, random_state=0)
NO_DROPOUT = dict(dropouts=(0.0, 0.0), post_dropouts=(0.0, 0.0, 0.0, 0.0))


# ---------------------------------------------------------------------------
# the reference, re-implemented

def _reference_names(module) -> dict[str, np.ndarray]:
    """The module's state under the reference's attribute names (float64)."""
    renames = [("text_encoder.", "tliner."), ("audio_encoder.", "audio_model."),
               ("vision_encoder.", "video_model."), ("fusion.layer_", "post_fusion_layer_"),
               ("post_vision.", "post_video."), ("rec_text.", "t_rec."),
               ("rec_audio.", "a_rec."), ("rec_vision.", "v_rec.")]
    out = {}
    for name, value in module.state_dict().items():
        for old, new in renames:
            if name.startswith(old):
                name = new + name[len(old):]
        for m in ("text", "audio", "video"):
            name = name.replace(f"post_{m}.layer_", f"post_{m}_layer_")
        for k in ("1", "2"):
            name = name.replace(f"_rec.layer_{k}.", f"_rec.post_layer_{k}_rec.")
        out[name] = value.detach().double().numpy()
    return out


def _linear_shapes(name, n_in, n_out):
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def _reference_parameter_shapes(model, dims, hidden, post, post_fusion):
    """Trainable parameters of the reference V1 / V1_Semi (BERT and the
    frozen output range/shift excluded), name -> shape."""
    (d_t, d_a, d_v), (h_t, h_a, h_v), (p_t, p_a, p_v) = dims, hidden, post
    shapes = _linear_shapes("tliner", d_t, h_t)
    for enc, d, h in (("audio_model", d_a, h_a), ("video_model", d_v, h_v)):
        if model == "V1":  # SubNet
            shapes.update({f"{enc}.norm.weight": (d,), f"{enc}.norm.bias": (d,)})
            shapes.update(_linear_shapes(f"{enc}.linear_1", d, h))
            shapes.update(_linear_shapes(f"{enc}.linear_2", h, h))
            shapes.update(_linear_shapes(f"{enc}.linear_3", h, h))
        else:  # AVsubNet
            shapes.update(_linear_shapes(f"{enc}.liner", d, h))
            for rnn, n_in in (("rnn1", h), ("rnn2", 2 * h)):
                for sfx in ("l0", "l0_reverse"):
                    shapes[f"{enc}.{rnn}.weight_ih_{sfx}"] = (4 * h, n_in)
                    shapes[f"{enc}.{rnn}.weight_hh_{sfx}"] = (4 * h, h)
                    shapes[f"{enc}.{rnn}.bias_ih_{sfx}"] = (4 * h,)
                    shapes[f"{enc}.{rnn}.bias_hh_{sfx}"] = (4 * h,)
            shapes.update({f"{enc}.layer_norm.weight": (2 * h,),
                           f"{enc}.layer_norm.bias": (2 * h,)})
    width = 1 if model == "V1" else 4  # AVsubNet's output is 4h
    for m, n_in, p in (("text", h_t, p_t), ("audio", width * h_a, p_a),
                       ("video", width * h_v, p_v)):
        shapes.update(_linear_shapes(f"post_{m}_layer_1", n_in, p))
        shapes.update(_linear_shapes(f"post_{m}_layer_2", p, p))
        shapes.update(_linear_shapes(f"post_{m}_layer_3", p, 1))
    shapes.update(_linear_shapes("post_fusion_layer_1", p_t + p_a + p_v, post_fusion))
    shapes.update(_linear_shapes("post_fusion_layer_2", post_fusion, post_fusion))
    shapes.update(_linear_shapes("post_fusion_layer_3", post_fusion, 1))
    if model == "V1_Semi":  # the Reconsitution MLPs
        for r, p, d in (("t_rec", p_t, d_t), ("a_rec", p_a, d_a), ("v_rec", p_v, d_v)):
            shapes.update(_linear_shapes(f"{r}.post_layer_1_rec", p, p))
            shapes.update(_linear_shapes(f"{r}.post_layer_2_rec", p, d))
    return shapes


def _lin(P, name, x):
    return x @ P[f"{name}.weight"].T + P[f"{name}.bias"]


def _relu(x):
    return np.maximum(x, 0.0)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _loader_mean(x, lengths):
    """``data/load_data.py`` (need_normalized): the mean of the first
    ``length`` frames of each clip."""
    return np.stack([x[i, :lengths[i]].astype(np.float64).mean(axis=0)
                     for i in range(len(x))])


def _subnet(P, enc, x, train):
    """SubNet: BatchNorm1d -> Dropout -> 3 x (Linear, ReLU)."""
    if train:  # batch statistics, biased variance
        mean, var = x.mean(axis=0), x.var(axis=0)
    else:
        mean, var = P[f"{enc}.norm.running_mean"], P[f"{enc}.norm.running_var"]
    x = (x - mean) / np.sqrt(var + 1e-5) * P[f"{enc}.norm.weight"] + P[f"{enc}.norm.bias"]
    for k in (1, 2, 3):
        x = _relu(_lin(P, f"{enc}.linear_{k}", x))
    return x


def _lstm_direction(P, rnn, sfx, seq):
    """One direction of a 1-layer LSTM over ``seq`` (T, D); torch's gate
    order (input, forget, cell, output).  Returns the outputs and the final
    hidden state."""
    w_ih, w_hh = P[f"{rnn}.weight_ih_{sfx}"], P[f"{rnn}.weight_hh_{sfx}"]
    b = P[f"{rnn}.bias_ih_{sfx}"] + P[f"{rnn}.bias_hh_{sfx}"]
    n = w_hh.shape[1]
    h, c = np.zeros(n), np.zeros(n)
    outs = np.zeros((len(seq), n))
    steps = range(len(seq) - 1, -1, -1) if sfx.endswith("reverse") else range(len(seq))
    for t in steps:
        z = w_ih @ seq[t] + w_hh @ h + b
        i, f, g, o = _sigmoid(z[:n]), _sigmoid(z[n:2 * n]), np.tanh(z[2 * n:3 * n]), \
            _sigmoid(z[3 * n:])
        c = f * c + i * g
        h = o * np.tanh(c)
        outs[t] = h
    return outs, h


def _avsubnet(P, enc, x, lengths):
    """AVsubNet over each clip's real frames: Linear -> BiLSTM -> LayerNorm ->
    BiLSTM; [l1 fwd, l2 fwd, l1 bwd, l2 bwd] final states."""
    rows = []
    for i in range(len(x)):
        seq = _lin(P, f"{enc}.liner", x[i, :lengths[i]].astype(np.float64))
        out_f, h1f = _lstm_direction(P, f"{enc}.rnn1", "l0", seq)
        out_b, h1b = _lstm_direction(P, f"{enc}.rnn1", "l0_reverse", seq)
        out1 = np.concatenate([out_f, out_b], axis=1)
        mu, var = out1.mean(axis=1, keepdims=True), out1.var(axis=1, keepdims=True)
        normed = ((out1 - mu) / np.sqrt(var + 1e-5) * P[f"{enc}.layer_norm.weight"]
                  + P[f"{enc}.layer_norm.bias"])
        _, h2f = _lstm_direction(P, f"{enc}.rnn2", "l0", normed)
        _, h2b = _lstm_direction(P, f"{enc}.rnn2", "l0_reverse", normed)
        rows.append(np.concatenate([h1f, h2f, h1b, h2b]))
    return np.stack(rows)


def _head(P, m, x):
    """Dropout -> Linear -> ReLU (x2) -> Linear -> ReLU (x3) -> Linear."""
    x2 = _relu(_lin(P, f"post_{m}_layer_1", x))
    x3 = _relu(_lin(P, f"post_{m}_layer_2", x2))
    return _lin(P, f"post_{m}_layer_3", x3)[:, 0], x2, x3


def _fusion(P, feats, scale, shift):
    z = _lin(P, "post_fusion_layer_1", np.concatenate(feats, axis=1))
    z = _lin(P, "post_fusion_layer_3", _lin(P, "post_fusion_layer_2", z))
    return _sigmoid(z[:, 0]) * scale + shift


def _v1_heads(P, text_h, audio_h, video_h):
    """V1.forward after the encoders: (M, T, A, V); fusion over the x3's,
    M = sigmoid * 2 - 1."""
    t, _, t3 = _head(P, "text", text_h)
    a, _, a3 = _head(P, "audio", audio_h)
    v, _, v3 = _head(P, "video", video_h)
    return _fusion(P, [t3, a3, v3], 2.0, -1.0), t, a, v


def reference_v1(P, X, train=False, audio=None, video=None):
    """V1.forward on the loader's inputs; ``audio``/``video`` replace the
    time-averaged features (a mixup pass)."""
    cls = X["text"][:, 0, :].astype(np.float64)  # BERT's [CLS] position
    if audio is None:
        audio = _loader_mean(X["audio"], X["audio_lengths"])
    if video is None:
        video = _loader_mean(X["vision"], X["vision_lengths"])
    return _v1_heads(P, _lin(P, "tliner", cls), _subnet(P, "audio_model", audio, train),
                     _subnet(P, "video_model", video, train))


def reference_v1_semi(P, X):
    """V1_Semi.forward (flag 'train'): (M, T, A, V) and the encoder outputs;
    fusion over the x2's, M = sigmoid * 6 - 3."""
    text_h = _lin(P, "tliner", X["text"][:, 0, :].astype(np.float64))
    audio_h = _avsubnet(P, "audio_model", X["audio"], X["audio_lengths"])
    video_h = _avsubnet(P, "video_model", X["vision"], X["vision_lengths"])
    t, t2, _ = _head(P, "text", text_h)
    a, a2, _ = _head(P, "audio", audio_h)
    v, v2, _ = _head(P, "video", video_h)
    return (_fusion(P, [t2, a2, v2], 6.0, -3.0), t, a, v), (audio_h, video_h)


def _l1(pred, target):
    return np.abs(pred - target).mean()


# ---------------------------------------------------------------------------
# helpers

def _noisy_padding(X, seed=0):
    """A copy of ``X`` whose audio/vision frames past each clip's length are
    noise (the reference never reads them)."""
    rng = np.random.default_rng(seed)
    X = {k: np.array(v) for k, v in X.items()}
    for m in ("audio", "vision"):
        lengths = X[f"{m}_lengths"]
        assert (lengths < X[m].shape[1]).any()  # the data has padding
        for i, n in enumerate(lengths):
            X[m][i, n:] = rng.normal(scale=5.0, size=X[m][i, n:].shape)
    return X


def _fit(est, ds, semi=False, epochs=1):
    est.set_params(max_epochs=epochs)
    X, y = (ds.X_semi(), ds.y_semi(LABELS)) if semi else (ds.X("train"), ds.y("train", LABELS))
    return est.fit(X, y, X_valid=ds.X("valid"), y_valid=ds.y("valid", LABELS))


def _batch(est, X, y):
    Xi = {k: torch.as_tensor(np.asarray(v)) for k, v in est._prepare_inputs(X).items()}
    return Xi, torch.as_tensor(np.asarray(y, dtype=np.float32))


class _Draws:
    """Replaces ``_draw_mixup`` with fixed (lambda, permutation) draws."""

    def __init__(self, draws):
        self.draws = list(draws)
        self.calls = 0

    def __call__(self, alpha, n):
        lam, perm = self.draws[self.calls]
        self.calls += 1
        assert alpha == 1.0 and len(perm) == n
        return lam, torch.as_tensor(perm)


def _group_of(net, param):
    groups = [g for g in net.optimizer_.param_groups if any(p is param for p in g["params"])]
    assert len(groups) == 1
    return groups[0]


# ---------------------------------------------------------------------------
# AV-MC (V1)

def test_avmc_default_is_the_reference_configuration():
    est = AVMC()
    assert variant_of(est) == "reference"
    assert est.encoder == "dnn" and est.max_epochs is None and est.selection == "reference"
    # the Table 4 switches keep the reference configuration
    assert variant_of(AVMCAblation("no_mixup_av_unimodal").configure(AVMC())) == "reference"


def test_avmc_parameters_are_the_references():
    module = AVMC().build_module(**V2_SHAPES)
    assert count_parameters(module) == 66_440
    ref = _reference_parameter_shapes("V1", V2_DIMS, (64, 16, 16), (32, 32, 64), 16)
    assert sum(int(np.prod(s)) for s in ref.values()) == 66_440
    ours = {n: tuple(v.shape) for n, v in _reference_names(module).items()
            if not n.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert ours == ref


def test_avmc_forward_equals_reference_v1(tiny_v2):
    est = _fit(AVMC(**SMALL), tiny_v2)
    P = _reference_names(est.net_.module_)
    assert not np.allclose(P["audio_model.norm.running_mean"], 0)  # BN statistics trained
    X = _noisy_padding(tiny_v2.X("test"))
    ours = est.predict_all(X)
    ref = np.stack(reference_v1(P, X), axis=1)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    assert np.abs(ours[:, 0]).max() < 1.0


def test_avmc_training_loss_equals_reference_v1(tiny_v2, monkeypatch):
    """One V1 step: clean pass + audio-mixup and video-mixup passes with the
    loss-mixed criterion (trains/multiTask/V1.py), BatchNorm in train mode."""
    est = _fit(AVMC(**SMALL, **NO_DROPOUT), tiny_v2)
    X, y = tiny_v2.X("train"), tiny_v2.y("train", LABELS)
    rng = np.random.default_rng(1)
    draws = [(0.3, rng.permutation(len(y))), (0.85, rng.permutation(len(y)))]
    monkeypatch.setattr(avmc_module, "_draw_mixup", _Draws(draws))
    step = est.net_.train_step_single(_batch(est, X, y))

    P = _reference_names(est.net_.module_)  # train_step_single does not step
    w = dict(zip("MTAV", est.loss_weights))
    yy = {k: y[:, i].astype(np.float64) for i, k in enumerate("MTAV")}
    audio = _loader_mean(X["audio"], X["audio_lengths"])
    video = _loader_mean(X["vision"], X["vision_lengths"])
    clean = dict(zip("MTAV", reference_v1(P, X, train=True)))
    loss = sum(w[k] * _l1(clean[k], yy[k]) for k in "MTAV")
    for (lam, perm), mixed in zip(draws, ("A", "V")):
        if mixed == "A":
            out = reference_v1(P, X, True, audio=lam * audio + (1 - lam) * audio[perm])
        else:
            out = reference_v1(P, X, True, video=lam * video + (1 - lam) * video[perm])
        out = dict(zip("MTAV", out))
        for k in "MTAV":
            if k in ("M", mixed):
                loss += w[k] * (lam * _l1(out[k], yy[k])
                                + (1 - lam) * _l1(out[k], yy[k][perm]))
            else:
                loss += w[k] * _l1(out[k], yy[k])
    assert step["loss"].item() == pytest.approx(loss, rel=1e-5)


def test_avmc_optimizer_groups_are_the_references(tiny_v2):
    est = _fit(AVMC(**SMALL), tiny_v2)
    net, module = est.net_, est.net_.module_
    expected = {"audio_encoder": (5e-4, 0.0), "vision_encoder": (1e-3, 0.0)}
    for name, p in module.named_parameters():
        g = _group_of(net, p)
        lr, wd = expected.get(name.split(".")[0], (5e-4, 5e-4))  # "other"
        assert (g["lr"], g["weight_decay"], g["betas"], g["eps"], g["amsgrad"]) == (
            lr, wd, (0.9, 0.999), 1e-8, False), name
        assert p.requires_grad


def test_avmc_corrected_variant_fits(tiny_v2):
    est = apply_variant(AVMC(**SMALL), "corrected")
    assert variant_of(est) == "corrected"
    est = _fit(est, tiny_v2, epochs=2)
    assert np.isfinite(est.predict(tiny_v2.X("test"))).all()


# ---------------------------------------------------------------------------
# AV-MC (Semi) (V1_Semi)

def test_avmc_semi_default_is_the_reference_configuration():
    est = AVMCSemi()
    assert variant_of(est) == "reference"
    assert (est.encoder, est.output_range, est.reconstruction_heads,
            est.unlabelled_batches) == ("lstm", 3.0, True, "skip_backward")


def test_avmc_semi_parameters_are_the_references():
    module = AVMCSemi().build_module(**V2_SHAPES)
    assert count_parameters(module) == 188_118
    assert count_parameters(module.audio_encoder) == 42_944
    assert count_parameters(module.vision_encoder) == 47_808
    ref = _reference_parameter_shapes("V1_Semi", V2_DIMS, (64, 32, 32), (16, 8, 64), 32)
    assert sum(int(np.prod(s)) for s in ref.values()) == 188_118
    assert {n: tuple(v.shape) for n, v in _reference_names(module).items()} == ref
    corrected = apply_variant(AVMCSemi(), "corrected").build_module(**V2_SHAPES)
    assert count_parameters(corrected) == 188_118 - 29_290


def test_avmc_semi_forward_equals_reference_v1_semi(tiny_v2):
    est = _fit(AVMCSemi(**SMALL), tiny_v2, semi=True)
    P = _reference_names(est.net_.module_)
    X = _noisy_padding(tiny_v2.X("test"))
    (m, t, a, v), (audio_h, video_h) = reference_v1_semi(P, X)
    np.testing.assert_allclose(est.predict_all(X), np.stack([m, t, a, v], axis=1),
                               rtol=1e-5, atol=1e-5)
    reps = est.get_representations(X)
    np.testing.assert_allclose(reps["audio"], audio_h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reps["vision"], video_h, rtol=1e-5, atol=1e-5)


def test_avmc_semi_pass1_loss_equals_reference(tiny_v2, monkeypatch):
    """A train_mix batch: supervised loss on the labelled rows plus the V and
    A mixup-consistency terms on all rows (trains/multiTask/V1_Semi.py)."""
    est = _fit(AVMCSemi(**SMALL, **NO_DROPOUT), tiny_v2, semi=True)
    X, y = tiny_v2.X_semi(), tiny_v2.y_semi(LABELS)
    rows = np.r_[0:10, len(y) - 8:len(y)]  # 10 labelled, 8 unlabelled rows
    X = {k: np.asarray(v)[rows] for k, v in X.items()}
    y = y[rows]
    rng = np.random.default_rng(2)
    draws = [(0.4, rng.permutation(len(rows))), (0.7, rng.permutation(len(rows)))]
    monkeypatch.setattr(avmc_module, "_draw_mixup", _Draws(draws))
    net = est.net_
    net._semi_pass = True
    step = net.train_step_single(_batch(est, X, y))

    P = _reference_names(net.module_)
    w = dict(zip("MTAV", est.loss_weights))
    out, (audio_h, video_h) = reference_v1_semi(P, X)
    out = dict(zip("MTAV", out))
    lab = ~np.isnan(y[:, 0])
    loss = sum(w[k] * _l1(out[k][lab], y[lab, i]) for i, k in enumerate("MTAV"))
    for (lam, perm), (k, m, f) in zip(draws, (("V", "video", video_h),
                                              ("A", "audio", audio_h))):
        p = out[k]
        q, _, _ = _head(P, m, lam * f + (1 - lam) * f[perm])
        loss += w[k] * _l1(q, lam * p + (1 - lam) * p[perm])
    assert step["loss"].item() == pytest.approx(loss, rel=1e-5)


def _adam_zero_grad_step(p, state, group):
    """torch.optim.Adam's update for a zero gradient (coupled weight decay)."""
    b1, b2 = group["betas"]
    g = group["weight_decay"] * p
    m = b1 * state["exp_avg"] + (1 - b1) * g
    v = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
    t = float(state["step"]) + 1
    denom = np.sqrt(v / (1 - b2 ** t)) + group["eps"]
    return p - group["lr"] * (m / (1 - b1 ** t)) / denom


@pytest.mark.parametrize("mode", ["skip_backward", "backward"])
def test_avmc_semi_unlabelled_batch(tiny_v2, mode):
    """Reference: no backward, then the Adam step on zeroed gradients (momentum
    and weight decay move every parameter stepped before); corrected: the
    consistency loss is back-propagated before the step."""
    est = _fit(AVMCSemi(**SMALL, unlabelled_batches=mode), tiny_v2, semi=True)
    net, module = est.net_, est.net_.module_
    net._semi_pass, net._pending = True, 0
    X, y = tiny_v2.X_semi(), tiny_v2.y_semi(LABELS)
    net.train_step(_batch(est, {k: np.asarray(v)[:16] for k, v in X.items()}, y[:16]))
    before = {n: p.detach().double().numpy().copy() for n, p in module.named_parameters()}
    state = {n: {k: (v.double().numpy().copy() if v.ndim else float(v))
                 for k, v in net.optimizer_.state[p].items()}
             for n, p in module.named_parameters() if net.optimizer_.state.get(p)}
    assert not any(n.startswith("rec_") for n in state)  # never had a gradient
    unl = ~np.isnan(y[:, 0])
    X_u = {k: np.asarray(v)[~unl] for k, v in X.items()}
    net.train_step(_batch(est, X_u, y[~unl]))
    after = {n: p.detach().double().numpy() for n, p in module.named_parameters()}
    matches = {}
    for n, p in module.named_parameters():
        if n not in state:  # the reconstruction MLPs
            np.testing.assert_array_equal(after[n], before[n])
            continue
        expected = _adam_zero_grad_step(before[n], state[n], _group_of(net, p))
        matches[n] = np.allclose(after[n], expected, rtol=1e-5, atol=1e-7)
    if mode == "skip_backward":
        assert all(matches.values()), [n for n, ok in matches.items() if not ok]
    else:  # the consistency gradient reaches the audio/vision heads only
        assert all(ok for n, ok in matches.items()
                   if n.startswith(("text_encoder.", "post_text.", "fusion.")))
        assert not matches["post_audio.layer_1.weight"]
        assert not matches["post_vision.layer_1.weight"]


def test_avmc_semi_optimizer_groups_and_unused_heads(tiny_v2):
    est = _fit(AVMCSemi(**SMALL), tiny_v2, semi=True)
    net, module = est.net_, est.net_.module_
    expected = {"audio_encoder": (1e-3, 0.0), "vision_encoder": (1e-3, 1e-5)}
    for name, p in module.named_parameters():
        g = _group_of(net, p)
        assert (g["lr"], g["weight_decay"]) == expected.get(name.split(".")[0],
                                                            (5e-4, 1e-5)), name
    # the reconstruction MLPs never move; everything else trains
    torch.manual_seed(0)  # fit seeds torch with random_state before building
    init = est.build_module(tuple(est.feature_dims_.values()), tuple(est.seq_lens_.values()))
    init_params = dict(init.named_parameters())
    for name, p in module.named_parameters():
        same = torch.equal(p, init_params[name])
        assert same == name.startswith("rec_"), name


def test_avmc_semi_corrected_variant_fits(tiny_v2):
    est = apply_variant(AVMCSemi(**SMALL), "corrected")
    assert variant_of(est) == "corrected"
    assert (est.output_range, est.reconstruction_heads, est.unlabelled_batches) == (
        1.0, False, "backward")
    est = _fit(est, tiny_v2, semi=True, epochs=2)
    pred = est.predict_all(tiny_v2.X("test"))
    assert np.isfinite(pred).all() and np.abs(pred[:, 0]).max() < 1.0
    assert not any(n.startswith("rec_") for n, _ in est.net_.module_.named_parameters())
