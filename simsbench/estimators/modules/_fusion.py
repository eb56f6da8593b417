"""Tensor fusion (TFN, MTFN): ``Linear(Dropout(vec([1;a] ⊗ [1;v] ⊗ [1;t])))``.

The reference builds the flattened outer product ``z`` explicitly, one row of
``(h_a+1)(h_v+1)(h_t+1)`` floats per sample (1,094,049 for TFN on CH-SIMS,
2,179,617 for MTFN), applies Dropout to it and multiplies by the first
post-fusion Linear.  :class:`TensorFusionLinear` computes the same function
without ever storing ``z``:

* without dropout (evaluation, or ``p == 0``) the product is factorised:
  with ``w = v ⊗ t`` and the weight viewed as ``W[p, i, w]``,
  ``out[b, p] = Σ_i a[b, i] · (w_b · W[p, i, :])``, which is one GEMM
  ``(B, |w|) @ (|w|, P·|a|)`` and a batched contraction over ``i``; the
  backward pass is two more GEMMs of the same size
  (``grad_W = (g ⊗ a)ᵀ w`` and ``grad_w = (g ⊗ a) W``);
* with dropout the masked ``z`` is never built either: for each audio index
  ``i`` the masked ``y_i = keep_i ⊙ w`` (B, |w|) is formed in a reused
  buffer and multiplied by the weight slice ``W[:, i, :]``; the backward
  pass rebuilds ``y_i`` instead of storing it.  The per-``i`` products
  ``H[b, p, i]`` (B·P·|a| floats) are kept, which gives the gradient of
  ``a`` for free.  Only the dropout mask (one byte per element) is stored.

The dropout mask is drawn from torch's global generator as 16-bit uniform
integers, four per 64-bit draw (a quarter of the generator calls of
``torch.rand``).  The drop probability is therefore rounded to a multiple
of 2⁻¹⁶ (``0.2`` becomes ``0.199997``); kept values are scaled by
``1 / (1 - p_rounded)`` so the layer stays unbiased.

The weight gradient is written into a buffer that is reused from one step to
the next (``param.grad`` is set directly, as in Megatron's fused weight
gradient accumulation): a fresh 140-560 MB gradient per step costs more in
page faults than the GEMM that fills it.  The dropout mask's buffers are
reused in the same way.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

__all__ = ["TensorFusion", "tensor_fusion_linear", "naive_tensor_fusion", "dropout_mask"]

# The uniform words of a large mask are drawn by this many independent
# generators (seeded from torch's global generator), in parallel threads when
# torch may use more than one: mt19937 is sequential and is otherwise the
# single largest cost of a training step.  Fixed, so that masks do not depend
# on the number of threads.
_RNG_STREAMS = 2
_PARALLEL_RNG_MIN_WORDS = 1 << 16
# Random words drawn at a time for a dropout mask (32 MB).
_MASK_CHUNK_WORDS = 1 << 22


class _Workspace:
    """Large buffers a :class:`TensorFusion` layer reuses from step to step.

    Buffers over ~32 MB are mmap-ed by malloc and page-faulted in again on
    every allocation, which costs as much as filling them.  ``grad`` is the
    weight gradient (see :class:`TensorFusionLinear`), ``words`` the random
    words of the dropout mask, ``keep`` the mask itself; ``keep`` is reused
    only once the backward pass that saved it has run (``keep_busy``).
    Never pickled.
    """

    def __init__(self):
        self.grad = None
        self.words = None
        self.keep = None
        self.keep_busy = False

    def buffer(self, name, n, dtype):
        buf = getattr(self, name)
        if buf is None or buf.numel() < n or buf.dtype != dtype:
            buf = torch.empty(n, dtype=dtype)
            setattr(self, name, buf)
        return buf[:n]


def _random_words(n_words: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """``n_words`` uniform int64 words (full 64-bit range), reproducibly."""
    words = torch.empty(n_words, dtype=torch.int64) if out is None else out
    if n_words < _PARALLEL_RNG_MIN_WORDS:
        return words.random_(-(2**63), None)
    seeds = torch.randint(0, 2**62, (_RNG_STREAMS,)).tolist()
    parts = words.chunk(_RNG_STREAMS)

    def fill(k):
        gen = torch.Generator().manual_seed(int(seeds[k]))
        parts[k].random_(-(2**63), None, generator=gen)

    if torch.get_num_threads() > 1:
        with ThreadPoolExecutor(max_workers=_RNG_STREAMS) as pool:
            list(pool.map(fill, range(len(parts))))
    else:
        for k in range(len(parts)):
            fill(k)
    return words


def dropout_mask(shape, p: float, workspace: _Workspace | None = None
                 ) -> tuple[torch.Tensor | None, float]:
    """Keep mask (uint8, 1 = kept) and the keep-scale ``1/(1-p')``.

    ``p'`` is ``p`` rounded to a multiple of 2⁻¹⁶.  Randomness comes from
    torch's global generator.  With a ``workspace`` its buffers are reused
    (the caller releases ``keep`` when done with the mask).
    """
    n = math.prod(shape)
    q = round(float(p) * 65536)
    if q <= 0:
        return None, 1.0
    if q >= 65536:
        raise ValueError(f"dropout probability must be < 1, got {p!r}")
    n_words = (n + 3) // 4
    chunk = min(n_words, _MASK_CHUNK_WORDS)
    if workspace is None:
        words = torch.empty(chunk, dtype=torch.int64)
        keep = torch.empty(n, dtype=torch.bool)
    else:
        words = workspace.buffer("words", chunk, torch.int64)
        if workspace.keep_busy:
            keep = torch.empty(n, dtype=torch.bool)
        else:
            keep = workspace.buffer("keep", n, torch.bool)
            workspace.keep_busy = True
    # The words are drawn a chunk at a time (the mask is 4x smaller than its
    # 16-bit words, so they are never all held at once).
    for start in range(0, n_words, chunk):
        k = min(chunk, n_words - start)
        lo, hi = 4 * start, min(n, 4 * (start + k))
        part = _random_words(k, words[:k]).view(torch.int16)[: hi - lo]
        torch.ge(part, q - 32768, out=keep[lo:hi])
    # uint8 rather than bool: multiplying by a uint8 mask is ~15x faster than
    # masked_fill_ with a bool one on CPU.
    return keep.view(torch.uint8).view(shape), 65536.0 / (65536 - q)


def _augment(x: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
    ones = like.new_ones(batch, 1)
    return ones if x is None else torch.cat([ones, x], dim=1)


class TensorFusionLinear(torch.autograd.Function):
    """``out = scale · W (mask ⊙ vec(a ⊗ v ⊗ t)) + bias`` without storing z.

    ``a``, ``v``, ``t``: (B, n_a), (B, n_v), (B, n_t), already augmented with
    the constant 1; ``weight``: (P, n_a·n_v·n_t) in audio-major order;
    ``mask``: None or the uint8 keep mask (B, n_a, n_v·n_t), 1 where kept.
    ``workspace``: None or a :class:`_Workspace`; with ``direct_grad`` the
    weight gradient is written into ``weight.grad`` (reusing
    ``workspace.grad``) instead of being returned to autograd, and the
    workspace's dropout mask is released after the backward pass.
    """

    @staticmethod
    def forward(ctx, a, v, t, weight, bias, mask, scale, direct_grad, workspace):
        B, na = a.shape
        nw = v.shape[1] * t.shape[1]
        P = weight.shape[0]
        w = (v[:, :, None] * t[:, None, :]).reshape(B, nw)
        W3 = weight.view(P, na, nw)
        if mask is None:
            H = (w @ weight.view(P * na, nw).t()).view(B, P, na)
            out = torch.bmm(H, a[:, :, None]).reshape(B, P)
        else:
            # One audio index at a time: y = keep_i ⊙ w, H[:, :, i] = y W_iᵀ.
            Hi = a.new_empty(na, B, P)
            mf = a.new_empty(B, nw)
            y = a.new_empty(B, nw)
            for i in range(na):
                mf.copy_(mask[:, i])
                torch.mul(mf, w, out=y)
                torch.mm(y, W3[:, i].t(), out=Hi[i])
            H = Hi.permute(1, 2, 0).mul(scale)
            out = torch.bmm(H, a[:, :, None]).reshape(B, P)
        if bias is not None:
            out.add_(bias)
        ctx.save_for_backward(a, v, t, w, weight, H, mask)
        ctx.scale = scale
        ctx.has_bias = bias is not None
        ctx.direct_grad = bool(direct_grad)
        ctx.workspace = workspace
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        a, v, t, w, weight, H, mask = ctx.saved_tensors
        B, na = a.shape
        nv, nt = v.shape[1], t.shape[1]
        nw = nv * nt
        P = weight.shape[0]
        g = g.contiguous()
        need_a, need_v, need_t, need_w, need_b = ctx.needs_input_grad[:5]
        need_in = need_v or need_t

        # The weight gradient goes to ``gw``: a reused buffer set as
        # weight.grad, an existing weight.grad to accumulate into, or a new
        # tensor returned to autograd.
        gw, accumulate, returned = None, False, None
        if need_w:
            if ctx.direct_grad:
                if weight.grad is not None:
                    gw, accumulate = weight.grad, True
                else:
                    ws = ctx.workspace
                    buf = ws.grad if ws is not None else None
                    if buf is None or buf.shape != weight.shape or buf.dtype != weight.dtype:
                        buf = torch.empty_like(weight)
                        if ws is not None:
                            ws.grad = buf
                    gw = buf
            else:
                gw = torch.empty_like(weight)
                returned = gw

        grad_a = grad_w = None
        if mask is None:
            ga = (g[:, :, None] * a[:, None, :]).reshape(B, P * na)
            if gw is not None:
                gw2 = gw.view(P * na, nw)
                if accumulate:
                    gw2.addmm_(ga.t(), w)
                else:
                    torch.mm(ga.t(), w, out=gw2)
            if need_in:
                grad_w = ga @ weight.view(P * na, nw)
            if need_a:
                grad_a = torch.bmm(g[:, None, :], H).reshape(B, na)
        else:
            gs = g * ctx.scale if ctx.scale != 1.0 else g
            W3 = weight.view(P, na, nw)
            G3 = gw.view(P, na, nw) if gw is not None else None
            grad_a = torch.bmm(g[:, None, :], H).reshape(B, na) if need_a else None
            grad_w = a.new_zeros(B, nw) if need_in else None
            mf = a.new_empty(B, nw)
            y = a.new_empty(B, nw) if G3 is not None else None
            gz = a.new_empty(B, nw) if need_in else None
            for i in range(na):
                if G3 is None and not need_in:
                    break
                mf.copy_(mask[:, i])
                ga = gs * a[:, i:i + 1]
                if G3 is not None:
                    torch.mul(mf, w, out=y)
                    if accumulate:
                        G3[:, i].addmm_(ga.t(), y)
                    else:
                        torch.mm(ga.t(), y, out=G3[:, i])
                if need_in:
                    torch.mm(ga, W3[:, i], out=gz)
                    grad_w.addcmul_(gz, mf)
        grad_v = grad_t = None
        if need_in:
            gw3 = grad_w.view(B, nv, nt)
            if need_v:
                grad_v = torch.bmm(gw3, t[:, :, None]).reshape(B, nv)
            if need_t:
                grad_t = torch.bmm(v[:, None, :], gw3).reshape(B, nt)
        grad_bias = g.sum(0) if (need_b and ctx.has_bias) else None
        if ctx.direct_grad and gw is not None and not accumulate:
            weight.grad = gw
        ws = ctx.workspace
        if ws is not None and mask is not None and ws.keep is not None \
                and mask.data_ptr() == ws.keep.data_ptr():
            ws.keep_busy = False
        return grad_a, grad_v, grad_t, returned, grad_bias, None, None, None, None


def tensor_fusion_linear(a, v, t, weight, bias=None, mask=None, scale=1.0,
                         direct_grad=False, workspace=None):
    """Functional form of :class:`TensorFusionLinear` (inputs already augmented)."""
    return TensorFusionLinear.apply(a, v, t, weight, bias, mask, scale, direct_grad,
                                    workspace)


def naive_tensor_fusion(a, v, t, weight, bias=None, mask=None, scale=1.0):
    """The reference computation: materialise z, drop, Linear (for tests)."""
    B = a.shape[0]
    z = torch.bmm(a[:, :, None], v[:, None, :]).reshape(B, -1, 1)
    z = torch.bmm(z, t[:, None, :]).reshape(B, -1)
    if mask is not None:
        z = z * mask.reshape(B, -1) * scale
    return torch.nn.functional.linear(z, weight, bias)


class TensorFusion(nn.Module):
    """Tensor fusion of up to three vectors followed by Dropout and Linear.

    ``forward(audio, vision, text)`` (any of them None when the modality is
    absent) returns ``Linear(Dropout(vec([1;a] ⊗ [1;v] ⊗ [1;t])))`` of shape
    (B, out_features), in the reference's audio-major order.  ``linear`` is an
    ordinary ``nn.Linear(F, out_features)`` (same initialisation and state
    dict as the reference's first post-fusion layer); the fused product is
    computed by :class:`TensorFusionLinear`.

    Parameters
    ----------
    in_sizes : tuple of 3 int
        (audio, vision, text) widths; 0 for an absent modality.
    out_features : int
        Width of the Linear layer.
    dropout : float
        Dropout probability on the fusion tensor, in [0, 1).
    """

    def __init__(self, in_sizes, out_features: int, dropout: float):
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.in_sizes = tuple(int(s) for s in in_sizes)
        self.dropout = float(dropout)
        self.fusion_dim = math.prod(s + 1 for s in self.in_sizes)
        self.linear = nn.Linear(self.fusion_dim, out_features)
        self.direct_grad = True
        self._workspace = _Workspace()

    def forward(self, audio=None, vision=None, text=None):
        W, b = self.linear.weight, self.linear.bias
        if torch.is_autocast_enabled(W.device.type):
            # The fused layer is a custom autograd function that writes into
            # float32 buffers: under precision="bfloat16" it stays float32.
            audio, vision, text = (None if x is None else x.to(W.dtype)
                                   for x in (audio, vision, text))
        present = [x for x in (audio, vision, text) if x is not None]
        B = present[0].shape[0]
        like = present[0]
        a = _augment(audio, B, like)
        v = _augment(vision, B, like)
        t = _augment(text, B, like)
        # The workspace only serves steps whose backward pass will run.
        ws = self._workspace if torch.is_grad_enabled() and W.requires_grad else None
        mask, scale = None, 1.0
        if self.training and self.dropout > 0:
            mask, scale = dropout_mask((B, a.shape[1], v.shape[1] * t.shape[1]),
                                       self.dropout, ws)
        direct = self.direct_grad and ws is not None
        with torch.autocast(W.device.type, enabled=False):
            return TensorFusionLinear.apply(a, v, t, W, b, mask, scale, direct, ws)

    def release_buffers(self):
        """Drop the reused buffers (done at the end of fit)."""
        self._workspace = _Workspace()

    def __getstate__(self):
        state = super().__getstate__().copy()
        state["_workspace"] = _Workspace()
        return state

    def extra_repr(self) -> str:
        return f"in_sizes={self.in_sizes}, fusion_dim={self.fusion_dim}, dropout={self.dropout}"
