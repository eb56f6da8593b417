"""Building blocks shared by the reference architectures.

``SubNet``, ``TextSubNet`` and the post-fusion head follow MMSA
``src/MMSA/models/subNets/FeatureNets.py`` (copied verbatim into
``src/MMSA/models/multiTask/MLF_DNN.py`` and ``MTFN.py``); parameter names
match the reference's where the module structure allows.
"""

from __future__ import annotations

import torch
from torch import nn

#: Clips per length bucket in :func:`last_states`.
BUCKET_SIZE = 32


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
