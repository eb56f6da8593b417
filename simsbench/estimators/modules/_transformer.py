"""MulT's transformer encoder on packed variable-length sequences.

The layer is the one of the MulT reference (``MMSA
src/MMSA/models/subNets/transformers_encoder/transformer.py`` and
``multihead_attention.py`` there): pre-LN with one LayerNorm shared by query,
key and value, multi-head attention with dropout on the attention weights,
residual dropout, a ReLU FFN d -> 4d -> d, a final LayerNorm after the stack;
the encoder input is scaled by sqrt(d), gets sinusoidal positions (optional;
MMSA v2 has none) and embedding dropout (drawn separately for the query, key
and value inputs, as in the reference).

Sequences are *packed*: a modality of a batch is one ``(N_tokens, d)``
tensor of the real time steps of every sample, with a list of per-sample
lengths.  Everything but the attention is per token, so padded frames cost
nothing; the attention runs per sample over its real steps (which is a key
padding mask), or as one padded batched call with a key padding mask when
that has fewer score entries (always when every sample has the same length,
as in the reference's padded mode).

Speed (CPU): ``scaled_dot_product_attention`` for attention without weight
dropout (evaluation, or ``attn_dropout=0``); with weight dropout the dropout
mask is drawn as 16-bit random integers (four per 64-bit draw of torch's
global generator), several times cheaper than ``F.dropout``'s per-element
Bernoulli draws, and the attention runs in blocks of query rows with a
written-out backward pass (:class:`_DropoutAttention`): under the offset
mask a block skips the keys it may not see, half the work of a causal
self-attention over MulT's 925 audio frames, and the boolean masks select
(``torch.where``) instead of multiplying, which would first cast them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MulTEncoder", "MulTLayer", "sinusoidal_positions", "dropout_keep_mask",
           "fast_dropout"]


def sinusoidal_positions(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """fairseq/MulT sinusoidal embeddings of integer ``positions`` (N,) -> (N, dim).

    Position 0 is the padding index (zero vector); real steps are 1, 2, ...
    """
    dev = positions.device
    half = dim // 2
    if half == 0:
        return torch.zeros(positions.shape[0], dim, device=dev)
    step = math.log(10000) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=dev) * -step)
    ang = positions.to(torch.float32)[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    if dim % 2 == 1:
        emb = torch.cat([emb, torch.zeros(emb.shape[0], 1, device=dev)], dim=1)
    return emb * (positions != 0).to(torch.float32)[:, None]


_KEEP_DENOM = 65536


def dropout_keep_mask(shape, p: float, device=None) -> tuple[torch.Tensor, float]:
    """Boolean keep mask with keep probability ``round((1-p)·2^16) / 2^16``.

    Returns the mask and the exact inverse keep probability, so that
    ``mask * scale`` has expectation 1.  Drawn from torch's global generator.
    """
    n = 1
    for s in shape:
        n *= int(s)
    keep = int(round((1.0 - p) * _KEEP_DENOM))
    keep = min(max(keep, 1), _KEEP_DENOM)
    raw = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    bits = raw.view(torch.int16)[:n]
    # int16 is uniform on [-32768, 32767]: P(bits < -32768 + keep) = keep / 2^16
    mask = bits < (keep - 32768)
    return mask.view(*shape), _KEEP_DENOM / keep


def _needs_mask(lq: int, lk: int, causal_offset: bool) -> bool:
    # keep j <= i + |lk - lq|; something is masked iff |lk - lq| < lk - 1
    return causal_offset and abs(lk - lq) < lk - 1


def _offset_keep(lq, lk, offset, device):
    """Boolean (lq, lk) mask: query i may attend to key j iff j <= i + offset."""
    return torch.ones(lq, lk, dtype=torch.bool, device=device).tril(offset)


#: Query rows per block of :class:`_DropoutAttention` (at least; a long
#: sequence is cut into at most ``_MAX_BLOCKS`` blocks).  Measured on CPU
#: (1 thread, 16 x 6 heads): a causal 923-step self-attention's forward and
#: backward took 1.06 s in 8 blocks, 0.78 s in 32.
_BLOCK_ROWS = 16
_MAX_BLOCKS = 32


def _attend(q, k, v, p: float, keep=None, offset=None):
    """q (..., H, lq, hd), k/v (..., H, lk, hd) -> (..., H, lq, hd).

    ``keep``: boolean mask broadcastable to the scores (True = attend);
    ``offset``: query i may attend to key j only if ``j <= i + offset``
    (0 with ``lq == lk``: the causal mask); ``p``: attention-weight dropout.
    """
    lq, lk = q.shape[-2], k.shape[-2]
    if p <= 0.0:
        causal = offset == 0 and lq == lk and keep is None
        if offset is not None and not causal:
            off = _offset_keep(lq, lk, offset, q.device)
            keep = off if keep is None else keep & off
        return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, is_causal=causal)
    return _DropoutAttention.apply(q, k, v, p, keep, offset)


class _DropoutAttention(torch.autograd.Function):
    """Softmax attention with dropout on the attention weights.

    Computes ``(softmax(q k^T / sqrt(hd)) * mask) @ v / keep_prob`` with the
    mask of :func:`dropout_keep_mask` drawn once over the whole score shape
    (so the random stream is that of a materialised computation), in blocks
    of query rows: with an ``offset`` mask a block skips the keys none of
    its queries may attend to (about half the work of a causal
    self-attention).  The backward pass is written out, reusing the saved
    softmax weights: it needs no pass over the scores for the softmax's
    row sums (``sum_j P_ij dP_ij = dO_i . O_i``) and no masked-fill
    gradient.
    """

    @staticmethod
    def forward(ctx, q, k, v, p, keep, offset):
        lq, lk = q.shape[-2], k.shape[-2]
        drop, inv_keep = None, 1.0
        if p > 0:
            drop, inv_keep = dropout_keep_mask(q.shape[:-1] + (lk,), p, device=q.device)
        qs = q * q.shape[-1] ** -0.5
        n_blocks = min(_MAX_BLOCKS, max(1, lq // _BLOCK_ROWS))
        bounds = [round(i * lq / n_blocks) for i in range(n_blocks + 1)]
        blocks, outs = [], []
        for i0, i1 in zip(bounds[:-1], bounds[1:]):
            end = lk if offset is None else min(lk, i1 + offset)
            scores = torch.matmul(qs[..., i0:i1, :], k[..., :end, :].transpose(-1, -2))
            if keep is not None:
                kb = keep[..., :end] if keep.shape[-2] == 1 else keep[..., i0:i1, :end]
                scores.masked_fill_(~kb, float("-inf"))
            lo = None if offset is None else max(0, i0 + offset + 1)
            if lo is not None and lo < end:  # only keys j > i0 + offset may be hidden
                rows = torch.arange(i0, i1, device=q.device)[:, None] + offset
                cols = torch.arange(lo, end, device=q.device)[None, :]
                scores[..., lo:end].masked_fill_(cols > rows, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            del scores
            dropped = weights if drop is None else torch.where(
                drop[..., i0:i1, :end], weights, 0.0)
            outs.append(torch.matmul(dropped, v[..., :end, :]))
            del dropped
            blocks.append((i0, i1, end, weights))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-2)
        if drop is not None:
            out = out * inv_keep
        ctx.save_for_backward(qs, k, v, out, *(() if drop is None else (drop,)))
        ctx.blocks = blocks
        ctx.inv_keep = inv_keep
        return out

    @staticmethod
    def backward(ctx, grad_out):
        qs, k, v, out, *drop = ctx.saved_tensors
        drop = drop[0] if drop else None
        scale = qs.shape[-1] ** -0.5
        g = grad_out if drop is None else grad_out * ctx.inv_keep
        # sum_j P_ij dP_ij of the softmax backward, per query row
        rowdot = (grad_out * out).sum(dim=-1, keepdim=True)
        dq = torch.empty_like(qs)
        dk = torch.zeros_like(k)
        dv = torch.zeros_like(v)
        for i0, i1, end, weights in ctx.blocks:
            mask = None if drop is None else drop[..., i0:i1, :end]
            gb = g[..., i0:i1, :]
            dropped = weights if mask is None else torch.where(mask, weights, 0.0)
            dv[..., :end, :] += torch.matmul(dropped.transpose(-1, -2), gb)
            del dropped
            dp = torch.matmul(gb, v[..., :end, :].transpose(-1, -2))
            if mask is not None:
                dp = torch.where(mask, dp, 0.0)
            ds = dp.sub_(rowdot[..., i0:i1, :]).mul_(weights)
            del dp
            dq[..., i0:i1, :] = torch.matmul(ds, k[..., :end, :]) * scale
            dk[..., :end, :] += torch.matmul(ds.transpose(-1, -2), qs[..., i0:i1, :])
        ctx.blocks = None
        return dq, dk, dv, None, None, None


class _MaskMul(torch.autograd.Function):
    """``x * mask`` for a boolean mask, saving only the mask for backward."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return torch.where(mask, x, 0.0)  # x * mask would first cast the mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return torch.where(mask, grad, 0.0), None


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with the 16-bit mask of :func:`dropout_keep_mask`."""
    if not training or p <= 0.0:
        return x
    mask, inv_keep = dropout_keep_mask(x.shape, p, device=x.device)
    return _MaskMul.apply(x, mask) * inv_keep


# Padded batched attention costs B * max(lq) * max(lk) score entries per
# head, the per-sample loop sum(lq_i * lk_i) plus a fixed overhead per sample
# (in score entries; measured on CPU).  The cheaper one is used.
PER_SAMPLE_OVERHEAD = 6000


def packed_attention(q, k, v, lq, lk, num_heads, p, causal_offset):
    """Multi-head attention on packed sequences.

    q (Nq, d) and k, v (Nk, d) hold the projected real steps of each sample,
    ``lq``/``lk`` are the per-sample lengths (lists of int).  Each sample's
    queries attend only to its own real keys; with ``causal_offset`` query i
    may attend to key j only if ``j <= i + |lk - lq|`` (the sample's real
    lengths).  Returns the attention output (Nq, d) before the output
    projection.
    """
    d = q.shape[-1]
    hd = d // num_heads
    B = len(lq)
    if len(set(lq)) == 1 and len(set(lk)) == 1:  # equal lengths: one batched call
        Lq, Lk = lq[0], lk[0]
        qh = q.view(B, Lq, num_heads, hd).transpose(1, 2)
        kh = k.view(B, Lk, num_heads, hd).transpose(1, 2)
        vh = v.view(B, Lk, num_heads, hd).transpose(1, 2)
        offset = abs(Lk - Lq) if _needs_mask(Lq, Lk, causal_offset) else None
        out = _attend(qh, kh, vh, p, offset=offset)
        return out.transpose(1, 2).reshape(B * Lq, d)
    Lq, Lk = max(lq), max(lk)
    padded = B * Lq * Lk
    packed = sum(a * b for a, b in zip(lq, lk)) + B * PER_SAMPLE_OVERHEAD
    if padded <= packed:
        return _padded_attention(q, k, v, lq, lk, num_heads, p, causal_offset)
    outs = []
    for qi, ki, vi, a, b in zip(q.split(lq), k.split(lk), v.split(lk), lq, lk):
        qh = qi.view(a, num_heads, hd).transpose(0, 1)
        kh = ki.view(b, num_heads, hd).transpose(0, 1)
        vh = vi.view(b, num_heads, hd).transpose(0, 1)
        offset = abs(b - a) if _needs_mask(a, b, causal_offset) else None
        o = _attend(qh, kh, vh, p, offset=offset)
        outs.append(o.transpose(0, 1).reshape(a, d))
    return torch.cat(outs, dim=0)


def _padded_attention(q, k, v, lq, lk, num_heads, p, causal_offset):
    """:func:`packed_attention` as one padded call with a key padding mask."""
    d = q.shape[-1]
    hd = d // num_heads
    B, dev = len(lq), q.device
    Lq, Lk = max(lq), max(lk)
    lq_t = torch.tensor(lq, device=dev)
    lk_t = torch.tensor(lk, device=dev)
    iq = torch.arange(Lq, device=dev)
    ik = torch.arange(Lk, device=dev)
    fq = torch.nonzero((iq[None, :] < lq_t[:, None]).reshape(-1)).reshape(-1)
    fk = torch.nonzero((ik[None, :] < lk_t[:, None]).reshape(-1)).reshape(-1)
    keep = (ik[None, :] < lk_t[:, None])[:, None, None, :]  # (B, 1, 1, Lk)
    if causal_offset:
        off = (lk_t - lq_t).abs()
        fut = ik[None, None, :] <= iq[None, :, None] + off[:, None, None]  # (B, Lq, Lk)
        keep = keep & fut[:, None]

    def pad(x, flat, L):
        xp = x.new_zeros(B * L, d).index_copy(0, flat, x)
        return xp.view(B, L, num_heads, hd).transpose(1, 2)

    out = _attend(pad(q, fq, Lq), pad(k, fk, Lk), pad(v, fk, Lk), p, keep)
    return out.transpose(1, 2).reshape(B * Lq, d).index_select(0, fq)


class _SelfAttentionParams(nn.Module):
    """Parameters of MulT's multi-head attention (fused q/k/v projection)."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)


def _linear(in_f: int, out_f: int) -> nn.Linear:
    lin = nn.Linear(in_f, out_f)
    nn.init.xavier_uniform_(lin.weight)
    nn.init.zeros_(lin.bias)
    return lin


class MulTLayer(nn.Module):
    """One pre-LN transformer layer (self- or crossmodal attention + FFN)."""

    def __init__(self, embed_dim, num_heads, attn_dropout, relu_dropout, res_dropout,
                 attn_mask):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.attn_dropout = attn_dropout
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.attn_mask = attn_mask
        self.self_attn = _SelfAttentionParams(embed_dim)
        self.fc1 = _linear(embed_dim, 4 * embed_dim)
        self.fc2 = _linear(4 * embed_dim, embed_dim)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(2)])

    def forward(self, x, lq, x_k=None, x_v=None, lk=None, last_idx=None):
        """x (Nq, d) packed; x_k/x_v (Nk, d) packed source (None: self-attention).

        ``last_idx`` (self-attention only): compute the output only at these
        rows (the last step of each sample), attending to every step.
        """
        d = self.embed_dim
        W, b = self.self_attn.in_proj_weight, self.self_attn.in_proj_bias
        ln0 = self.layer_norms[0]
        h = ln0(x)
        causal = self.attn_mask
        if x_k is None:
            lk = lq
            if last_idx is None:
                q, k, v = F.linear(h, W, b).chunk(3, dim=-1)
                residual = x
            else:
                k, v = F.linear(h, W[d:], b[d:]).chunk(2, dim=-1)
                q = F.linear(h[last_idx], W[:d], b[:d])
                residual = x[last_idx]
                lq = [1] * len(lk)
                causal = False  # the last step sees every step under either mask
        else:
            q = F.linear(h, W[:d], b[:d])
            if x_v is x_k:
                k, v = F.linear(ln0(x_k), W[d:], b[d:]).chunk(2, dim=-1)
            else:
                k = F.linear(ln0(x_k), W[d:2 * d], b[d:2 * d])
                v = F.linear(ln0(x_v), W[2 * d:], b[2 * d:])
            residual = x
        p = self.attn_dropout if self.training else 0.0
        a = packed_attention(q, k, v, lq, lk, self.num_heads, p, causal)
        a = self.self_attn.out_proj(a)
        x = residual + fast_dropout(a, self.res_dropout, self.training)
        h = F.relu(self.fc1(self.layer_norms[1](x)))
        h = fast_dropout(h, self.relu_dropout, self.training)
        h = fast_dropout(self.fc2(h), self.res_dropout, self.training)
        return x + h


class MulTEncoder(nn.Module):
    """MulT's ``TransformerEncoder`` on packed sequences.

    Parameters
    ----------
    embed_dim, num_heads, layers : int
    attn_dropout, relu_dropout, res_dropout, embed_dropout : float
    attn_mask : bool
        The reference's offset "future" mask (see :func:`packed_attention`).
    positions : bool
        Add sinusoidal positional embeddings (no parameters).
    """

    def __init__(self, embed_dim, num_heads, layers, attn_dropout=0.0, relu_dropout=0.0,
                 res_dropout=0.0, embed_dropout=0.0, attn_mask=True, positions=True):
        super().__init__()
        self.embed_dim = embed_dim
        self.embed_scale = math.sqrt(embed_dim)
        self.embed_dropout = embed_dropout
        self.positions = positions
        self.layers = nn.ModuleList([
            MulTLayer(embed_dim, num_heads, attn_dropout, relu_dropout, res_dropout, attn_mask)
            for _ in range(layers)
        ])
        self.layer_norm = nn.LayerNorm(embed_dim)

    def _embed(self, x, pos):
        x = x * self.embed_scale
        if self.positions:
            x = x + sinusoidal_positions(pos, self.embed_dim).to(x.device, x.dtype)
        return x

    def forward(self, x, lq, pos_q, x_src=None, lk=None, pos_k=None, last_only=False):
        """Encode packed ``x`` (Nq, d), optionally attending to ``x_src`` (Nk, d).

        ``pos_q``/``pos_k`` are the packed step positions (1, 2, ...).  With
        ``last_only`` (self-attention) the result is the final step of each
        sample, shape (B, d), and the last layer is computed only there.
        """
        x = fast_dropout(self._embed(x, pos_q), self.embed_dropout, self.training)
        x_k = x_v = None
        if x_src is not None:
            src = self._embed(x_src, pos_k)
            if self.training and self.embed_dropout > 0:
                x_k = fast_dropout(src, self.embed_dropout, True)
                x_v = fast_dropout(src, self.embed_dropout, True)
            else:
                x_k = x_v = src
        last_idx = None
        if last_only:
            ends = torch.tensor(lq, dtype=torch.long).cumsum(0) - 1
            last_idx = ends.to(x.device)
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            li = last_idx if (last_only and i == n - 1) else None
            x = layer(x, lq, x_k, x_v, lk, last_idx=li)
        if last_only and n == 0:
            x = x[last_idx]
        return self.layer_norm(x)
