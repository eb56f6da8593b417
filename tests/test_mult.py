"""MulT: parameter counts, equivalence with a plain padded transcription of
the reference forward pass, key-padding semantics, dropout mask, training."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # deep tests skip cleanly without torch

import math

import numpy as np
import torch
import torch.nn.functional as F

from simsbench.estimators import MulT
from simsbench.estimators._deep import count_parameters
from simsbench.estimators.modules import _transformer as T
from simsbench.estimators.modules._transformer import dropout_keep_mask, sinusoidal_positions

SIMS_DIMS, SIMS_LENS = (768, 33, 709), (39, 400, 55)
V2_DIMS, V2_LENS = (768, 25, 177), (50, 925, 232)
V2_PARAMS = dict(d_model=30, num_heads=6, nlevels=4, kernel_sizes=(5, 3, 1))


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_parameter_count_sims():
    est = MulT()
    assert count_parameters(est.build_module(SIMS_DIMS, SIMS_LENS)) == 1_870_701


def test_parameter_count_simsv2_config():
    est = MulT(**V2_PARAMS)
    assert count_parameters(est.build_module(V2_DIMS, V2_LENS)) == 985_141


# ---------------------------------------------------------------------------
# a direct, padded, time-first transcription of the reference forward pass
# (bmm + softmax attention, offset future mask from the padded lengths,
# last padded step), evaluated with the module's own weights.

def _ref_encoder(enc, x, x_kv=None, positions=False):
    d = enc.embed_dim

    def embed(t):
        e = math.sqrt(d) * t
        if positions:
            pos = torch.arange(1, t.shape[0] + 1)
            e = e + sinusoidal_positions(pos, d)[:, None, :]
        return e

    x = embed(x)
    kv = None if x_kv is None else embed(x_kv)
    for layer in enc.layers:
        H = layer.num_heads
        hd = d // H
        W, b = layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias
        ln0 = layer.layer_norms[0]
        res = x
        h = ln0(x)
        if kv is None:
            q, k, v = F.linear(h, W, b).chunk(3, dim=-1)
        else:
            q = F.linear(h, W[:d], b[:d])
            k = F.linear(ln0(kv), W[d:2 * d], b[d:2 * d])
            v = F.linear(ln0(kv), W[2 * d:], b[2 * d:])
        Lq, B, _ = q.shape
        Lk = k.shape[0]
        q = (q * hd ** -0.5).contiguous().view(Lq, B * H, hd).transpose(0, 1)
        k = k.contiguous().view(Lk, B * H, hd).transpose(0, 1)
        v = v.contiguous().view(Lk, B * H, hd).transpose(0, 1)
        w = torch.bmm(q, k.transpose(1, 2))
        if layer.attn_mask:
            fut = torch.triu(torch.full((Lq, Lk), float("-inf")), 1 + abs(Lk - Lq))
            w = w + fut[None]
        a = torch.bmm(torch.softmax(w, -1), v).transpose(0, 1).reshape(Lq, B, d)
        x = res + layer.self_attn.out_proj(a)
        x = x + layer.fc2(torch.relu(layer.fc1(layer.layer_norms[1](x))))
    return enc.layer_norm(x)


def _ref_forward(mod, X, positions=False):
    short = {"text": "l", "audio": "a", "vision": "v"}
    mods = mod.modalities
    proj = {m: getattr(mod, f"proj_{short[m]}")(X[m].transpose(1, 2)).permute(2, 0, 1)
            for m in mods}
    lasts = []
    for t in mods:
        hs = [_ref_encoder(getattr(mod, f"trans_{short[t]}_with_{short[s]}"), proj[t], proj[s],
                           positions) for s in mods if s != t]
        h = _ref_encoder(getattr(mod, f"trans_{short[t]}_mem"), torch.cat(hs, -1),
                         positions=positions)
        lasts.append(h[-1])
    last = torch.cat(lasts, -1)
    return mod.out_layer(mod.proj2(torch.relu(mod.proj1(last))) + last).reshape(-1)


def _batch(B=5, lens=(9, 30, 12), dims=(20, 6, 14), seed=0):
    g = torch.Generator().manual_seed(seed)
    X = {}
    for m, L, D in zip(("text", "audio", "vision"), lens, dims):
        n = torch.randint(max(1, L // 3), L + 1, (B,), generator=g)
        n[0] = L  # one clip with no padding
        x = torch.randn(B, L, D, generator=g) * (torch.arange(L)[None, :, None] < n[:, None, None])
        X[m], X[f"{m}_lengths"] = x, n
    return X


def _module(**kw):
    params = dict(d_model=12, num_heads=3, nlevels=2, kernel_sizes=(3, 1, 2), **kw)
    torch.manual_seed(0)
    mod = MulT(**params).build_module((20, 6, 14), (9, 30, 12))
    return mod.eval()


def test_padded_mode_matches_reference_transcription():
    mod = _module(key_padding_mask=False, positional_embedding=False)
    X = _batch()
    Xpad = {m: X[m] for m in ("text", "audio", "vision")}  # the reference ignores lengths
    with torch.no_grad():
        got = mod(**Xpad).reshape(-1)
        want = _ref_forward(mod, Xpad)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("overhead", [0, 10**9])  # padded batched / per-clip attention
def test_key_padding_equals_each_clip_without_padding(overhead, monkeypatch):
    monkeypatch.setattr(T, "PER_SAMPLE_OVERHEAD", overhead)
    mod = _module(key_padding_mask=True, positional_embedding=True)  # both corrections on
    X = _batch()
    with torch.no_grad():
        got = mod(**X).reshape(-1)
        want = []
        for i in range(X["text"].shape[0]):
            Xi = {m: X[m][i:i + 1, : int(X[f"{m}_lengths"][i])]
                  for m in ("text", "audio", "vision")}
            want.append(_ref_forward(mod, Xi, positions=True))
    torch.testing.assert_close(got, torch.cat(want), rtol=1e-4, atol=1e-5)
    # and the padding is irrelevant: more zero frames, same predictions
    Xmore = dict(X)
    for m in ("text", "audio", "vision"):
        Xmore[m] = F.pad(X[m], (0, 0, 0, 7))
    with torch.no_grad():
        torch.testing.assert_close(mod(**Xmore).reshape(-1), got, rtol=1e-5, atol=1e-6)


def test_reference_mode_depends_on_padding():
    # the reference attends to the zero padding, so extra padding changes outputs
    mod = _module(key_padding_mask=False, positional_embedding=False)
    X = {m: _batch()[m] for m in ("text", "audio", "vision")}
    Xmore = {m: F.pad(x, (0, 0, 0, 7)) for m, x in X.items()}
    with torch.no_grad():
        assert not torch.allclose(mod(**X), mod(**Xmore), atol=1e-4)


@pytest.mark.parametrize("mods", [("text", "audio"), ("audio", "vision"), ("vision",)])
def test_subsets_forward(mods):
    torch.manual_seed(0)
    est = MulT(d_model=12, num_heads=3, modalities=mods)
    mod = est.build_module((20, 6, 14), (9, 30, 12)).eval()
    X = _batch()
    inputs = {k: v for k, v in X.items() if k.split("_")[0] in mods}
    out = mod(**inputs)
    assert out.shape == (5, 1) and torch.isfinite(out).all()
    n_src = max(1, len(mods) - 1)
    assert mod.proj1.in_features == 12 * n_src * len(mods)
    if len(mods) == 1:
        assert hasattr(mod, "trans_v_self")


def test_dropout_keep_mask_rate_and_seed():
    torch.manual_seed(3)
    m1, scale = dropout_keep_mask((200, 1000), 0.2)
    torch.manual_seed(3)
    m2, _ = dropout_keep_mask((200, 1000), 0.2)
    assert torch.equal(m1, m2)
    rate = m1.float().mean().item()
    assert abs(rate - 0.8) < 0.005
    assert abs(scale * (round(0.8 * 65536) / 65536) - 1) < 1e-12
    m3, _ = dropout_keep_mask((200, 1000), 0.2)
    assert not torch.equal(m1, m3)


def test_training_mode_is_stochastic_eval_is_not():
    mod = _module()
    X = _batch()
    mod.train()
    torch.manual_seed(0)
    a = mod(**X)
    b = mod(**X)
    assert not torch.allclose(a, b)
    a.sum().backward()
    assert all(p.grad is not None for p in mod.parameters())
    mod.eval()
    with torch.no_grad():
        torch.testing.assert_close(mod(**X), mod(**X))


@pytest.mark.parametrize("bad, match", [
    (dict(d_model=10, num_heads=3), "num_heads"),
    (dict(kernel_sizes=(40, 1, 1)), "kernel_sizes"),
    (dict(attn_dropout=1.0), "attn_dropout"),
    (dict(accumulation_steps=0), "accumulation_steps"),
])
def test_invalid_params(bad, match):
    with pytest.raises(ValueError, match=match):
        MulT(**bad).build_module(SIMS_DIMS, SIMS_LENS)


def test_beats_mean_predictor(small):
    est = MulT(d_model=16, num_heads=4, accumulation_steps=1, batch_size=32,
               max_epochs=12, early_stop=4, random_state=0, n_threads=1)
    est.fit(small.X("train"), small.y("train"), X_valid=small.X("valid"),
            y_valid=small.y("valid"))
    y_tr, y_te = small.y("train"), small.y("test")
    pred = est.predict(small.X("test"))
    mae = np.mean(np.abs(pred - y_te))
    mae_mean = np.mean(np.abs(y_tr.mean() - y_te))
    corr = np.corrcoef(pred, y_te)[0, 1]
    assert mae < mae_mean, (mae, mae_mean)
    assert corr > 0.3, corr


def test_plateau_scheduler_follows_validation_loss(tiny):
    lr0 = 0.05
    est = MulT(**{**MulT._tiny_params, "max_epochs": 4}, lr_patience=0, learning_rate=lr0,
               random_state=0)
    est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    # ReduceLROnPlateau(min, factor 0.1, patience 0, rel. threshold 1e-4), replayed
    best, lr = np.inf, lr0
    for v in est.valid_loss_curve_:
        if v < best * (1 - 1e-4):
            best = v
        else:
            lr *= 0.1
    got = est.net_.optimizer_.param_groups[0]["lr"]
    assert got == pytest.approx(lr)
    assert [h["event_lr"] for h in est.net_.history][0] == lr0


def test_reference_mode_fits_and_ignores_lengths(tiny):
    est = MulT(**MulT._tiny_params, random_state=0)  # the reference: no key padding mask
    est.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    X = tiny.X("test")
    p = est.predict(X)
    assert p.shape == (tiny["test"].n_samples,) and np.all(np.isfinite(p))
    X_nolen = {k: v for k, v in X.items() if not k.endswith("_lengths")}
    np.testing.assert_array_equal(est.predict(X_nolen), p)
    # the key_padding_mask correction does use the lengths
    est2 = MulT(**MulT._tiny_params, key_padding_mask=True, random_state=0)
    est2.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"), y_valid=tiny.y("valid"))
    assert not np.allclose(est2.predict(X_nolen), est2.predict(X))
