"""Torch modules of AV-MC and AV-MC (Semi) (``ch-sims-v2
models/multiTask/V1.py``, ``models/multiTask/V1_Semi.py``)."""

from __future__ import annotations

import torch
from torch import nn

from simsbench.estimators.modules._blocks import PostHead, SubNet, packed_lstm

__all__ = ["HEAD_INDEX", "AVMCModule", "AVSubNet", "Reconstruction"]

#: The column of each unimodal head in the (M, T, A, V) outputs.
HEAD_INDEX = {"text": 1, "audio": 2, "vision": 3}


class AVSubNet(nn.Module):
    """The V1_Semi code's audio/vision encoder ("AVsubNet",
    ``ch-sims-v2 models/multiTask/V1_Semi.py``).

    Linear(D, h) -> Dropout -> packed BiLSTM(h, h) -> LayerNorm(2h) -> packed
    BiLSTM(2h, h), both over the real frames.  Output (B, 4h): the final
    states ordered [layer-1 forward, layer-2 forward, layer-1 backward,
    layer-2 backward], as the reference concatenates them.
    """

    def __init__(self, in_size: int, hidden_size: int, dropout: float):
        super().__init__()
        self.liner = nn.Linear(in_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.rnn1 = nn.LSTM(hidden_size, hidden_size, bidirectional=True, batch_first=True)
        self.rnn2 = nn.LSTM(2 * hidden_size, hidden_size, bidirectional=True, batch_first=True)
        self.layer_norm = nn.LayerNorm(2 * hidden_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        total = x.shape[1]
        lengths = lengths.detach().to(x.device, torch.long).clamp(1, total)
        x = self.dropout(self.liner(x))
        # packed runs, through the fused kernel on CPU (see packed_lstm); the
        # LayerNorm sees the steps up to the longest clip (the rest were
        # padding the second LSTM never reads)
        out1, h1 = packed_lstm(self.rnn1, x, lengths)
        _, h2 = packed_lstm(self.rnn2, self.layer_norm(out1), lengths)
        return torch.cat([h1[0], h2[0], h1[1], h2[1]], dim=-1)


class _Head(PostHead):
    """Unimodal head: Dropout -> Linear(in, d) -> ReLU -> Linear(d, d) -> ReLU
    -> Linear(d, 1) (:class:`PostHead`'s layers).  ``forward`` returns the
    prediction (B,) and both hidden layers (the fusion takes one of them)."""

    def forward(self, x):
        x2 = torch.relu(self.layer_1(self.dropout(x)))
        x3 = torch.relu(self.layer_2(x2))
        return self.layer_3(x3).reshape(-1), x2, x3


class _Fusion(nn.Module):
    """Dropout -> Linear(in, d) -> Linear(d, d) -> Linear(d, 1) (no
    nonlinearities, as in the reference), squashed to ``(-r, r)`` by
    ``sigmoid * 2r - r``."""

    def __init__(self, in_size: int, hidden: int, dropout: float, output_range: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.layer_1 = nn.Linear(in_size, hidden)
        self.layer_2 = nn.Linear(hidden, hidden)
        self.layer_3 = nn.Linear(hidden, 1)
        self.output_range = float(output_range)

    def forward(self, x):
        x = self.layer_3(self.layer_2(self.layer_1(self.dropout(x))))
        r = self.output_range
        return (torch.sigmoid(x) * (2 * r) - r).reshape(-1)


class Reconstruction(nn.Module):
    """The V1_Semi code's "Reconsitution" MLP: Dropout(0) -> Linear(d, d) ->
    ReLU -> Linear(d, D), from a head's first hidden layer back to the
    modality's input width.

    The reference computes it in every forward pass but no loss uses its
    output, so it never receives a gradient; :class:`AVMCModule` registers it
    (it counts among the reference's trainable parameters) and does not
    call it.
    """

    def __init__(self, in_size: int, out_size: int):
        super().__init__()
        self.dropout = nn.Dropout(0.0)  # the config leaves rec_dropout unset: 0
        self.layer_1 = nn.Linear(in_size, in_size)
        self.layer_2 = nn.Linear(in_size, out_size)

    def forward(self, x):
        return self.layer_2(torch.relu(self.layer_1(self.dropout(x))))


class AVMCModule(nn.Module):
    """Multitask late-fusion backbone of AV-MC.

    Encoders: text = Linear over the [CLS] vector; audio/vision = the 3-layer
    ``SubNet`` on time-averaged features (``encoder="dnn"``) or ``AVSubNet``
    over the sequences (``encoder="lstm"``).  Each encoder output feeds its
    unimodal head; the fusion head takes the concatenated hidden layer
    ``fusion_layer`` (2: the first, 3: the second) of the unimodal heads.
    With ``reconstruction`` the three unused reconstruction MLPs of the
    V1_Semi code are registered (``rec_<modality>``), never called.
    """

    def __init__(self, dims, encoder, hidden_dims, post_dims, post_fusion_dim, dropouts,
                 post_dropouts, fusion_layer, output_range, reconstruction=False):
        super().__init__()
        h = dict(zip(("text", "audio", "vision"), hidden_dims))
        d = dict(zip(("text", "audio", "vision"), post_dims))
        p_enc = dict(zip(("audio", "vision"), dropouts))
        p_post = dict(zip(("text", "audio", "vision"), post_dropouts[:3]))
        self.modalities = tuple(dims)
        self.encoder_kind = encoder
        self.fusion_layer = int(fusion_layer)
        fused = 0
        for m in self.modalities:
            if m == "text":
                enc, out = nn.Linear(dims[m], h[m]), h[m]
            elif encoder == "lstm":
                enc, out = AVSubNet(dims[m], h[m], p_enc[m]), 4 * h[m]
            else:
                enc, out = SubNet(dims[m], h[m], p_enc[m]), h[m]
            setattr(self, f"{m}_encoder", enc)
            setattr(self, f"post_{m}", _Head(out, d[m], p_post[m]))
            fused += d[m]
        self.fusion = _Fusion(fused, post_fusion_dim, post_dropouts[3], output_range)
        if reconstruction:
            for m in self.modalities:
                setattr(self, f"rec_{m}", Reconstruction(d[m], dims[m]))

    def encode(self, text=None, audio=None, vision=None, audio_lengths=None,
               vision_lengths=None, **kw):
        reps = {}
        for m, x, lengths in (("text", text, None), ("audio", audio, audio_lengths),
                              ("vision", vision, vision_lengths)):
            if m not in self.modalities:
                continue
            enc = getattr(self, f"{m}_encoder")
            if m == "text":
                reps[m] = enc(x[:, 0, :] if x.ndim == 3 else x)
            elif self.encoder_kind == "lstm":
                if lengths is None:
                    lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
                reps[m] = enc(x, lengths)
            else:
                reps[m] = enc(x)
        return reps

    def head(self, modality, rep):
        """Prediction of the unimodal head of ``modality`` for ``rep``."""
        return getattr(self, f"post_{modality}")(rep)[0]

    def heads(self, reps):
        """``(M, T, A, V)`` from the encoder outputs (None for absent heads)."""
        out = [None, None, None, None]
        feats = []
        for m in self.modalities:
            pred, x2, x3 = getattr(self, f"post_{m}")(reps[m])
            out[HEAD_INDEX[m]] = pred
            feats.append(x2 if self.fusion_layer == 2 else x3)
        out[0] = self.fusion(torch.cat(feats, dim=1))
        return tuple(out)

    def representations(self, **inputs):
        return self.encode(**inputs)

    def forward(self, **inputs):
        return self.heads(self.encode(**inputs))
