"""The faster formulations of MulT, MISA, MMIM and AV-MC compute what the
former ones did.

Each test fixes weights and inputs with a seed and compares the module's
outputs and gradients with the former formulation, transcribed here
independently (not imported): the packed (bi)LSTM runs
(``pack_padded_sequence`` -> LSTM -> ``pad_packed_sequence``) that the
fused-kernel runs of :func:`packed_lstm` replace, and the materialised
attention with 16-bit dropout masks that MulT's blocked attention replaces.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from simsbench.estimators import MulT
from simsbench.estimators.modules._avmc import AVSubNet
from simsbench.estimators.modules._misa import _Extract
from simsbench.estimators.modules._mmim import RNNEncoder
from simsbench.estimators.modules import _transformer as T
from simsbench.estimators.modules._blocks import packed_lstm

LENGTHS = torch.tensor([3, 11, 1, 7, 7, 9])


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _packed_run(rnn, x, lengths, total_length=None):
    """The former formulation: a packed run, outputs padded back."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h, _) = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=total_length)
    return out, h


def _grads(module, x, fn, seed=0):
    """Outputs of ``fn`` and the gradients of a fixed functional of them
    with respect to the parameters and ``x``."""
    module.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(seed)
    outs = fn(x)
    outs = outs if isinstance(outs, tuple) else (outs,)
    weights = torch.Generator().manual_seed(1)
    total = sum((o * torch.randn(o.shape, generator=weights)).sum() for o in outs)
    total.backward()
    grads = [p.grad.clone() if p.grad is not None else None for p in module.parameters()]
    return [o.detach() for o in outs], grads, x.grad.clone()


def _assert_same(a, b, atol=1e-5):
    outs_a, grads_a, gx_a = a
    outs_b, grads_b, gx_b = b
    for u, v in zip(outs_a, outs_b, strict=True):
        torch.testing.assert_close(u, v, atol=atol, rtol=1e-4)
    for u, v in zip(grads_a, grads_b, strict=True):
        assert (u is None) == (v is None)
        if u is not None:
            torch.testing.assert_close(u, v, atol=atol, rtol=1e-4)
    torch.testing.assert_close(gx_a, gx_b, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("total_length", [None, 13])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_packed_lstm_equals_the_packed_run(bidirectional, num_layers, training, total_length):
    torch.manual_seed(0)
    rnn = nn.LSTM(5, 4, num_layers=num_layers, bidirectional=bidirectional,
                  batch_first=True).train(training)
    x = torch.randn(6, 13, 5)
    new = _grads(rnn, x, lambda t: packed_lstm(rnn, t, LENGTHS, total_length))
    old = _grads(rnn, x, lambda t: _packed_run(rnn, t, LENGTHS, total_length))
    assert new[0][0].shape[1] == (total_length or 11)
    _assert_same(new, old)
    # zero past each clip's length, as pad_packed_sequence leaves it
    assert bool((new[0][0][2, 1:] == 0).all())


def test_packed_lstm_with_dropout_between_layers_keeps_the_packed_run():
    # in training the inter-layer dropout masks must be drawn as before
    torch.manual_seed(0)
    rnn = nn.LSTM(5, 4, num_layers=2, dropout=0.5, bidirectional=True, batch_first=True)
    x = torch.randn(6, 11, 5)
    new = _grads(rnn, x, lambda t: packed_lstm(rnn, t, LENGTHS), seed=3)
    old = _grads(rnn, x, lambda t: _packed_run(rnn, t, LENGTHS), seed=3)
    _assert_same(new, old, atol=0)


@pytest.mark.parametrize("training", [True, False])
def test_avmc_audio_vision_encoder_equals_the_packed_formulation(training):
    torch.manual_seed(0)
    enc = AVSubNet(7, 6, dropout=0.3).train(training)
    x = torch.randn(6, 11, 7)

    def former(t):  # ch-sims-v2 models/multiTask/V1_Semi.py AVsubNet, as it was here
        t = enc.dropout(enc.liner(t))
        out1, (h1, _) = enc.rnn1(pack_padded_sequence(t, LENGTHS, batch_first=True,
                                                      enforce_sorted=False))
        padded, _ = pad_packed_sequence(out1, batch_first=True, total_length=11)
        _, (h2, _) = enc.rnn2(pack_padded_sequence(enc.layer_norm(padded), LENGTHS,
                                                   batch_first=True, enforce_sorted=False))
        return torch.cat([h1[0], h2[0], h1[1], h2[1]], dim=-1)

    _assert_same(_grads(enc, x, lambda t: enc(t, LENGTHS)), _grads(enc, x, former))


@pytest.mark.parametrize("rnncell", ["lstm", "gru"])
def test_misa_extractor_equals_the_packed_formulation(rnncell):
    torch.manual_seed(0)
    enc = _Extract(5, rnncell).train()
    x = torch.randn(6, 11, 5)

    def former(t):  # MMSA src/MMSA/models/singleTask/MISA.py extract_features
        out1, h1 = enc.rnn1(pack_padded_sequence(t, LENGTHS, batch_first=True,
                                                 enforce_sorted=False))
        padded, _ = pad_packed_sequence(out1, batch_first=True)
        _, h2 = enc.rnn2(pack_padded_sequence(enc.layer_norm(padded), LENGTHS,
                                              batch_first=True, enforce_sorted=False))
        if rnncell == "lstm":
            h1, h2 = h1[0], h2[0]
        return torch.cat((h1, h2), dim=2).permute(1, 0, 2).reshape(6, -1)

    _assert_same(_grads(enc, x, lambda t: enc(t, LENGTHS)), _grads(enc, x, former))


@pytest.mark.parametrize("n_layer,final", [(1, "first"), (2, "first"), (2, "last")])
def test_mmim_encoder_equals_the_packed_formulation(n_layer, final):
    torch.manual_seed(0)
    enc = RNNEncoder(5, 4, 3, num_layers=n_layer, dropout=0.0,
                     final_state_layer=final).train()
    x = torch.randn(6, 11, 5)

    def former(t):  # MMSA src/MMSA/models/singleTask/MMIM.py RNNEncoder
        _, (h, _) = enc.rnn(pack_padded_sequence(t, LENGTHS, batch_first=True,
                                                 enforce_sorted=False))
        first = 0 if final == "first" else h.shape[0] - 2
        return enc.linear_1(enc.dropout(torch.cat((h[first], h[first + 1]), dim=-1)))

    _assert_same(_grads(enc, x, lambda t: enc(t, LENGTHS)), _grads(enc, x, former))


# ---------------------------------------------------------------------------
# MulT's attention

def _former_attention(q, k, v, p, keep=None, offset=None):
    """The former formulation: materialised scores, masked, softmax, the
    whole weight tensor times the 16-bit dropout mask, times ``v``."""
    lq, lk = q.shape[-2], k.shape[-2]
    if offset is not None:
        off = torch.ones(lq, lk, dtype=torch.bool).tril(offset)
        keep = off if keep is None else keep & off
    if p <= 0:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2))
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    drop, inv_keep = T.dropout_keep_mask(weights.shape, p)
    return torch.matmul(weights * drop, v) * inv_keep


def _attention_grads(fn, q, k, v):
    q, k, v = (t.clone().requires_grad_(True) for t in (q, k, v))
    torch.manual_seed(5)  # the same dropout mask on both sides
    out = fn(q, k, v)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    return out.detach(), q.grad, k.grad, v.grad


@pytest.mark.parametrize("p", [0.0, 0.2])
@pytest.mark.parametrize("lq,lk,mask", [
    (150, 150, "offset"),  # causal self-attention, several query blocks
    (40, 130, "offset"),  # crossmodal with the reference's offset mask
    (130, 40, None),
    (70, 90, "keep"),  # a key padding mask (the padded batched call)
])
def test_mult_attention_equals_the_materialised_formulation(lq, lk, mask, p):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 4, generator=gen) for n in (lq, lk, lk))
    kw = {}
    if mask == "offset":
        kw["offset"] = abs(lk - lq)
    elif mask == "keep":
        keep = torch.rand(2, 1, lq, lk, generator=gen) > 0.3
        keep[..., 0] = True
        kw["keep"] = keep
    new = _attention_grads(lambda *t: T._attend(*t, p, **kw), q, k, v)
    old = _attention_grads(lambda *t: _former_attention(*t, p, **kw), q, k, v)
    for a, b in zip(new, old, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("key_padding_mask", [False, True])
def test_mult_training_step_equals_the_materialised_attention(key_padding_mask, monkeypatch):
    """A whole MulT (the v2 spec's shape of configuration, small) in training
    mode: outputs and gradients with the blocked attention and with the
    former one, under the same seed."""
    est = MulT(d_model=12, num_heads=3, nlevels=2, kernel_sizes=(3, 3, 1),
               key_padding_mask=key_padding_mask)
    torch.manual_seed(0)
    module = est.build_module((10, 6, 8), (9, 140, 30)).train()
    gen = torch.Generator().manual_seed(2)
    X = {m: torch.randn(5, L, D, generator=gen)
         for m, L, D in (("text", 9, 10), ("audio", 140, 6), ("vision", 30, 8))}
    X.update(text_lengths=torch.tensor([9, 4, 7, 9, 5]),
             audio_lengths=torch.tensor([140, 70, 100, 33, 129]),
             vision_lengths=torch.tensor([30, 12, 25, 7, 30]))

    def run():
        module.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        out = module(**X)
        out.sum().backward()
        return [out.detach()] + [p.grad.clone() for p in module.parameters()
                                 if p.grad is not None]

    new = run()
    monkeypatch.setattr(T, "_attend", _former_attention)
    old = run()
    assert len(new) == len(old)
    for a, b in zip(new, old, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
