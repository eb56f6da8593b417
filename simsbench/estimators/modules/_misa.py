"""Torch modules and auxiliary losses of MISA (MMSA
``src/MMSA/models/singleTask/MISA.py``)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from simsbench.estimators.modules._bert import encode_modalities
from simsbench.estimators.modules._blocks import packed_lstm

__all__ = ["RNN_CELLS", "MISAModule", "cmd_loss", "diff_loss"]

#: The recurrent cells of ``rnncell``.
RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class _Extract(nn.Module):
    """Two-layer BiRNN: RNN1(D -> D), LayerNorm(2D), RNN2(2D -> D), packed.

    Output: the final states of both layers and directions, (B, 4D).
    """

    def __init__(self, size, rnncell="lstm"):
        super().__init__()
        rnn = RNN_CELLS[rnncell]
        self.rnn1 = rnn(size, size, bidirectional=True, batch_first=True)
        self.rnn2 = rnn(2 * size, size, bidirectional=True, batch_first=True)
        self.layer_norm = nn.LayerNorm(2 * size)

    @staticmethod
    def _final(out):
        return out[1][0] if isinstance(out[1], tuple) else out[1]

    def forward(self, x, lengths):
        if isinstance(self.rnn1, nn.LSTM):  # fused on CPU (see packed_lstm)
            lengths = lengths.detach().clamp(1, x.shape[1])
            out1, h1 = packed_lstm(self.rnn1, x, lengths)
            _, h2 = packed_lstm(self.rnn2, self.layer_norm(out1), lengths)
            h = torch.cat((h1, h2), dim=2)  # (2, B, 2D)
            return h.permute(1, 0, 2).reshape(x.shape[0], -1)
        lengths = lengths.cpu().clamp(min=1)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out1 = self.rnn1(packed)
        padded, _ = pad_packed_sequence(out1[0], batch_first=True)
        normed = self.layer_norm(padded)
        packed2 = pack_padded_sequence(normed, lengths, batch_first=True, enforce_sorted=False)
        out2 = self.rnn2(packed2)
        h = torch.cat((self._final(out1), self._final(out2)), dim=2)  # (2, B, 2D)
        return h.permute(1, 0, 2).reshape(x.shape[0], -1)


def _projector(in_size, hidden):
    return nn.Sequential(nn.Linear(in_size, hidden), nn.ReLU(), nn.LayerNorm(hidden))


def diff_loss(x1, x2):
    """Soft orthogonality: mean squared entry of the row-normalised X1^T X2."""
    x1 = x1 - x1.mean(dim=0, keepdim=True)
    x2 = x2 - x2.mean(dim=0, keepdim=True)
    x1 = x1 / (x1.norm(p=2, dim=1, keepdim=True).detach() + 1e-6)
    x2 = x2 / (x2.norm(p=2, dim=1, keepdim=True).detach() + 1e-6)
    return torch.mean((x1.t() @ x2) ** 2)


def cmd_loss(x1, x2, n_moments=5):
    """Central moment discrepancy (Zellinger et al.), moments 1..n_moments."""
    m1, m2 = x1.mean(dim=0), x2.mean(dim=0)
    total = torch.sqrt(torch.sum((m1 - m2) ** 2))
    s1, s2 = x1 - m1, x2 - m2
    for k in range(2, n_moments + 1):
        total = total + torch.sqrt(torch.sum(((s1 ** k).mean(dim=0) - (s2 ** k).mean(dim=0)) ** 2))
    return total


class MISAModule(nn.Module):
    """Projections, private/shared encoders, reconstruction, transformer fusion.

    ``forward`` returns ``(prediction, aux)``: ``aux`` is the weighted sum of
    the difference, CMD and reconstruction losses in training mode, ``None``
    in eval mode.
    """

    def __init__(self, dims, text_encoder, text_dim, hidden, dropout, rnncell, weights):
        super().__init__()
        self.modalities = tuple(dims)
        self.diff_weight, self.sim_weight, self.recon_weight = weights
        if "text" in dims:
            if text_encoder is not None:
                self.text_encoder = text_encoder
            self.project_t = _projector(text_dim, hidden)
            self.private_t = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
            self.recon_t = nn.Linear(hidden, hidden)
            # Registered but unused, as in the reference (parameter parity).
            self.tlayer_norm = nn.LayerNorm(2 * text_dim)
        if "vision" in dims:
            self.extract_v = _Extract(dims["vision"], rnncell)
            self.project_v = _projector(4 * dims["vision"], hidden)
            self.private_v = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
            self.recon_v = nn.Linear(hidden, hidden)
        if "audio" in dims:
            self.extract_a = _Extract(dims["audio"], rnncell)
            self.project_a = _projector(4 * dims["audio"], hidden)
            self.private_a = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
            self.recon_a = nn.Linear(hidden, hidden)
        self.shared = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
        # The shared/private discriminator: in the reference its outputs are
        # never used in the loss; kept registered for parameter parity.
        self.sp_discriminator = nn.Linear(hidden, 4)
        layer = nn.TransformerEncoderLayer(d_model=hidden, nhead=2)
        self.transformer_encoder = nn.TransformerEncoder(layer, num_layers=1,
                                                         enable_nested_tensor=False)
        k = len(dims)
        self.fusion = nn.Sequential(
            nn.Linear(2 * k * hidden, k * hidden), nn.Dropout(dropout), nn.ReLU(),
            nn.Linear(k * hidden, 1),
        )

    def _utterances(self, **inputs):
        """Utterance vectors keyed ``"t"``, ``"v"``, ``"a"`` (vision encoded
        before audio)."""
        reps = encode_modalities(self, {"vision": "extract_v", "audio": "extract_a"}, "mean",
                                 **inputs)
        return {m[0]: r for m, r in reps.items()}

    def _codes(self, **inputs):
        utt = self._utterances(**inputs)
        orig = {m: getattr(self, f"project_{m}")(u) for m, u in utt.items()}
        private = {m: getattr(self, f"private_{m}")(o) for m, o in orig.items()}
        shared = {m: self.shared(o) for m, o in orig.items()}
        return orig, private, shared

    def representations(self, **inputs):
        """Private and shared codes per modality, concatenated (B, 2 hidden)."""
        _, private, shared = self._codes(**inputs)
        names = {"t": "text", "a": "audio", "v": "vision"}
        return {names[m]: torch.cat([private[m], shared[m]], dim=1) for m in private}

    def forward(self, **inputs):
        orig, private, shared = self._codes(**inputs)
        order = [m for m in ("t", "v", "a") if m in private]
        h = torch.stack([private[m] for m in order] + [shared[m] for m in order], dim=0)
        h = self.transformer_encoder(h)
        pred = self.fusion(torch.cat(list(h), dim=1)).reshape(-1)
        if not self.training:
            return pred, None
        # Difference loss: private vs shared per modality, and private pairs.
        diff = 0.0
        for m in order:
            diff = diff + diff_loss(private[m], shared[m])
        for a, b in (("a", "t"), ("a", "v"), ("t", "v")):
            if a in private and b in private:
                diff = diff + diff_loss(private[a], private[b])
        # CMD similarity between the shared codes, averaged over the pairs.
        pairs = [(a, b) for a, b in (("t", "v"), ("t", "a"), ("a", "v"))
                 if a in shared and b in shared]
        sim = sum(cmd_loss(shared[a], shared[b]) for a, b in pairs) / max(len(pairs), 1)
        # Reconstruction of the projected utterances.
        recon = sum(
            torch.mean((getattr(self, f"recon_{m}")(private[m] + shared[m]) - orig[m]) ** 2)
            for m in order
        ) / len(order)
        aux = self.diff_weight * diff + self.sim_weight * sim + self.recon_weight * recon
        return pred, aux
