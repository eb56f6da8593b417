"""What the late-fusion family's estimators share.

LF-DNN, TFN, LMF and their multi-task versions (MLF-DNN, MTFN, MLMF) encode
pooled audio/vision and the text sequence with the same encoders
(:mod:`simsbench.estimators.modules._late_fusion`); this module holds the
estimator side they share: the pooled inputs (:func:`late_fusion_inputs`),
the two corrections of the encoders, :data:`POOLING` and
:data:`TEXT_DROPOUT` (each one constructor parameter) with their declared
constraints and docstring text, and the reference's per-sub-network weight
decay of the multi-task versions (:func:`subnet_weight_decay_groups`).
"""

from __future__ import annotations

from simsbench.estimators._constraints import (
    Ints,
    Probabilities,
    boolean,
    nonnegative_real,
    options,
    positive_int,
)
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import lengths_of

__all__ = [
    "CORRECTIONS_NOTES",
    "LATE_FUSION_CONSTRAINTS",
    "MULTITASK_FUSION_CONSTRAINTS",
    "POOLING",
    "POOLING_DOC",
    "SUBNET_WEIGHT_DECAY_CONSTRAINTS",
    "TEXT_DROPOUT",
    "late_fusion_inputs",
    "multitask_head_constraints",
    "subnet_weight_decay_groups",
]

# ---------------------------------------------------------------------------
# the family's corrections

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
# per-sub-network weight decay shared by the late-fusion family (MLF-DNN, MLMF)


def subnet_weight_decay_groups(est) -> list:
    """The reference's per-sub-network weight decay (``weight_decay_text``,
    ``_audio``, ``_vision``); the parameters matched by no pattern keep
    ``weight_decay`` (the rest), as in MMSA
    ``src/MMSA/trains/multiTask/MLF_DNN.py`` (whose vision encoder is
    ``video_subnet``)."""
    return [
        (f"trunk.{module}_subnet.*", {"weight_decay": float(getattr(est, f"weight_decay_{m}"))})
        for m, module in (("text", "text"), ("audio", "audio"), ("vision", "video"))
    ]


#: The per-encoder weight decays of MLF-DNN, MTFN and MLMF.
SUBNET_WEIGHT_DECAY_CONSTRAINTS = {
    "weight_decay_text": [nonnegative_real()],
    "weight_decay_audio": [nonnegative_real()],
    "weight_decay_vision": [nonnegative_real()],
}


def multitask_head_constraints(n_post_dropouts: int) -> dict:
    """The constraints of the multi-task versions' unimodal heads (MLF-DNN,
    MTFN, MLMF): head widths, the three encoder dropouts, ``n_post_dropouts``
    head dropouts and the per-encoder weight decays."""
    return {
        "post_text_dim": [positive_int()],
        "post_audio_dim": [positive_int()],
        "post_vision_dim": [positive_int()],
        "dropouts": [Probabilities(3)],
        "post_dropouts": [Probabilities(n_post_dropouts)],
        **SUBNET_WEIGHT_DECAY_CONSTRAINTS,
    }


#: The constraints of MLF-DNN and MTFN (the same parameters, typed alike).
MULTITASK_FUSION_CONSTRAINTS = {
    "hidden_dims": [Ints(3)],
    "text_out": [positive_int()],
    "post_fusion_dim": [positive_int()],
    **multitask_head_constraints(4),
    **LATE_FUSION_CONSTRAINTS,
}
