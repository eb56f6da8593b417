"""Torch modules of Self-MM (MMSA ``src/MMSA/models/multiTask/SELF_MM.py``)."""

from __future__ import annotations

import torch
from torch import nn

from simsbench.estimators.modules._bert import encode_modalities
from simsbench.estimators.modules._blocks import PostHead, last_states

__all__ = ["AuViSubNet", "SelfMMModule"]


class AuViSubNet(nn.Module):
    """LSTM over the real frames -> final hidden state -> Dropout -> Linear.

    The final state after each clip's last real frame is computed by
    :func:`~simsbench.estimators.modules._blocks.last_states` (equal to a
    packed run, faster on CPU)."""

    def __init__(self, in_size, hidden_size, out_size, num_layers=1, dropout=0.0):
        super().__init__()
        self.rnn = nn.LSTM(in_size, hidden_size, num_layers=num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(hidden_size, out_size)

    def forward(self, x, lengths):
        return self.linear_1(self.dropout(last_states(self.rnn, x, lengths)))


class _Head(PostHead):
    """Dropout -> Linear -> ReLU (the ULGM feature) -> Linear -> ReLU -> Linear(1)
    (:class:`PostHead`'s layers); ``forward`` also returns the feature."""

    def forward(self, x):
        feat = torch.relu(self.layer_1(self.dropout(x)))
        out = self.layer_3(torch.relu(self.layer_2(feat))).reshape(-1)
        return out, feat


class SelfMMModule(nn.Module):
    """BERT [CLS] text, LSTM audio/vision, a fusion head and three unimodal heads.

    ``forward`` returns ``(M, T, A, V, features)``; ``features`` maps
    ``"fusion"``/``"text"``/``"audio"``/``"vision"`` to each head's first
    hidden layer (the representation ULGM works on).  Heads of absent
    modalities are ``None``.
    """

    def __init__(self, dims, text_encoder, text_dim, lstm_hidden, lstm_layers, lstm_dropouts,
                 outs, post_dims, post_dropouts):
        super().__init__()
        self.modalities = tuple(dims)
        a_h, v_h = lstm_hidden
        a_l, v_l = lstm_layers
        a_p, v_p = lstm_dropouts
        a_out, v_out = outs
        p_f, p_t, p_a, p_v = post_dims
        d_f, d_t, d_a, d_v = post_dropouts
        fused = 0
        if "text" in dims:
            if text_encoder is not None:
                self.text_encoder = text_encoder
            self.post_text = _Head(text_dim, p_t, d_t)
            fused += text_dim
        if "audio" in dims:
            self.audio_model = AuViSubNet(dims["audio"], a_h, a_out, a_l, a_p)
            self.post_audio = _Head(a_out, p_a, d_a)
            fused += a_out
        if "vision" in dims:
            self.video_model = AuViSubNet(dims["vision"], v_h, v_out, v_l, v_p)
            self.post_video = _Head(v_out, p_v, d_v)
            fused += v_out
        self.post_fusion = _Head(fused, p_f, d_f)

    def representations(self, **inputs):
        return encode_modalities(self, {"audio": "audio_model", "vision": "video_model"}, "cls",
                                 **inputs)

    def forward(self, **inputs):
        reps = self.representations(**inputs)
        m, f_fusion = self.post_fusion(torch.cat(list(reps.values()), dim=-1))
        feats = {"fusion": f_fusion}
        outs = {}
        for mod, head, key in (("text", "post_text", "text"), ("audio", "post_audio", "audio"),
                               ("vision", "post_video", "vision")):
            if mod in reps:
                outs[key], feats[key] = getattr(self, head)(reps[mod])
        return m, outs.get("text"), outs.get("audio"), outs.get("vision"), feats
