"""Building blocks shared by the reference architectures.

``SubNet``, ``TextSubNet`` and the post-fusion head follow MMSA
``src/MMSA/models/subNets/FeatureNets.py`` (copied verbatim into
``src/MMSA/models/multiTask/MLF_DNN.py`` and ``MTFN.py``); parameter names
match the reference's where the module structure allows.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

#: Clips per length bucket in :func:`last_states`.
BUCKET_SIZE = 32


def _fused_ok(rnn: nn.Module, x: torch.Tensor) -> bool:
    """Whether :func:`packed_lstm` may run ``rnn`` through the fused kernel."""
    return (isinstance(rnn, nn.LSTM) and rnn.batch_first and rnn.proj_size == 0
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.bfloat16)
            and (rnn.num_layers == 1 or rnn.dropout == 0 or not rnn.training))


def _rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> the rows ``index`` of its (B * T, D) flattening, as (B, T, D)."""
    B, T, D = x.shape
    return x.reshape(B * T, D).index_select(0, index).view(B, T, D)


def packed_lstm(rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor,
                total_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch-first (bi)LSTM run over each clip's first ``lengths`` steps.

    The result equals ``rnn(pack_padded_sequence(x, lengths,
    batch_first=True, enforce_sorted=False))`` with the outputs unpacked by
    ``pad_packed_sequence(..., total_length=total_length)``: the padded
    outputs ``(B, T, directions * H)``, ``T`` the longest length or
    ``total_length``, zero past each clip's length, and the final hidden
    states ``h_n`` ``(layers * directions, B, H)``.  ``lengths`` must lie in
    ``[1, L]``.

    On CPU an LSTM is not run packed but through torch's fused (oneDNN)
    kernel, one call per layer and direction over the batch's longest
    length, many times faster in training: the forward direction reads its
    outputs and final state at the real steps (an LSTM is causal, so the
    padding after a clip does not reach them); the backward direction runs
    forward over each clip reversed within its length.  Elsewhere (a GPU, a
    GRU, a multi-layer LSTM with dropout in training, whose dropout masks
    would be drawn differently) the packed run itself is used.
    """
    B = x.shape[0]
    if not _fused_ok(rnn, x):
        packed = pack_padded_sequence(x, lengths.detach().cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, (h, _) = rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=total_length)
        return out, h
    lengths = lengths.detach().to(x.device, torch.long)
    steps = int(lengths.max())
    t = torch.arange(steps, device=x.device)
    real = t[None, :] < lengths[:, None]  # (B, steps)
    # reversal within each clip's length (padding positions stay in place),
    # as rows of the flattened (B * steps, ...) batch
    base = torch.arange(B, device=x.device)[:, None] * steps
    rev = (base + torch.where(real, lengths[:, None] - 1 - t[None, :], t[None, :])).reshape(-1)
    last = base[:, 0] + lengths - 1
    hidden = rnn.hidden_size
    zeros = x.new_zeros(1, B, hidden)
    inp = x[:, :steps]
    finals = []
    for layer in range(rnn.num_layers):
        outs = []
        for d in range(2 if rnn.bidirectional else 1):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            params = [getattr(rnn, f"weight_ih{sfx}"), getattr(rnn, f"weight_hh{sfx}")]
            if rnn.bias:
                params += [getattr(rnn, f"bias_ih{sfx}"), getattr(rnn, f"bias_hh{sfx}")]
            src = inp if d == 0 else _rows(inp, rev)
            out, _, _ = torch.lstm(src, (zeros, zeros), params, rnn.bias, 1, 0.0,
                                   rnn.training, False, True)
            finals.append(out.reshape(B * steps, hidden).index_select(0, last))
            outs.append(out if d == 0 else _rows(out, rev))
        inp = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
    out = inp * real[:, :, None].to(inp.dtype)
    if total_length is not None and steps < total_length:
        out = torch.cat([out, out.new_zeros(B, total_length - steps, out.shape[2])], dim=1)
    return out, torch.stack(finals)


def last_states(rnn: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor | None,
                bucket_size: int = BUCKET_SIZE) -> torch.Tensor:
    """Top-layer hidden state of a unidirectional LSTM after each clip's last
    real step; (B, L, D) -> (B, H).

    The result equals the final state of a run over a packed sequence: the
    LSTM is causal, so its output at step ``length - 1`` of a padded run does
    not see the padding.  It is computed faster than the packed run on CPU:
    clips are sorted by length, cut into buckets of ``bucket_size``, and each
    bucket runs the fused (oneDNN) LSTM kernel over its own longest length
    only, so nearly no padded step is computed.  Without ``lengths`` every
    clip runs over all ``L`` steps.
    """
    if rnn.bidirectional:
        raise ValueError("last_states needs a unidirectional LSTM")
    B, L = x.shape[0], x.shape[1]
    if lengths is None:
        _, (h, _) = rnn(x)
        return h[-1]
    lengths = lengths.to(x.device).long().clamp(1, L)
    if B <= bucket_size or bool((lengths == lengths[0]).all()):
        buckets = [torch.arange(B, device=x.device)]
        order = None
    else:
        order = torch.argsort(lengths, stable=True)
        buckets = list(order.split(bucket_size))
    parts = []
    for idx in buckets:
        lens = lengths[idx]
        steps = int(lens.max())
        xb = x[:, :steps] if order is None else x[:, :steps].index_select(0, idx)
        out, _ = rnn(xb)
        parts.append(out[torch.arange(len(idx), device=x.device), lens - 1])
    if order is None:
        return parts[0]
    inv = torch.empty_like(order)
    inv[order] = torch.arange(B, device=x.device)
    return torch.cat(parts).index_select(0, inv)


class SubNet(nn.Module):
    """The "3-layer DNN" for pooled audio/vision.

    BatchNorm1d(D) -> Dropout(p) -> Linear(D, h) -> ReLU -> Linear(h, h) -> ReLU
    -> Linear(h, h) -> ReLU.  Input (B, D), output (B, h).
    """

    def __init__(self, in_size: int, hidden_size: int, dropout: float):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_size)
        self.drop = nn.Dropout(p=dropout)
        self.linear_1 = nn.Linear(in_size, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, hidden_size)
        self.linear_3 = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.norm(x))
        y = torch.relu(self.linear_1(y))
        y = torch.relu(self.linear_2(y))
        return torch.relu(self.linear_3(y))


class TextSubNet(nn.Module):
    """Text encoder: a 1-layer LSTM, its final hidden state, Dropout, Linear.

    With ``lengths`` the LSTM runs over the real tokens only (its state after
    each clip's last real token, see :func:`last_states`); without them it runs
    over the whole padded sequence, as the reference does.
    Input (B, L, D), output (B, out_size).

    ``dropout`` acts on the LSTM's final state.  The reference's
    ``TextSubNet`` sets it to 0 whenever its LSTM has one layer (always, in
    the models that use it), so the configured text dropout has no effect
    there; callers reproduce that by passing ``dropout=0``.
    """

    def __init__(self, in_size: int, hidden_size: int, out_size: int, dropout: float = 0.2):
        super().__init__()
        self.rnn = nn.LSTM(in_size, hidden_size, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(hidden_size, out_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear_1(self.dropout(last_states(self.rnn, x, lengths)))


class PostHead(nn.Module):
    """Dropout -> Linear(in, d) -> ReLU -> Linear(d, d) -> ReLU -> Linear(d, 1).

    The unimodal and late-fusion heads of LF-DNN and the multi-task models.
    ``forward`` returns (B,); ``features`` the last hidden layer (B, d).
    """

    def __init__(self, in_size: int, hidden: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.layer_1 = nn.Linear(in_size, hidden)
        self.layer_2 = nn.Linear(hidden, hidden)
        self.layer_3 = nn.Linear(hidden, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.layer_1(self.dropout(x)))
        return torch.relu(self.layer_2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_3(self.features(x)).reshape(-1)
