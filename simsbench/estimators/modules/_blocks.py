"""Building blocks shared by the reference architectures (reference-facts §4.0)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


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

    With ``lengths`` the LSTM runs over the real tokens only (packed); without
    them it runs over the whole padded sequence, as the reference does.
    Input (B, L, D), output (B, out_size).
    """

    def __init__(self, in_size: int, hidden_size: int, out_size: int, dropout: float = 0.2):
        super().__init__()
        self.rnn = nn.LSTM(in_size, hidden_size, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(hidden_size, out_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            packed = pack_padded_sequence(
                x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False
            )
            _, (h, _) = self.rnn(packed)
        else:
            _, (h, _) = self.rnn(x)
        return self.linear_1(self.dropout(h[-1]))


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
