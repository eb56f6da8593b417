"""Torch modules of MMIM (MMSA ``src/MMSA/models/singleTask/MMIM.py``)."""

from __future__ import annotations

import torch
from torch import nn

from simsbench.estimators.modules._bert import encode_modalities
from simsbench.estimators.modules._blocks import packed_lstm

__all__ = ["CPC", "MMILB", "MMIMModule", "RNNEncoder"]


class RNNEncoder(nn.Module):
    """Packed (bi)LSTM over the real frames -> final states -> Dropout -> Linear.

    ``final_state_layer``: the final states of the ``"first"`` LSTM layer
    (the reference, ``MMSA src/MMSA/models/singleTask/MMIM.py``) or of the
    ``"last"`` one; the same with one layer.
    """

    def __init__(self, in_size, hidden_size, out_size, num_layers=1, dropout=0.0,
                 bidirectional=True, final_state_layer="first"):
        super().__init__()
        self.bidirectional = bidirectional
        self.final_state_layer = final_state_layer
        self.rnn = nn.LSTM(in_size, hidden_size, num_layers=num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0,
                           bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear((2 if bidirectional else 1) * hidden_size, out_size)

    def forward(self, x, lengths):
        # a packed run, through the fused kernel on CPU (see packed_lstm)
        _, h = packed_lstm(self.rnn, x, lengths.detach().clamp(1, x.shape[1]))
        # h: (layers * directions, B, hidden), the first layer's states first.
        # The reference reads h[0] and h[1]: the *first* layer's two
        # directions, whatever the depth.
        n_dir = 2 if self.bidirectional else 1
        first = 0 if self.final_state_layer == "first" else h.shape[0] - n_dir
        last = torch.cat((h[first], h[first + 1]), dim=-1) if self.bidirectional else h[first]
        return self.linear_1(self.dropout(last))


def _logdet_cov(z: torch.Tensor, guard: bool = False):
    """log det of the (biased) covariance of the rows of ``z``.

    Without ``guard`` this is the reference's ``torch.logdet`` (``-inf`` for
    a singular covariance, NaN for an empty ``z`` or a negative determinant);
    with it, None instead of a non-finite value (the caller skips the term).
    """
    if guard and z.shape[0] <= z.shape[1]:
        return None
    # in float32 even under bfloat16 autocast (precision="bfloat16"): torch
    # has no low-precision determinant, and it is ill-conditioned anyway
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.float()
        c = z - z.mean(dim=0, keepdim=True)
        cov = c.t() @ c / z.shape[0]
    if not guard:
        return torch.logdet(cov)
    sign, logabs = torch.linalg.slogdet(cov)
    if float(sign.detach()) <= 0 or not bool(torch.isfinite(logabs.detach())):
        return None
    return logabs


class MMILB(nn.Module):
    """Modality mutual-information lower bound of ``y`` given ``x``.

    ``mu(x)`` and ``logvar(x)`` are Linear -> ReLU -> Linear;
    ``lld = mean_batch sum -(mu - y)^2 / (2 exp(logvar))``.  With labels, ``y``
    is projected (Linear(y, y/4) + tanh) and split into positive and negative
    samples; with a memory of past batches the entropy
    ``H = 0.25 (logdet S_pos + logdet S_neg)`` is estimated (with
    ``entropy_guard`` only when both log-determinants are finite).
    """

    def __init__(self, x_size, y_size, entropy_guard=False):
        super().__init__()
        self.entropy_guard = entropy_guard
        self.mlp_mu = nn.Sequential(nn.Linear(x_size, y_size), nn.ReLU(),
                                    nn.Linear(y_size, y_size))
        self.mlp_logvar = nn.Sequential(nn.Linear(x_size, y_size), nn.ReLU(),
                                        nn.Linear(y_size, y_size))
        self.entropy_prj = nn.Sequential(nn.Linear(y_size, y_size // 4), nn.Tanh())

    def forward(self, x, y, labels=None, mem=None):
        mu, logvar = self.mlp_mu(x), self.mlp_logvar(x)
        lld = torch.mean(torch.sum(-((mu - y) ** 2) / 2.0 / torch.exp(logvar), dim=-1))
        pn = None
        H = None
        if labels is not None:
            z = self.entropy_prj(y)
            pn = {"pos": z[labels > 0], "neg": z[labels < 0]}
            if mem is not None and mem["pos"]:
                guard = self.entropy_guard
                ld_pos = _logdet_cov(torch.cat([*mem["pos"], pn["pos"]], dim=0), guard)
                ld_neg = _logdet_cov(torch.cat([*mem["neg"], pn["neg"]], dim=0), guard)
                if ld_pos is not None and ld_neg is not None:
                    H = 0.25 * (ld_pos + ld_neg)
        return lld, pn, H


class CPC(nn.Module):
    """Contrastive predictive coding score of ``x`` predicted from the fusion."""

    def __init__(self, x_size, y_size, n_layers=1):
        super().__init__()
        if n_layers == 1:
            self.net = nn.Linear(y_size, x_size)
        else:
            layers = [nn.Linear(y_size, x_size), nn.Tanh()]
            for _ in range(n_layers - 1):
                layers.append(nn.Linear(x_size, x_size))
            self.net = nn.Sequential(*layers)

    def forward(self, x, y):
        x_pred = self.net(y)
        x_pred = x_pred / x_pred.norm(dim=1, keepdim=True)
        x = x / x.norm(dim=1, keepdim=True)
        pos = torch.sum(x * x_pred, dim=-1)
        neg = torch.logsumexp(x @ x_pred.t(), dim=-1)
        return -(pos - neg).mean()


class _Fusion(nn.Module):
    """Dropout -> Linear -> tanh -> Linear -> tanh (the fusion) -> Linear(1)."""

    def __init__(self, in_size, hidden, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(in_size, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)
        self.linear_3 = nn.Linear(hidden, 1)

    def forward(self, x):
        h = torch.tanh(self.linear_2(torch.tanh(self.linear_1(self.drop(x)))))
        return h, self.linear_3(h).reshape(-1)


class MMIMModule(nn.Module):
    """BERT [CLS] text, biLSTM audio/vision, MMILB pairs, CPC terms, fusion MLP.

    ``forward`` returns ``(prediction, extras)`` with ``extras`` holding
    ``lld``, ``nce``, ``H`` (None when not estimated) and the positive/negative
    projections ``pn`` for the entropy memory.
    """

    def __init__(self, dims, text_encoder, text_dim, hidden, outs, n_layer, bidirectional,
                 dropouts, d_prjh, cpc_layers, add_va, entropy_guard=False,
                 final_state_layer="first"):
        super().__init__()
        self.modalities = tuple(dims)
        d_ah, d_vh = hidden
        d_aout, d_vout = outs
        p_a, p_v, p_prj = dropouts
        widths = {}
        if "text" in dims:
            if text_encoder is not None:
                self.text_encoder = text_encoder
            widths["text"] = text_dim
        if "audio" in dims:
            self.acoustic_enc = RNNEncoder(dims["audio"], d_ah, d_aout, n_layer,
                                           p_a if n_layer > 1 else 0.0, bidirectional,
                                           final_state_layer)
            widths["audio"] = d_aout
        if "vision" in dims:
            self.visual_enc = RNNEncoder(dims["vision"], d_vh, d_vout, n_layer,
                                         p_v if n_layer > 1 else 0.0, bidirectional,
                                         final_state_layer)
            widths["vision"] = d_vout
        # MMILB pairs (x -> y): text->vision, text->audio[, vision->audio].
        self.pairs = []
        for key, x, y in (("tv", "text", "vision"), ("ta", "text", "audio"),
                          ("va", "vision", "audio")):
            if key == "va" and not add_va:
                continue
            if x in widths and y in widths:
                self.add_module(f"mi_{key}", MMILB(widths[x], widths[y], entropy_guard))
                self.pairs.append((key, x, y))
        for mod, name in (("text", "cpc_zt"), ("vision", "cpc_zv"), ("audio", "cpc_za")):
            if mod in widths:
                self.add_module(name, CPC(widths[mod], d_prjh, cpc_layers))
        self.fusion_prj = _Fusion(sum(widths.values()), d_prjh, p_prj)
        # The reference re-initialises every non-BERT weight matrix with
        # xavier-normal before training.
        for name, p in self.named_parameters():
            if not name.startswith("text_encoder.") and p.dim() > 1:
                nn.init.xavier_normal_(p)

    def representations(self, **inputs):
        return encode_modalities(self, {"audio": "acoustic_enc", "vision": "visual_enc"}, "cls",
                                 **inputs)

    def forward(self, labels=None, mem=None, **inputs):
        reps = self.representations(**inputs)
        lld, H, pn = 0.0, None, {}
        for key, x, y in self.pairs:
            l_k, pn[key], h_k = getattr(self, f"mi_{key}")(
                reps[x], reps[y], labels=labels, mem=None if mem is None else mem[key])
            lld = lld + l_k
            if h_k is not None:
                H = h_k if H is None else H + h_k
        fusion, pred = self.fusion_prj(torch.cat(list(reps.values()), dim=1))
        nce = 0.0
        for mod, name in (("text", "cpc_zt"), ("vision", "cpc_zv"), ("audio", "cpc_za")):
            if mod in reps:
                nce = nce + getattr(self, name)(reps[mod], fusion)
        return pred, {"lld": lld, "nce": nce, "H": H, "pn": pn}
