"""The MulT network (MMSA ``src/MMSA/models/singleTask/MULT.py``); its
transformer encoders are in :mod:`simsbench.estimators.modules._transformer`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simsbench.estimators.modules._transformer import MulTEncoder

__all__ = ["MulTModule"]

_SHORT = {"text": "l", "audio": "a", "vision": "v"}


class MulTModule(nn.Module):
    """Temporal Conv1d projections, crossmodal transformers for every
    (target <- source) pair, a self-attention "memory" transformer per
    target, the last step of each, and a residual output block.

    With one modality the crossmodal stage is a self-attention transformer
    over that modality.  Inputs are the padded sequences and their lengths;
    internally each modality is packed to its real steps when
    ``key_padding_mask`` is on, otherwise every padded step counts as real
    (the reference).
    """

    def __init__(self, dims, d_model, num_heads, nlevels, kernel_sizes, attn_dropout,
                 attn_dropout_a, attn_dropout_v, relu_dropout, embed_dropout, res_dropout,
                 output_dropout, text_dropout, attn_mask, key_padding_mask,
                 positional_embedding):
        super().__init__()
        self.modalities = tuple(dims)
        self.d = d_model
        self.kernel_sizes = dict(zip(("text", "audio", "vision"), kernel_sizes))
        self.text_dropout = text_dropout
        self.output_dropout = output_dropout
        self.key_padding_mask = key_padding_mask
        src_dropout = {"text": attn_dropout, "audio": attn_dropout_a, "vision": attn_dropout_v}
        # The reference registers every projection but skips it when the
        # feature size already is d (its weights then stay unused).
        self.projected = {m: D != d_model for m, D in dims.items()}
        for m, D in dims.items():
            conv = nn.Conv1d(D, d_model, kernel_size=self.kernel_sizes[m], padding=0, bias=False)
            setattr(self, f"proj_{_SHORT[m]}", conv)
        enc = dict(num_heads=num_heads, relu_dropout=relu_dropout, res_dropout=res_dropout,
                   embed_dropout=embed_dropout, attn_mask=attn_mask,
                   positions=positional_embedding)
        self.pairs = []
        for t in self.modalities:
            sources = [s for s in self.modalities if s != t] or [t]
            for s in sources:
                self.pairs.append((t, s))
                setattr(self, self._pair_name(t, s),
                        MulTEncoder(d_model, layers=nlevels, attn_dropout=src_dropout[s], **enc))
            mem_dim = d_model * len(sources)
            setattr(self, f"trans_{_SHORT[t]}_mem",
                    MulTEncoder(mem_dim, layers=max(nlevels, 3), attn_dropout=attn_dropout,
                                **enc))
        combined = sum(d_model * max(1, len(self.modalities) - 1) for _ in self.modalities)
        self.proj1 = nn.Linear(combined, combined)
        self.proj2 = nn.Linear(combined, combined)
        self.out_layer = nn.Linear(combined, 1)

    @staticmethod
    def _pair_name(t, s):
        if t == s:
            return f"trans_{_SHORT[t]}_self"
        return f"trans_{_SHORT[t]}_with_{_SHORT[s]}"

    def _project(self, m, x, lengths):
        """(B, L, D) padded -> packed (N, d), lengths list, packed positions."""
        B, L, _ = x.shape
        k = self.kernel_sizes[m]
        conv = getattr(self, f"proj_{_SHORT[m]}") if self.projected[m] else None
        if conv is None:
            k = 1
        if self.key_padding_mask and lengths is not None:
            lengths = lengths.to(torch.long).clamp(1, L)
            L_used = min(L, max(int(lengths.max()), k))
            x = x[:, :L_used]  # trim the batch's common padding
            out_len = (lengths - k + 1).clamp(min=1)
        else:
            L_used = L
            out_len = torch.full((B,), L - k + 1, dtype=torch.long)
        if m == "text" and self.text_dropout > 0:
            x = F.dropout(x, self.text_dropout, self.training)
        L_out = L_used - k + 1
        steps = torch.arange(L_out, device=x.device)
        keep = steps[None, :] < out_len.to(x.device)[:, None]
        all_real = bool(keep.all())
        if conv is None:
            y = x
        elif k == 1:  # a pointwise conv: project only the real steps
            w = conv.weight.view(conv.weight.shape[0], -1)
            y = F.linear(x if all_real else x[keep], w)
            pos = (steps[None, :].expand(B, L_out) + 1)
            pos = pos.reshape(-1) if all_real else pos[keep]
            return (y.reshape(-1, y.shape[-1]), out_len.tolist(), pos)
        else:
            y = conv(x.transpose(1, 2)).transpose(1, 2)
        pos = steps[None, :].expand(B, L_out) + 1
        if all_real:
            return y.reshape(B * L_out, -1), out_len.tolist(), pos.reshape(-1)
        return y[keep], out_len.tolist(), pos[keep]

    def forward(self, text=None, audio=None, vision=None, text_lengths=None,
                audio_lengths=None, vision_lengths=None, **kw):
        inputs = {"text": text, "audio": audio, "vision": vision}
        lengths = {"text": text_lengths, "audio": audio_lengths, "vision": vision_lengths}
        seqs = {m: self._project(m, inputs[m], lengths[m]) for m in self.modalities}
        lasts = []
        for t in self.modalities:
            xt, lt, pt = seqs[t]
            outs = []
            for (tt, s) in self.pairs:
                if tt != t:
                    continue
                enc = getattr(self, self._pair_name(t, s))
                if s == t:
                    outs.append(enc(xt, lt, pt))
                else:
                    xs, ls, ps = seqs[s]
                    outs.append(enc(xt, lt, pt, xs, ls, ps))
            h = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
            mem = getattr(self, f"trans_{_SHORT[t]}_mem")
            lasts.append(mem(h, lt, pt, last_only=True))
        last_hs = torch.cat(lasts, dim=-1)
        proj = self.proj2(F.dropout(F.relu(self.proj1(last_hs)), self.output_dropout,
                                    self.training))
        return self.out_layer(proj + last_hs)
