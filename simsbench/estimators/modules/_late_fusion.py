"""Torch modules of the late-fusion family: LF-DNN, TFN, LMF and their
multi-task versions (MLF-DNN, MTFN, MLMF).

Every one of them encodes the time-averaged audio and vision with a 3-layer
DNN (``SubNet``) and the text sequence with an LSTM (``TextSubNet``), MMSA
``src/MMSA/models/subNets/FeatureNets.py``: :class:`LateFusionEncoders`,
written once here; the models differ in the fusion that follows
(concatenation and an MLP, the tensor fusion, the low-rank fusion) and in
the unimodal heads of the multi-task versions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.init import xavier_normal_

from simsbench.estimators.modules._blocks import PostHead, SubNet, TextSubNet
from simsbench.estimators.modules._fusion import TensorFusion

__all__ = [
    "LFDNNModule",
    "LMFModule",
    "LateFusionEncoders",
    "LateFusionTrunk",
    "LowRankFusion",
    "MLFDNNModule",
    "MLMFModule",
    "MTFNModule",
    "TFNModule",
    "UnimodalHeads",
]


# ---------------------------------------------------------------------------
# the shared encoders and heads


class LateFusionEncoders(nn.Module):
    """Audio/vision ``SubNet`` and text ``TextSubNet`` for the modalities in ``dims``.

    The encoders are attributes of the module itself, under the reference's
    names (``audio_subnet``, ``video_subnet``, ``text_subnet``, built in
    that order); the models of the family subclass it and add their fusion,
    or hold it as their ``trunk``.  ``out_dims`` maps each modality to the
    width of its representation.

    ``representations`` returns a dict in ``encoding_order``: the order in
    which the reference's ``forward`` runs the encoders (which also orders
    the dropout masks drawn) and concatenates their outputs -- audio,
    vision, text; TFN runs the text first.

    ``text_state_dropout=False`` gives the reference's text encoder, whose
    dropout is a no-op (``dropouts[2]`` is then unused); the default, True,
    applies ``dropouts[2]``, which callers whose estimator zeroes it for the
    reference rely on (LMF, MLMF).
    """

    encoding_order = ("audio", "vision", "text")

    def __init__(self, dims, hidden_dims, text_out, dropouts, text_state_dropout=True):
        super().__init__()
        h_t, h_a, h_v = hidden_dims
        p_a, p_v, p_t = dropouts[:3]
        self.modalities = tuple(dims)
        self.out_dims = {}
        if "audio" in dims:
            self.audio_subnet = SubNet(dims["audio"], h_a, p_a)
            self.out_dims["audio"] = h_a
        if "vision" in dims:
            self.video_subnet = SubNet(dims["vision"], h_v, p_v)
            self.out_dims["vision"] = h_v
        if "text" in dims:
            self.text_subnet = TextSubNet(dims["text"], h_t, text_out,
                                          dropout=p_t if text_state_dropout else 0.0)
            self.out_dims["text"] = text_out

    def representations(self, text=None, audio=None, vision=None, text_lengths=None, **kw):
        reps = {}
        for m in self.encoding_order:
            if m not in self.modalities:
                continue
            if m == "text":
                reps[m] = self.text_subnet(text, text_lengths)
            elif m == "audio":
                reps[m] = self.audio_subnet(audio)
            else:
                reps[m] = self.video_subnet(vision)
        return reps


#: The name the multi-task models' ``trunk`` attribute was documented under.
LateFusionTrunk = LateFusionEncoders


class UnimodalHeads(nn.Module):
    """The T/A/V heads: Dropout -> Linear(h, d) -> ReLU -> Linear -> ReLU -> Linear(d, 1)."""

    def __init__(self, in_dims, post_dims, post_dropouts):
        super().__init__()
        d_t, d_a, d_v = post_dims
        p_t, p_a, p_v = post_dropouts[:3]
        if "text" in in_dims:
            self.post_text = PostHead(in_dims["text"], d_t, p_t)
        if "audio" in in_dims:
            self.post_audio = PostHead(in_dims["audio"], d_a, p_a)
        if "vision" in in_dims:
            self.post_video = PostHead(in_dims["vision"], d_v, p_v)

    def forward(self, reps):
        """(T, A, V) predictions of shape (B,); None for an absent modality."""
        out = []
        for m, attr in (("text", "post_text"), ("audio", "post_audio"),
                        ("vision", "post_video")):
            out.append(getattr(self, attr)(reps[m]) if m in reps else None)
        return tuple(out)

# ---------------------------------------------------------------------------
# LF-DNN and MLF-DNN: concatenation and an MLP


class LFDNNModule(LateFusionEncoders):
    """The encoders' outputs concatenated, then an MLP head.

    ``text_state_dropout=False`` gives the reference's text encoder (its
    dropout module has p=0).
    """

    def __init__(self, dims, hidden_dims, text_out, post_fusion_dim, dropouts,
                 text_state_dropout=False):
        p_a, p_v, p_t, p_post = dropouts
        super().__init__(dims, hidden_dims, text_out, (p_a, p_v, p_t), text_state_dropout)
        self.post_fusion = PostHead(sum(self.out_dims.values()), post_fusion_dim, p_post)

    def forward(self, **inputs):
        reps = self.representations(**inputs)
        return self.post_fusion(torch.cat(list(reps.values()), dim=1))


class MLFDNNModule(nn.Module):
    """Shared trunk, concatenation + MLP for M, one MLP head per modality."""

    def __init__(self, dims, hidden_dims, text_out, post_fusion_dim, post_dims,
                 dropouts, post_dropouts, text_state_dropout=False):
        super().__init__()
        self.trunk = LateFusionTrunk(dims, hidden_dims, text_out, dropouts,
                                     text_state_dropout=text_state_dropout)
        self.heads = UnimodalHeads(self.trunk.out_dims, post_dims, post_dropouts)
        self.post_fusion = PostHead(sum(self.trunk.out_dims.values()), post_fusion_dim,
                                    post_dropouts[3])

    def representations(self, **inputs):
        return self.trunk.representations(**inputs)

    def forward(self, **inputs):
        reps = self.trunk.representations(**inputs)
        m = self.post_fusion(torch.cat(list(reps.values()), dim=1))
        return (m, *self.heads(reps))


# ---------------------------------------------------------------------------
# TFN and MTFN: the tensor fusion (MMSA src/MMSA/models/singleTask/TFN.py,
# src/MMSA/models/multiTask/MTFN.py)

# The reference's fixed output range and shift (not parameters): the fused
# prediction is sigmoid(x) * 6 - 3, in (-3, 3) even on CH-SIMS.
OUTPUT_RANGE = 6.0
OUTPUT_SHIFT = -3.0


class _TensorFusionTrunk(LateFusionEncoders):
    """The encoders (text first) and the tensor-fusion M head.

    ``fusion`` holds the first post-fusion Linear (the reference's
    ``post_fusion_layer_1``); ``post_fusion_layer_2``/``_3`` follow.
    ``text_state_dropout=False`` gives the reference's text encoder, whose
    dropout is a no-op.
    """

    encoding_order = ("text", "audio", "vision")

    def __init__(self, dims, hidden_dims, text_out, post_fusion_dim, dropouts,
                 post_fusion_dropout, text_state_dropout=False):
        p_a, p_v, p_t = dropouts
        super().__init__(dims, hidden_dims, text_out, (p_a, p_v, p_t), text_state_dropout)
        sizes = tuple(self.out_dims.get(m, 0) for m in ("audio", "vision", "text"))
        self.fusion = TensorFusion(sizes, post_fusion_dim, post_fusion_dropout)
        self.post_fusion_layer_2 = nn.Linear(post_fusion_dim, post_fusion_dim)
        self.post_fusion_layer_3 = nn.Linear(post_fusion_dim, 1)

    def fused(self, reps):
        x = torch.relu(self.fusion(audio=reps.get("audio"), vision=reps.get("vision"),
                                   text=reps.get("text")))
        x = torch.relu(self.post_fusion_layer_2(x))
        x = self.post_fusion_layer_3(x)
        return (torch.sigmoid(x) * OUTPUT_RANGE + OUTPUT_SHIFT).reshape(-1)


class TFNModule(_TensorFusionTrunk):
    """TFN: encoders, ``[1;a] ⊗ [1;v] ⊗ [1;t]``, Dropout, 3-layer MLP, sigmoid·6−3."""

    def __init__(self, dims, hidden_dims, text_out, post_fusion_dim, dropouts,
                 text_state_dropout=False):
        p_a, p_v, p_t, p_post = dropouts
        super().__init__(dims, hidden_dims, text_out, post_fusion_dim, (p_a, p_v, p_t), p_post,
                         text_state_dropout)

    def forward(self, **inputs):
        return self.fused(self.representations(**inputs))


class MTFNModule(_TensorFusionTrunk):
    """MTFN: the TFN trunk and M head plus unimodal T/A/V heads."""

    def __init__(self, dims, hidden_dims, text_out, post_fusion_dim, post_dims,
                 dropouts, post_dropouts, text_state_dropout=False):
        p_text, p_audio, p_video, p_fusion = post_dropouts
        super().__init__(dims, hidden_dims, text_out, post_fusion_dim, dropouts, p_fusion,
                         text_state_dropout)
        d_t, d_a, d_v = post_dims
        h_t, h_a, h_v = hidden_dims
        if "text" in dims:
            self.post_text = PostHead(text_out, d_t, p_text)
        if "audio" in dims:
            self.post_audio = PostHead(h_a, d_a, p_audio)
        if "vision" in dims:
            self.post_video = PostHead(h_v, d_v, p_video)

    def forward(self, **inputs):
        reps = self.representations(**inputs)
        out_t = self.post_text(reps["text"]) if "text" in reps else None
        out_a = self.post_audio(reps["audio"]) if "audio" in reps else None
        out_v = self.post_video(reps["vision"]) if "vision" in reps else None
        return self.fused(reps), out_t, out_a, out_v


# ---------------------------------------------------------------------------
# LMF and MLMF: the low-rank fusion (MMSA src/MMSA/models/singleTask/LMF.py,
# src/MMSA/models/multiTask/MLMF.py)

# parameter name of each modality's factor (the reference's names)
_FACTOR = {"audio": "audio_factor", "vision": "video_factor", "text": "text_factor"}


class LowRankFusion(nn.Module):
    """Low-rank fusion of unimodal representations to one output.

    Each representation ``h_m`` gets a constant 1 prepended; its modality
    factor ``W_m`` of shape ``(rank, d_m + 1, 1)`` maps it to ``rank`` values;
    the rank vectors are multiplied elementwise across modalities and
    combined by ``fusion_weights`` (1, rank) plus ``fusion_bias``.  With all
    three modalities this equals the tensor-fusion output whose weight tensor
    is the rank-``rank`` decomposition; with fewer it fuses those present.
    """

    def __init__(self, in_dims: dict, rank: int):
        super().__init__()
        self.rank = rank
        self.modalities = tuple(m for m in ("audio", "vision", "text") if m in in_dims)
        for m in self.modalities:
            factor = nn.Parameter(torch.empty(rank, in_dims[m] + 1, 1))
            xavier_normal_(factor)
            self.register_parameter(_FACTOR[m], factor)
        self.fusion_weights = nn.Parameter(torch.empty(1, rank))
        self.fusion_bias = nn.Parameter(torch.zeros(1, 1))
        xavier_normal_(self.fusion_weights)

    def fused(self, reps: dict) -> torch.Tensor:
        """The (B, rank) product of the modality projections."""
        z = None
        for m in self.modalities:
            h = reps[m]
            h1 = torch.cat([h.new_ones(h.shape[0], 1), h], dim=1)
            proj = h1 @ getattr(self, _FACTOR[m])[..., 0].t()  # (B, rank)
            z = proj if z is None else z * proj
        return z

    def forward(self, reps: dict) -> torch.Tensor:
        z = self.fused(reps)
        return (z @ self.fusion_weights.t() + self.fusion_bias).reshape(-1)


class LMFModule(nn.Module):
    """LF-DNN's encoders (text output h_t // 2) and a low-rank fusion output."""

    def __init__(self, dims, hidden_dims, rank, dropouts):
        super().__init__()
        self.trunk = LateFusionTrunk(dims, hidden_dims, hidden_dims[0] // 2, dropouts)
        self.fusion = LowRankFusion(self.trunk.out_dims, rank)

    def representations(self, **inputs):
        return self.trunk.representations(**inputs)

    def forward(self, **inputs):
        return self.fusion(self.trunk.representations(**inputs))


class MLMFModule(nn.Module):
    """LMF's trunk and fusion for M plus one MLP head per modality."""

    def __init__(self, dims, hidden_dims, rank, post_dims, dropouts, post_dropouts):
        super().__init__()
        self.trunk = LateFusionTrunk(dims, hidden_dims, hidden_dims[0] // 2, dropouts)
        self.fusion = LowRankFusion(self.trunk.out_dims, rank)
        self.heads = UnimodalHeads(self.trunk.out_dims, post_dims, post_dropouts)

    def representations(self, **inputs):
        return self.trunk.representations(**inputs)

    def forward(self, **inputs):
        reps = self.trunk.representations(**inputs)
        return (self.fusion(reps), *self.heads(reps))
