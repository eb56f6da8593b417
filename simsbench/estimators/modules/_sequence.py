"""Torch module of EF-LSTM (MMSA ``src/MMSA/models/singleTask/EF_LSTM.py``)."""

from __future__ import annotations

import torch
from torch import nn

from simsbench.estimators.modules._blocks import last_states

__all__ = ["EFLSTMModule"]


class EFLSTMModule(nn.Module):
    """Concatenate the aligned modalities, BatchNorm over the time steps,
    a stacked LSTM, then Dropout-Linear-ReLU-Dropout-Linear on its final
    hidden state."""

    def __init__(self, dims, seq_len, hidden_dim, num_layers, dropout):
        super().__init__()
        self.modalities = tuple(dims)
        in_size = sum(dims.values())
        self.norm = nn.BatchNorm1d(seq_len)  # time steps are the channels
        self.lstm = nn.LSTM(in_size, hidden_dim, num_layers=num_layers,
                            dropout=dropout if num_layers > 1 else 0.0, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, 1)

    def representations(self, step_lengths, **inputs):
        x = torch.cat([inputs[m] for m in self.modalities], dim=-1)
        x = self.norm(x)
        # The final state after each clip's last real step, as a packed run
        # gives it (but faster on CPU: see ``last_states``).
        return {"fused": last_states(self.lstm, x, step_lengths)}

    def forward(self, **inputs):
        h = self.representations(**inputs)["fused"]
        h = self.dropout(h)
        h = self.dropout(torch.relu(self.linear(h)))
        return self.out(h).reshape(-1)
