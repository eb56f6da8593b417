"""Reference configurations of MulT, MISA, MMIM and Self-MM.

Each model, built in its reference configuration (the class defaults), is
compared with an independent re-implementation of the reference's forward
pass written here from a reading of the MMSA sources (github thuiar/MMSA,
cited per class), on the same weights (copied across by the reference's
parameter names, which also checks that every parameter has its reference
counterpart and shape), in eval mode, on random zero-padded inputs whose real
lengths are shorter than the padded ones.  Also: the trainable parameter
counts with CH-SIMS shapes, the optimizer groups and never-updated
parameters, the training quirks (clip per backward, dropped accumulation
tail, schedulers on the reference validation loss) and the variants.

The re-implementations run every clip on its own (no packing, no padding
masks), so they also check the packing and masking of the estimators.
Features variants: the precomputed BERT features stand in for BERT's output
(masked mean for MISA, [CLS] for MMIM and Self-MM), on both sides.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # deep tests skip cleanly without torch

import math
import re
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simsbench.estimators import MISA, MMIM, MulT, SelfMM
from simsbench.estimators._deep import SimsNet, _to_tensors, count_parameters
from simsbench.estimators._fidelity import apply_variant, corrections, variant_of
from simsbench.estimators.modules._mmim import MMILB
from simsbench.estimators._self_mm import SelfMMNet

MODS = ("text", "audio", "vision")
SIMS_DIMS, SIMS_LENS = (768, 33, 709), (39, 400, 55)
DIMS, LENS = (20, 6, 14), (9, 30, 12)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _inputs(n=7, lens=LENS, dims=DIMS, seed=0):
    """Zero-padded random clips; every real length is shorter than L."""
    rng = np.random.RandomState(seed)
    X = {}
    for m, L, D in zip(MODS, lens, dims):
        real = rng.randint(max(2, L // 3), L, size=n)
        x = rng.randn(n, L, D).astype(np.float32)
        X[m] = x * (np.arange(L)[None, :] < real[:, None])[:, :, None]
        X[f"{m}_lengths"] = real
    return X


def _t(a):
    return torch.as_tensor(np.asarray(a))


def _per_clip_lstm(rnn, x, lengths):
    """h_n of ``rnn`` (time-first) run on each clip's real steps alone."""
    hs = [rnn(x[i, :int(n)].unsqueeze(1))[1][0] for i, n in enumerate(lengths)]
    return torch.cat(hs, dim=1)  # (layers * directions, B, hidden)


def _seq(*named):
    return nn.Sequential(OrderedDict(named))


# ===========================================================================
# MulT -- MMSA src/MMSA/models/singleTask/MULT.py with its encoder
# src/MMSA/models/subNets/transformers_encoder/{transformer,multihead_attention}.py
# (MMSA v2: no positional embedding, no key padding mask).  Time-first.

class _RefAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.d, self.heads = d, heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, query, key, value, mask):
        d, H = self.d, self.heads
        hd = d // H
        W, b = self.in_proj_weight, self.in_proj_bias
        q = F.linear(query, W[:d], b[:d]) * hd ** -0.5  # scaled before the product
        k = F.linear(key, W[d:2 * d], b[d:2 * d])
        v = F.linear(value, W[2 * d:], b[2 * d:])
        Lq, B, Lk = q.shape[0], q.shape[1], k.shape[0]
        q, k, v = (t.reshape(t.shape[0], B * H, hd).transpose(0, 1) for t in (q, k, v))
        scores = torch.bmm(q, k.transpose(1, 2))
        if mask is not None:
            scores = scores + mask[None]  # additive -inf mask
        out = torch.bmm(torch.softmax(scores, dim=-1), v)  # (B*H, Lq, hd)
        assert out.shape == (B * H, Lq, hd) and Lk == v.shape[1]
        return self.out_proj(out.transpose(0, 1).reshape(Lq, B, d))


class _RefLayer(nn.Module):
    """Pre-LN; the same LayerNorm on query, key and value; FFN d -> 4d -> d."""

    def __init__(self, d, heads, attn_mask):
        super().__init__()
        self.self_attn = _RefAttention(d, heads)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(d), nn.LayerNorm(d)])
        self.attn_mask = attn_mask

    def forward(self, x, x_k=None, x_v=None):
        Lq = x.shape[0]
        Lk = Lq if x_k is None else x_k.shape[0]
        mask = None
        if self.attn_mask:  # -inf where j >= i + 1 + |Lk - Lq|, from the padded lengths
            mask = torch.triu(torch.full((Lq, Lk), float("-inf")), 1 + abs(Lk - Lq))
        ln = self.layer_norms[0]
        h = ln(x)
        if x_k is None:
            a = self.self_attn(h, h, h, mask)
        else:
            a = self.self_attn(h, ln(x_k), ln(x_v), mask)
        x = x + a
        return x + self.fc2(F.relu(self.fc1(self.layer_norms[1](x))))


class _RefEncoder(nn.Module):
    def __init__(self, d, heads, layers, attn_mask):
        super().__init__()
        self.scale = math.sqrt(d)
        self.layers = nn.ModuleList([_RefLayer(d, heads, attn_mask) for _ in range(layers)])
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, x, x_k=None, x_v=None):
        x = self.scale * x  # no positional embedding in MMSA v2
        if x_k is not None:
            x_k, x_v = self.scale * x_k, self.scale * x_v
        for layer in self.layers:
            x = layer(x, x_k, x_v)
        return self.layer_norm(x)


class _RefMULT(nn.Module):
    def __init__(self, dims, d, heads, nlevels, kernels, attn_mask=True):
        super().__init__()
        self.dims, self.d = dims, d
        for m, D, k in zip("lav", dims, kernels):  # registered even when unused
            setattr(self, f"proj_{m}", nn.Conv1d(D, d, kernel_size=k, padding=0, bias=False))
        for t, s in ("la", "lv", "al", "av", "vl", "va"):
            setattr(self, f"trans_{t}_with_{s}", _RefEncoder(d, heads, nlevels, attn_mask))
        for t in "lav":
            setattr(self, f"trans_{t}_mem", _RefEncoder(2 * d, heads, max(nlevels, 3), attn_mask))
        self.proj1 = nn.Linear(6 * d, 6 * d)
        self.proj2 = nn.Linear(6 * d, 6 * d)
        self.out_layer = nn.Linear(6 * d, 1)

    def forward(self, text, audio, video):  # batch-first padded inputs, eval mode
        seq = {}
        for m, x, D in zip("lav", (text, audio, video), self.dims):
            x = x.transpose(1, 2)
            if D != self.d:
                x = getattr(self, f"proj_{m}")(x)
            seq[m] = x.permute(2, 0, 1)  # (L, B, d)
        lasts = []
        for t, sources in (("l", "av"), ("a", "lv"), ("v", "la")):
            h = torch.cat([getattr(self, f"trans_{t}_with_{s}")(seq[t], seq[s], seq[s])
                           for s in sources], dim=2)
            lasts.append(getattr(self, f"trans_{t}_mem")(h)[-1])  # last (padded) step
        last = torch.cat(lasts, dim=1)
        return self.out_layer(self.proj2(F.relu(self.proj1(last))) + last)


def _mult(**kw):
    return MulT(d_model=12, num_heads=3, nlevels=2, kernel_sizes=(3, 1, 2), **kw)


@pytest.mark.parametrize("dims", [DIMS, (20, 12, 14)], ids=["projected", "audio-unprojected"])
def test_mult_reference_forward(dims):
    est = _mult()
    assert variant_of(est) == "reference"
    torch.manual_seed(0)
    module = est.build_module(dims, LENS).eval()
    ref = _RefMULT(dims, 12, 3, 2, (3, 1, 2)).eval()
    ref.load_state_dict(module.state_dict())  # strict: same names and shapes
    X = _inputs(dims=dims)
    inputs = _to_tensors(est._prepare_inputs(X))
    assert not any(k.endswith("_lengths") for k in inputs)  # the reference has no lengths
    with torch.no_grad():
        got = module(**inputs).reshape(-1)
        want = ref(*(_t(X[m]) for m in MODS)).reshape(-1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_mult_parameter_count_at_sims_shapes():
    module = MulT().build_module(SIMS_DIMS, SIMS_LENS)
    ref = _RefMULT(SIMS_DIMS, 50, 10, 2, (5, 1, 1))
    ref.load_state_dict(module.state_dict())
    assert count_parameters(module) == count_parameters(ref) == 1_870_701


def _counting(monkeypatch):
    """Count SimsNet's optimizer steps and the clip-by-value calls."""
    clips, steps = [], []
    clip, apply_step = torch.nn.utils.clip_grad_value_, SimsNet._apply_step

    def counted_clip(params, value):
        clips.append(value)
        return clip(params, value)

    def counted_step(self):
        steps.append(1)
        return apply_step(self)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_value_", counted_clip)
    monkeypatch.setattr(SimsNet, "_apply_step", counted_step)
    return clips, steps


@pytest.mark.parametrize("cls, params", [
    (MulT, dict(d_model=8, num_heads=2, nlevels=1, accumulation_steps=2)),
    (MISA, dict(hidden_size=8, update_epochs=2)),
], ids=["MulT", "MISA"])
def test_clip_per_backward_and_tail_dropped(cls, params, tiny, monkeypatch):
    """48 training rows in batches of 16 with accumulation over 2 batches: the
    reference clips after each of the 3 backward passes and steps once (the
    third batch's gradients are dropped); corrected: 2 steps, 2 clips."""
    clips, steps = _counting(monkeypatch)
    assert tiny["train"].n_samples == 48
    for variant, n_clips, n_steps in (("reference", 3, 1), ("corrected", 2, 2),
                                      ("reference+accumulation_tail", 3, 2)):
        est = apply_variant(cls(**params, batch_size=16, n_threads=1), variant)
        est.set_params(max_epochs=1, random_state=0)
        del clips[:], steps[:]
        est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
                y_valid=tiny.y("valid"))
        assert (len(clips), len(steps)) == (n_clips, n_steps), variant


def test_self_mm_tail_dropped_without_clipping(tiny, monkeypatch):
    clips, steps = _counting(monkeypatch)
    for variant, n_steps in (("reference", 0), ("corrected", 1)):
        est = apply_variant(SelfMM(**SelfMM._tiny_params), variant)
        est.set_params(update_epochs=4, max_epochs=1, random_state=0)  # 3 batches < 4
        del steps[:]
        est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
                y_valid=tiny.y("valid"))
        assert len(steps) == n_steps, variant
    assert clips == []


def test_mult_optimizer_is_one_group_without_decay(tiny):
    est = _mult(max_epochs=1, random_state=0, n_threads=1)
    est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    groups = est.net_.optimizer_.param_groups
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0
    assert groups[0]["lr"] == pytest.approx(2e-3)
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in est.net_.module_.parameters()}


@pytest.mark.parametrize("cls, name", [(MulT, "lr_plateau"), (MMIM, "lr_scheduler")])
def test_schedulers_follow_the_selected_valid_loss(cls, name):
    # MMSA's MULT and MMIM trainers step ReduceLROnPlateau on val_results['Loss'],
    # the rounded batch mean that also selects the epoch.
    assert dict(cls()._callbacks())[name].monitor == "valid_loss_reference"
    assert dict(cls(selection="weighted")._callbacks())[name].monitor == "valid_loss"


# ===========================================================================
# MISA -- MMSA src/MMSA/models/singleTask/MISA.py, losses from
# src/MMSA/trains/singleTask/MISA.py.  BERT's masked mean over the real tokens
# is taken from the precomputed features; audio and vision are read for the
# text's length.

class _RefMISA(nn.Module):
    def __init__(self, dims, hidden):
        super().__init__()
        t, a, v = dims
        self.vrnn1 = nn.LSTM(v, v, bidirectional=True)
        self.vrnn2 = nn.LSTM(2 * v, v, bidirectional=True)
        self.arnn1 = nn.LSTM(a, a, bidirectional=True)
        self.arnn2 = nn.LSTM(2 * a, a, bidirectional=True)
        for m, size in (("t", t), ("v", 4 * v), ("a", 4 * a)):
            setattr(self, f"project_{m}", _seq(
                (f"project_{m}", nn.Linear(size, hidden)),
                (f"project_{m}_activation", nn.ReLU()),
                (f"project_{m}_layer_norm", nn.LayerNorm(hidden))))
        for m, i in (("t", 1), ("v", 1), ("a", 3)):  # sic: private_a_3
            setattr(self, f"private_{m}", _seq(
                (f"private_{m}_{i}", nn.Linear(hidden, hidden)),
                (f"private_{m}_activation_{i}", nn.Sigmoid())))
        self.shared = _seq(("shared_1", nn.Linear(hidden, hidden)),
                           ("shared_activation_1", nn.Sigmoid()))
        for m in "tva":
            setattr(self, f"recon_{m}", _seq((f"recon_{m}_1", nn.Linear(hidden, hidden))))
        self.sp_discriminator = _seq(("sp_discriminator_layer_1", nn.Linear(hidden, 4)))
        self.fusion = _seq(("fusion_layer_1", nn.Linear(6 * hidden, 3 * hidden)),
                           ("fusion_layer_1_dropout", nn.Dropout(0.0)),
                           ("fusion_layer_1_activation", nn.ReLU()),
                           ("fusion_layer_3", nn.Linear(3 * hidden, 1)))
        self.tlayer_norm = nn.LayerNorm(2 * t)  # registered, never used
        self.vlayer_norm = nn.LayerNorm(2 * v)
        self.alayer_norm = nn.LayerNorm(2 * a)
        self.transformer_encoder = nn.TransformerEncoder(  # parameters only
            nn.TransformerEncoderLayer(d_model=hidden, nhead=2), num_layers=1,
            enable_nested_tensor=False)

    @staticmethod
    def _extract(x, lengths, rnn1, rnn2, norm):
        reps = []
        for i, n in enumerate(lengths):
            out1, (h1, _) = rnn1(x[i, :int(n)].unsqueeze(1))
            _, (h2, _) = rnn2(norm(out1))
            # (2, 1, 2D) -> [h1 fwd, h2 fwd, h1 bwd, h2 bwd]
            reps.append(torch.cat((h1, h2), dim=2).permute(1, 0, 2).reshape(1, -1))
        return torch.cat(reps)

    def _fuse(self, h):  # torch's TransformerEncoderLayer: post-norm, ReLU, eval
        layer = self.transformer_encoder.layers[0]
        S, B, d = h.shape
        H = 2
        hd = d // H
        q, k, v = F.linear(h, layer.self_attn.in_proj_weight,
                           layer.self_attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(S, B * H, hd).transpose(0, 1) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), dim=-1) @ v
        a = layer.self_attn.out_proj(a.transpose(0, 1).reshape(S, B, d))
        h = layer.norm1(h + a)
        return layer.norm2(h + layer.linear2(F.relu(layer.linear1(h))))

    def forward(self, text, text_lengths, audio, vision):
        real = (torch.arange(text.shape[1])[None, :] < text_lengths[:, None]).float()
        utt = {"t": (text * real[..., None]).sum(1) / real.sum(1, keepdim=True)}
        utt["v"] = self._extract(vision, text_lengths, self.vrnn1, self.vrnn2, self.vlayer_norm)
        utt["a"] = self._extract(audio, text_lengths, self.arnn1, self.arnn2, self.alayer_norm)
        self.orig = {m: getattr(self, f"project_{m}")(u) for m, u in utt.items()}
        self.private = {m: getattr(self, f"private_{m}")(o) for m, o in self.orig.items()}
        self.shared_ = {m: self.shared(o) for m, o in self.orig.items()}
        self.recon = {m: getattr(self, f"recon_{m}")(self.private[m] + self.shared_[m])
                      for m in "tva"}
        h = torch.stack([self.private[m] for m in "tva"] + [self.shared_[m] for m in "tva"])
        h = self._fuse(h)
        return self.fusion(torch.cat(list(h), dim=1))


def _misa_name(name):
    """simsbench MISA parameter name -> the reference's."""
    rules = [
        (r"^extract_([av])\.rnn(\d)\.", r"\1rnn\2."),
        (r"^extract_([av])\.layer_norm\.", r"\1layer_norm."),
        (r"^project_(\w)\.0\.", r"project_\1.project_\1."),
        (r"^project_(\w)\.2\.", r"project_\1.project_\1_layer_norm."),
        (r"^private_a\.0\.", "private_a.private_a_3."),
        (r"^private_(\w)\.0\.", r"private_\1.private_\1_1."),
        (r"^shared\.0\.", "shared.shared_1."),
        (r"^recon_(\w)\.", r"recon_\1.recon_\1_1."),
        (r"^sp_discriminator\.", "sp_discriminator.sp_discriminator_layer_1."),
        (r"^fusion\.0\.", "fusion.fusion_layer_1."),
        (r"^fusion\.3\.", "fusion.fusion_layer_3."),
    ]
    for pat, rep in rules:
        new = re.sub(pat, rep, name)
        if new != name:
            return new
    return name


def _load_renamed(ref, module, rename):
    ref.load_state_dict({rename(k): v for k, v in module.state_dict().items()})  # strict


def _misa_diff(x1, x2):
    x1, x2 = x1 - x1.mean(0), x2 - x2.mean(0)
    x1 = x1 / (x1.norm(dim=1, keepdim=True).detach() + 1e-6)
    x2 = x2 / (x2.norm(dim=1, keepdim=True).detach() + 1e-6)
    return ((x1.t() @ x2) ** 2).mean()


def _misa_cmd(x1, x2, moments=5):
    m1, m2 = x1.mean(0), x2.mean(0)
    total = (m1 - m2).pow(2).sum().sqrt()
    for k in range(2, moments + 1):
        total = total + ((x1 - m1).pow(k).mean(0) - (x2 - m2).pow(k).mean(0)).pow(2).sum().sqrt()
    return total


def test_misa_reference_forward_and_auxiliary_losses():
    est = MISA(hidden_size=8)
    assert variant_of(est) == "reference"
    torch.manual_seed(0)
    module = est.build_module(DIMS, LENS)
    ref = _RefMISA(DIMS, 8)
    _load_renamed(ref, module, _misa_name)
    X = _inputs()
    inputs = _to_tensors(est._prepare_inputs(X))
    for m in ("audio", "vision"):  # packed with the text lengths
        np.testing.assert_array_equal(inputs[f"{m}_lengths"], X["text_lengths"])
    args = (_t(X["text"]), _t(X["text_lengths"]), _t(X["audio"]), _t(X["vision"]))
    with torch.no_grad():
        got, aux = module.eval()(**inputs)
        want = ref.eval()(*args).reshape(-1)
    assert aux is None
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # Training-mode auxiliary losses (no dropout before the codes): the
    # reference trainer's diff_weight * L_diff + sim_weight * L_CMD +
    # recon_weight * L_recon.
    with torch.no_grad():
        _, aux = module.train()(**inputs)
    p, s = ref.private, ref.shared_
    diff = sum(_misa_diff(p[m], s[m]) for m in "tva") + _misa_diff(p["a"], p["t"]) \
        + _misa_diff(p["a"], p["v"]) + _misa_diff(p["t"], p["v"])
    cmd = (_misa_cmd(s["t"], s["v"]) + _misa_cmd(s["t"], s["a"]) + _misa_cmd(s["a"], s["v"])) / 3
    recon = sum(((ref.recon[m] - ref.orig[m]) ** 2).mean() for m in "tva") / 3
    torch.testing.assert_close(aux, 0.3 * diff + 1.0 * cmd + 0.8 * recon, rtol=1e-5, atol=1e-6)


def test_misa_av_lengths_correction():
    X = _inputs()
    own = apply_variant(MISA(hidden_size=8), "reference+av_lengths")._prepare_inputs(X)
    for m in ("audio", "vision"):
        np.testing.assert_array_equal(own[f"{m}_lengths"], X[f"{m}_lengths"])
    # text lengths beyond a modality's padded length are clipped to it
    short = dict(X, vision=X["vision"][:, :4])
    ref = MISA(hidden_size=8)._prepare_inputs(short)
    np.testing.assert_array_equal(ref["vision_lengths"], np.minimum(X["text_lengths"], 4))
    with pytest.raises(ValueError, match="The 'av_lengths' parameter of MISA must be"):
        MISA(av_lengths="audio").build_module(SIMS_DIMS, SIMS_LENS)


def test_misa_parameter_count_and_optimizer(tiny):
    module = MISA().build_module(SIMS_DIMS, SIMS_LENS)
    ref = _RefMISA(SIMS_DIMS, 128)
    _load_renamed(ref, module, _misa_name)
    assert count_parameters(module) == count_parameters(ref) == 21_664_749
    est = MISA(hidden_size=8, max_epochs=1, random_state=0, n_threads=1)
    est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    groups = est.net_.optimizer_.param_groups  # one group, no weight decay
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0
    assert groups[0]["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in est.net_.module_.parameters()}


# ===========================================================================
# MMIM -- MMSA src/MMSA/models/singleTask/MMIM.py (RNNEncoder, MMILB, CPC,
# Fusion), optimizers from src/MMSA/trains/singleTask/MMIM.py.  Text: [CLS].

class _RefRNNEncoder(nn.Module):
    def __init__(self, in_size, hidden, out, layers):
        super().__init__()
        self.rnn = nn.LSTM(in_size, hidden, num_layers=layers, bidirectional=True)
        self.linear_1 = nn.Linear(2 * hidden, out)

    def forward(self, x, lengths):
        h = _per_clip_lstm(self.rnn, x, lengths)
        return self.linear_1(torch.cat((h[0], h[1]), dim=-1))  # the first layer's states


class _RefMMILB(nn.Module):
    def __init__(self, x_size, y_size):
        super().__init__()
        self.mlp_mu = nn.Sequential(nn.Linear(x_size, y_size), nn.ReLU(),
                                    nn.Linear(y_size, y_size))
        self.mlp_logvar = nn.Sequential(nn.Linear(x_size, y_size), nn.ReLU(),
                                        nn.Linear(y_size, y_size))
        self.entropy_prj = nn.Sequential(nn.Linear(y_size, y_size // 4), nn.Tanh())

    def forward(self, x, y, labels=None, mem=None):
        mu, logvar = self.mlp_mu(x), self.mlp_logvar(x)  # no last activation
        lld = (-(mu - y) ** 2 / 2.0 / torch.exp(logvar)).sum(-1).mean()
        if labels is None:
            return lld, None, 0.0
        z = self.entropy_prj(y)
        pn = {"pos": z[labels > 0], "neg": z[labels < 0]}
        H = 0.0
        if mem is not None:
            logdets = []
            for s in ("pos", "neg"):
                rows = torch.cat([*mem[s], pn[s]])
                c = rows - rows.mean(0)
                cov = torch.stack([torch.outer(r, r) for r in c]).mean(0)
                logdets.append(torch.logdet(cov))
            H = 0.25 * (logdets[0] + logdets[1])
        return lld, pn, H


class _RefMMIM(nn.Module):
    def __init__(self, dims, d_h, d_out, d_prjh, layers):
        super().__init__()
        t, a, v = dims
        self.acoustic_enc = _RefRNNEncoder(a, d_h, d_out, layers)
        self.visual_enc = _RefRNNEncoder(v, d_h, d_out, layers)
        self.mi_tv = _RefMMILB(t, d_out)
        self.mi_ta = _RefMMILB(t, d_out)
        self.cpc_zt = nn.ModuleDict({"net": nn.Linear(d_prjh, t)})
        self.cpc_zv = nn.ModuleDict({"net": nn.Linear(d_prjh, d_out)})
        self.cpc_za = nn.ModuleDict({"net": nn.Linear(d_prjh, d_out)})
        self.fusion_prj = nn.ModuleDict({
            "linear_1": nn.Linear(t + 2 * d_out, d_prjh),
            "linear_2": nn.Linear(d_prjh, d_prjh),
            "linear_3": nn.Linear(d_prjh, 1)})

    @staticmethod
    def _nce(cpc, x, fusion):
        x_pred = cpc["net"](fusion)
        x_pred = x_pred / x_pred.norm(dim=1, keepdim=True)
        x = x / x.norm(dim=1, keepdim=True)
        pos = (x * x_pred).sum(-1)
        neg = torch.logsumexp(x @ x_pred.t(), dim=-1)
        return -(pos - neg).mean()

    def forward(self, text_cls, audio, a_len, vision, v_len, labels=None, mem=None):
        t = text_cls
        a = self.acoustic_enc(audio, a_len)
        v = self.visual_enc(vision, v_len)
        m = mem or {"tv": None, "ta": None}
        lld_tv, pn_tv, H_tv = self.mi_tv(t, v, labels, m["tv"])
        lld_ta, pn_ta, H_ta = self.mi_ta(t, a, labels, m["ta"])
        f = self.fusion_prj
        fusion = torch.tanh(f["linear_2"](torch.tanh(f["linear_1"](torch.cat([t, a, v], 1)))))
        nce = (self._nce(self.cpc_zt, t, fusion) + self._nce(self.cpc_zv, v, fusion)
               + self._nce(self.cpc_za, a, fusion))
        return {"M": f["linear_3"](fusion).reshape(-1), "lld": lld_tv + lld_ta, "nce": nce,
                "H": H_tv + H_ta, "pn": {"tv": pn_tv, "ta": pn_ta}}


def _mmim_tiny(**kw):
    return MMIM(d_ah=6, d_vh=6, d_aout=8, d_vout=8, d_prjh=10, **kw)


@pytest.mark.parametrize("n_layer", [1, 2])
def test_mmim_reference_forward_and_bounds(n_layer):
    est = _mmim_tiny(n_layer=n_layer)
    assert variant_of(est) == "reference"
    torch.manual_seed(0)
    module = est.build_module(DIMS, LENS).eval()
    ref = _RefMMIM(DIMS, 6, 8, 10, n_layer).eval()
    ref.load_state_dict(module.state_dict())  # the reference's names
    X1, X2 = _inputs(n=12, seed=1), _inputs(n=12, seed=2)
    rng = np.random.RandomState(0)
    labels = [torch.tensor(rng.choice([-0.8, -0.4, 0.0, 0.4, 0.8], size=12), dtype=torch.float32)
              for _ in range(2)]
    with torch.no_grad():
        outs, refs, mem, rmem = [], [], None, None
        for X, y in zip((X1, X2), labels):
            inputs = _to_tensors(est._prepare_inputs(X))
            pred, extras = module(labels=y, mem=mem, **inputs)
            r = ref(_t(X["text"][:, 0]), _t(X["audio"]), X["audio_lengths"], _t(X["vision"]),
                    X["vision_lengths"], labels=y, mem=rmem)
            outs.append((pred, extras))
            refs.append(r)
            mem = {k: {s: [pn[s]] for s in ("pos", "neg")} for k, pn in extras["pn"].items()}
            rmem = {k: {s: [pn[s]] for s in ("pos", "neg")} for k, pn in r["pn"].items()}
    for (pred, extras), r in zip(outs, refs):
        torch.testing.assert_close(pred, r["M"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(extras["lld"], r["lld"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(extras["nce"], r["nce"], rtol=1e-5, atol=1e-5)
    assert outs[0][1]["H"] is None  # no memory yet
    assert torch.isfinite(refs[1]["H"])
    torch.testing.assert_close(outs[1][1]["H"], refs[1]["H"], rtol=1e-4, atol=1e-5)


def test_mmim_entropy_guard_correction():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 5, generator=g), torch.randn(6, 8, generator=g)
    labels = torch.tensor([1.0, 1.0, -1.0, -1.0, -1.0, -1.0])
    mem = {"pos": [torch.zeros(0, 2)], "neg": [torch.zeros(0, 2)]}
    # one positive row in memory + batch -> 1 < 2 dims: a singular covariance
    one_pos = labels.clone()
    one_pos[1] = -1.0
    ref_mi, guarded = MMILB(5, 8), MMILB(5, 8, entropy_guard=True)
    guarded.load_state_dict(ref_mi.state_dict())
    with torch.no_grad():
        _, _, H = ref_mi(x, y, labels=one_pos, mem=mem)
        assert not torch.isfinite(H)  # the reference's -inf / NaN
        assert guarded(x, y, labels=one_pos, mem=mem)[2] is None
        # enough distinct rows on both sides: both agree
        x2, y2 = torch.randn(6, 5, generator=g), torch.randn(6, 8, generator=g)
        pn = ref_mi(x2, y2, labels=labels.flip(0))[1]
        full = {s: [pn[s]] for s in ("pos", "neg")}
        H = ref_mi(x, y, labels, full)[2]
        assert torch.isfinite(H)
        torch.testing.assert_close(H, guarded(x, y, labels, full)[2])


def test_mmim_parameter_count_optimizers_and_frozen_projection(tiny):
    module = MMIM().build_module(SIMS_DIMS, SIMS_LENS)
    ref = _RefMMIM(SIMS_DIMS, 16, 16, 128, 1)
    ref.load_state_dict(module.state_dict())
    assert count_parameters(module) == count_parameters(ref) == 373_449
    est = MMIM(**MMIM._tiny_params).set_params(max_epochs=1, random_state=0)
    torch.manual_seed(est.random_state)
    init = est.build_module(tiny.feature_dims, tiny.seq_lens).state_dict()
    est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    net = est.net_
    named = dict(net.module_.named_parameters())
    # the reference's partition: names containing "mi" -> the MMILB optimizer
    mi = {id(p) for n, p in named.items() if "mi" in n}
    assert {id(p) for g in net.optimizer_mmilb_.param_groups for p in g["params"]} == mi
    main = [p for g in net.optimizer_.param_groups for p in g["params"]]
    assert {id(p) for p in main} == {id(p) for p in named.values()} - mi
    assert [(g["lr"], g["weight_decay"]) for g in net.optimizer_.param_groups] == [(1e-3, 1e-4)]
    g = net.optimizer_mmilb_.param_groups[0]
    assert (g["lr"], g["weight_decay"]) == (1e-3, 1e-4)
    now = net.module_.state_dict()
    for k in ("mi_tv.entropy_prj.0.weight", "mi_ta.entropy_prj.0.bias"):
        torch.testing.assert_close(now[k], init[k], rtol=0, atol=0)  # never stepped
    assert not torch.equal(now["mi_tv.mlp_mu.0.weight"], init["mi_tv.mlp_mu.0.weight"])


# ===========================================================================
# Self-MM -- MMSA src/MMSA/models/multiTask/SELF_MM.py, label generation from
# src/MMSA/trains/multiTask/SELF_MM.py.  Text: [CLS].

class _RefSelfMM(nn.Module):
    def __init__(self, dims, a_h, v_h, a_out, v_out, post):
        super().__init__()
        t, a, v = dims
        self.audio_model = nn.ModuleDict({"rnn": nn.LSTM(a, a_h),
                                          "linear_1": nn.Linear(a_h, a_out)})
        self.video_model = nn.ModuleDict({"rnn": nn.LSTM(v, v_h),
                                          "linear_1": nn.Linear(v_h, v_out)})
        widths = {"fusion": t + a_out + v_out, "text": t, "audio": a_out, "video": v_out}
        for head, d in zip(("fusion", "text", "audio", "video"), post):
            setattr(self, f"post_{head}_layer_1", nn.Linear(widths[head], d))
            setattr(self, f"post_{head}_layer_2", nn.Linear(d, d))
            setattr(self, f"post_{head}_layer_3", nn.Linear(d, 1))

    def forward(self, text_cls, audio, a_len, vision, v_len):
        a = self.audio_model["linear_1"](_per_clip_lstm(self.audio_model["rnn"], audio, a_len)[0])
        v = self.video_model["linear_1"](_per_clip_lstm(self.video_model["rnn"], vision, v_len)[0])
        outs, feats = {}, {}
        for head, x in (("fusion", torch.cat([text_cls, a, v], -1)), ("text", text_cls),
                        ("audio", a), ("video", v)):
            feats[head] = F.relu(getattr(self, f"post_{head}_layer_1")(x))
            hidden = F.relu(getattr(self, f"post_{head}_layer_2")(feats[head]))
            outs[head] = getattr(self, f"post_{head}_layer_3")(hidden).reshape(-1)
        return outs, feats


def _self_mm_name(name):
    return re.sub(r"^post_(\w+)\.layer_(\d)\.", r"post_\1_layer_\2.", name)


def _self_mm_tiny(**kw):
    return SelfMM(a_lstm_hidden_size=5, v_lstm_hidden_size=7, audio_out=4, vision_out=6,
                  post_fusion_dim=9, post_text_dim=8, post_audio_dim=3, post_vision_dim=5, **kw)


def test_self_mm_reference_forward():
    est = _self_mm_tiny()
    assert variant_of(est) == "reference"
    torch.manual_seed(0)
    module = est.build_module(DIMS, LENS).eval()
    ref = _RefSelfMM(DIMS, 5, 7, 4, 6, (9, 8, 3, 5)).eval()
    _load_renamed(ref, module, _self_mm_name)
    X = _inputs()
    inputs = _to_tensors(est._prepare_inputs(X))
    with torch.no_grad():
        m, t, a, v, feats = module(**inputs)
        outs, rfeats = ref(_t(X["text"][:, 0]), _t(X["audio"]), X["audio_lengths"],
                           _t(X["vision"]), X["vision_lengths"])
    for got, head in ((m, "fusion"), (t, "text"), (a, "audio"), (v, "video")):
        torch.testing.assert_close(got, outs[head], rtol=1e-5, atol=1e-5)
    for key, head in (("fusion", "fusion"), ("text", "text"), ("audio", "audio"),
                      ("vision", "video")):
        torch.testing.assert_close(feats[key], rfeats[head], rtol=1e-5, atol=1e-5)


def test_self_mm_label_update_matches_reference_formula():
    g = torch.Generator().manual_seed(0)
    n, idx = 10, torch.tensor([1, 4, 7, 8])
    net = SelfMMNet.__new__(SelfMMNet)  # only the ULGM state is needed
    net.ulgm_H, net.exclude_zero = 1.0, True
    y = torch.tensor([-0.8, 0.2, -0.4, 0.6, 1.0, -1.0, 0.0, 0.4, -0.2, 0.8])
    net.ulgm_labels_ = {k: y.clone() for k in ("fusion", "text", "audio", "vision")}
    net.ulgm_labels_["audio"][idx] = torch.tensor([0.5, -0.3, 0.9, -0.9])
    dims = {"fusion": 6, "text": 4, "audio": 3, "vision": 5}
    bank = {k: torch.rand(n, d, generator=g) for k, d in dims.items()}
    feats = {k: torch.rand(len(idx), d, generator=g) for k, d in dims.items()}
    net.ulgm_features_ = {k: b.clone() for k, b in bank.items()}
    net._update_bank({k: b[idx] for k, b in bank.items()}, idx)  # centres from the bank
    before = {k: v.clone() for k, v in net.ulgm_labels_.items()}
    epoch = 3
    net._update_labels(feats, idx, epoch)
    # the reference's update_centers / update_labels, restated
    centre = {k: {"pos": bank[k][before[k] > 0].mean(0), "neg": bank[k][before[k] < 0].mean(0)}
              for k in dims}

    def delta(k):
        d_p = (feats[k] - centre[k]["pos"]).norm(dim=-1)
        d_n = (feats[k] - centre[k]["neg"]).norm(dim=-1)
        return (d_n - d_p) / (d_p + 1e-8)

    y_f = before["fusion"][idx]
    for k in ("text", "audio", "vision"):
        new = 0.5 * delta(k) / (delta("fusion") + 1e-8) * y_f \
            + 0.5 * (y_f + delta(k) - delta("fusion"))
        new = new.clamp(-1.0, 1.0)
        want = (epoch - 1) / (epoch + 1) * before[k][idx] + 2 / (epoch + 1) * new
        torch.testing.assert_close(net.ulgm_labels_[k][idx], want)
    torch.testing.assert_close(net.ulgm_labels_["fusion"], y)  # never updated


def test_self_mm_parameter_count_and_optimizer_groups(tiny):
    module = SelfMM().build_module(SIMS_DIMS, SIMS_LENS)
    ref = _RefSelfMM(SIMS_DIMS, 16, 64, 16, 32, (128, 64, 16, 32))
    _load_renamed(ref, module, _self_mm_name)
    assert count_parameters(module) == count_parameters(ref) == 381_380
    est = SelfMM(**SelfMM._tiny_params).set_params(max_epochs=1, random_state=0)
    est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    mod, groups = est.net_.module_, est.net_.optimizer_.param_groups
    by_group = [({id(p) for p in g["params"]}, g["lr"], g["weight_decay"]) for g in groups]
    ids = {name: {id(p) for p in getattr(mod, name).parameters()}
           for name in ("audio_model", "video_model")}
    rest = {id(p) for p in mod.parameters()} - ids["audio_model"] - ids["video_model"]
    # features variant: the two BERT groups are empty, the other three are the reference's
    assert by_group == [(ids["audio_model"], 5e-3, 1e-2), (ids["video_model"], 5e-3, 1e-2),
                        (rest, 1e-3, 1e-3)]


# ===========================================================================
# variants

@pytest.mark.parametrize("cls, names", [
    (MulT, {"key_padding_mask", "positional_embedding", "clip_per", "accumulation_tail"}),
    (MISA, {"av_lengths", "clip_per", "accumulation_tail"}),
    (MMIM, {"entropy_guard", "final_state_layer"}),
    (SelfMM, {"accumulation_tail"}),
], ids=["MulT", "MISA", "MMIM", "SelfMM"])
def test_variants_and_corrected_fit(cls, names, tiny):
    assert {c.name for c in corrections(cls)} == names | {"selection", "epoch_cap"}
    assert variant_of(cls()) == "reference"
    assert variant_of(apply_variant(cls(), "corrected")) == "corrected"
    for corr in corrections(cls):  # every parameter defaults to its reference value
        for param, (reference, _) in corr.params.items():
            assert cls().get_params()[param] == reference
    est = apply_variant(cls(**cls._tiny_params), "corrected").set_params(
        max_epochs=2, random_state=0)
    est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    assert np.all(np.isfinite(est.predict(tiny.X("test"))))
