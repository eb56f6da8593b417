"""LF-DNN: late-fusion deep neural network (CH-SIMS Table 2).

Also home of what the late-fusion family (LF-DNN, TFN, LMF and their
multi-task versions) shares: the pooled inputs (:func:`late_fusion_inputs`)
and the two corrections of its encoders, :data:`POOLING` and
:data:`TEXT_DROPOUT`, each one constructor parameter.
"""

from __future__ import annotations

import torch
from torch import nn

from simsbench.estimators._constraints import Ints, Probabilities, boolean, options, positive_int
from simsbench.estimators._deep import _ATTRIBUTES_DOC, _COMMON_DOC, DeepRegressor
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import lengths_of
from simsbench.estimators.modules._blocks import PostHead, SubNet, TextSubNet

# ---------------------------------------------------------------------------
# the late-fusion family's corrections (shared with _tfn.py, _mlf_dnn.py, _lmf.py)

POOLING = Correction(
    "pooling",
    "The reference time-averages audio and vision over the whole padded axis (zero "
    "padding included) and runs the text LSTM over every padded step; corrected: "
    "audio and vision are averaged over each clip's real frames and the LSTM's state "
    "is read after the clip's last real token.",
    {"pooling": ("padded", "length_aware")},
)
"""``pooling``: ``"padded"`` (reference) or ``"length_aware"``."""

TEXT_DROPOUT = Correction(
    "text_dropout",
    "The reference's text dropout is a no-op (its 1-layer text LSTM's dropout is forced "
    "to 0); corrected: the configured text dropout is applied to the LSTM's final state.",
    {"text_state_dropout": (False, True)},
)
"""``text_state_dropout``: False (reference) or True."""

POOLING_DOC = """
    pooling : {"padded", "length_aware"}, default="padded"
        How audio/vision are time-averaged and how far the text LSTM runs.
        ``"padded"`` is the reference (MMSA's ``need_normalized`` inputs):
        the mean over the whole padded axis, zero padding included, and the
        LSTM over every padded step.  ``"length_aware"`` (correction
        ``pooling``): the mean over each clip's real frames and the LSTM's
        state after its last real token (what a packed sequence gives).
    text_state_dropout : bool, default=False
        Whether the text dropout is applied to the text LSTM's final state.
        False is the reference, whose ``TextSubNet`` forces its dropout to 0
        for a 1-layer LSTM; True is correction ``text_dropout``."""

CORRECTIONS_NOTES = """
    * ``pooling`` (``pooling="length_aware"``): padding is left out of the
      audio/vision means and of the text LSTM (see ``pooling``);
    * ``text_dropout`` (``text_state_dropout=True``): the text dropout the
      configuration sets acts on the text LSTM's final state;
    * ``selection`` and ``epoch_cap``: the training protocol's corrections
      (see ``selection`` and ``max_epochs``)."""


LATE_FUSION_CONSTRAINTS = {
    "pooling": [options("padded", "length_aware")],
    "text_state_dropout": [boolean],
}
"""The late-fusion family's correction parameters (:data:`POOLING`,
:data:`TEXT_DROPOUT`), declared by LF-DNN, TFN, LMF and their multi-task
versions."""


def late_fusion_inputs(est, X) -> dict:
    """Inputs of the late-fusion family (LF-DNN, TFN, LMF and their
    multi-task versions): pooled audio/vision, the text sequence and, for the
    length-aware mode, the text lengths."""
    padded = est.pooling == "padded"
    out = {}
    for m in est._modalities():
        if m == "text":
            out["text"] = X["text"]
            if not padded:
                out["text_lengths"] = lengths_of(X, "text")
        else:
            out[m] = est._pooled(X, m, padded=padded)
    return out


# ---------------------------------------------------------------------------
# torch module


class LFDNNModule(nn.Module):
    """Audio/vision SubNets and a text LSTM, concatenated, then an MLP head.

    ``text_state_dropout=False`` gives the reference's text encoder (its
    dropout module has p=0).
    """

    def __init__(self, dims, hidden_dims, text_out, post_fusion_dim, dropouts,
                 text_state_dropout=False):
        super().__init__()
        h_t, h_a, h_v = hidden_dims
        p_a, p_v, p_t, p_post = dropouts
        self.modalities = tuple(dims)
        fused = 0
        if "audio" in dims:
            self.audio_subnet = SubNet(dims["audio"], h_a, p_a)
            fused += h_a
        if "vision" in dims:
            self.video_subnet = SubNet(dims["vision"], h_v, p_v)
            fused += h_v
        if "text" in dims:
            self.text_subnet = TextSubNet(dims["text"], h_t, text_out,
                                          dropout=p_t if text_state_dropout else 0.0)
            fused += text_out
        self.post_fusion = PostHead(fused, post_fusion_dim, p_post)

    def representations(self, text=None, audio=None, vision=None, text_lengths=None, **kw):
        reps = {}
        if "audio" in self.modalities:
            reps["audio"] = self.audio_subnet(audio)
        if "vision" in self.modalities:
            reps["vision"] = self.video_subnet(vision)
        if "text" in self.modalities:
            reps["text"] = self.text_subnet(text, text_lengths)
        return reps

    def forward(self, **inputs):
        reps = self.representations(**inputs)
        return self.post_fusion(torch.cat(list(reps.values()), dim=1))


class LFDNN(DeepRegressor):
    __doc__ = """Late-fusion DNN (LF-DNN) regressor.

    Audio and vision are time-averaged and encoded by 3-layer DNNs
    (``SubNet``), text by a 1-layer LSTM; the three representations are
    concatenated and regressed by a 3-layer MLP, trained with L1 loss.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(128, 32, 128)
        (text, audio, vision) encoder widths.
    text_out : int, default=256
        Output width of the text encoder.
    post_fusion_dim : int, default=32
        Width of the fusion MLP.
    dropouts : tuple of 4 float, default=(0.3, 0.3, 0.3, 0.5)
        (audio, vision, text, post-fusion) dropout, in the reference's order.
        The text dropout acts only with ``text_state_dropout=True``.""" + POOLING_DOC \
        + _COMMON_DOC + _ATTRIBUTES_DOC + """
    Notes
    -----
    Reference configuration: MMSA ``src/MMSA/models/singleTask/LF_DNN.py``
    (encoders from ``src/MMSA/models/subNets/FeatureNets.py``) on the inputs
    of MMSA's ``src/MMSA/data_loader.py`` with ``need_normalized``, trained
    by ``src/MMSA/trains/singleTask/LF_DNN.py``: Adam over every parameter
    with one learning rate and weight decay, L1 loss.  The defaults are the
    CH-SIMS entry of ``src/MMSA/config/config_regression.json``: 635,821
    trainable parameters with CH-SIMS shapes.

    Corrections (named parameters, reference values by default; see
    ``simsbench.estimators._fidelity``):
""" + CORRECTIONS_NOTES + """

    References
    ----------
    .. [1] Williams, J., et al. "Recognizing emotions in video using
       multimodal DNN feature fusion." Grand Challenge and Workshop on Human
       Multimodal Language, 2018.
    .. [2] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020 (§5.1,
       Table 2).

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import LFDNN
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = LFDNN(max_epochs=2, random_state=0).fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    _corrections = (POOLING, TEXT_DROPOUT)

    _parameter_constraints = {
        "hidden_dims": [Ints(3)],
        "text_out": [positive_int()],
        "post_fusion_dim": [positive_int()],
        "dropouts": [Probabilities(4)],
        **LATE_FUSION_CONSTRAINTS,
    }

    # Small hyperparameters for the common checks and fast tests.
    _tiny_params = {"hidden_dims": (8, 4, 8), "text_out": 8, "post_fusion_dim": 8,
                    "batch_size": 16, "max_epochs": 3}

    def __init__(
        self,
        *,
        hidden_dims=(128, 32, 128),
        text_out=256,
        post_fusion_dim=32,
        dropouts=(0.3, 0.3, 0.3, 0.5),
        pooling="padded",
        text_state_dropout=False,
        modalities=("text", "audio", "vision"),
        batch_size=128,
        learning_rate=5e-3,
        weight_decay=5e-3,
        max_epochs=None,
        early_stop=8,
        tol=1e-6,
        selection="reference",
        validation_fraction=0.2,
        device="cpu",
        random_state=None,
        verbose=0,
        n_threads=None,
    ):
        self.hidden_dims = hidden_dims
        self.text_out = text_out
        self.post_fusion_dim = post_fusion_dim
        self.dropouts = dropouts
        self.pooling = pooling
        self.text_state_dropout = text_state_dropout
        self.modalities = modalities
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.early_stop = early_stop
        self.tol = tol
        self.selection = selection
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    def _prepare_inputs(self, X):
        return late_fusion_inputs(self, X)

    def _build_module(self, dims, seq_lens):
        return LFDNNModule(dims, tuple(self.hidden_dims), int(self.text_out),
                           int(self.post_fusion_dim), tuple(self.dropouts),
                           bool(self.text_state_dropout))
