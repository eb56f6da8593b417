"""What the late-fusion family's estimators share.

LF-DNN, TFN, LMF and their multi-task versions (MLF-DNN, MTFN, MLMF) encode
pooled audio/vision and the text sequence with the same encoders
(:mod:`simsbench.estimators.modules._late_fusion`); this module holds the
estimator side they share: the pooled inputs (:func:`late_fusion_inputs`),
the two corrections of the encoders, :data:`POOLING` and
:data:`TEXT_DROPOUT` (each one constructor parameter), their docstring
text, and the reference's per-sub-network weight decay of the multi-task
versions (:func:`subnet_weight_decay_groups`).
"""

from __future__ import annotations

from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import lengths_of
from simsbench.estimators._validation import check_nonneg

__all__ = [
    "CORRECTIONS_NOTES",
    "POOLING",
    "POOLING_DOC",
    "TEXT_DROPOUT",
    "check_flag",
    "late_fusion_inputs",
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


def check_flag(est, name: str, value) -> bool:
    """``value`` must be a bool (numpy bools included)."""
    if value is not True and value is not False and type(value).__name__ != "bool_":
        raise ValueError(f"{type(est).__name__}: {name} must be True or False, got {value!r}")
    return bool(value)


def late_fusion_inputs(est, X) -> dict:
    """Inputs of the late-fusion family (LF-DNN, TFN, LMF and their
    multi-task versions): pooled audio/vision, the text sequence and, for the
    length-aware mode, the text lengths."""
    if est.pooling not in ("padded", "length_aware"):
        raise ValueError(
            f"{type(est).__name__}: pooling must be 'padded' or 'length_aware', "
            f"got {est.pooling!r}"
        )
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
    """The reference's per-sub-network weight decay (text/audio/video); the
    parameters matched by no pattern keep ``weight_decay`` (the rest), as in
    MMSA ``src/MMSA/trains/multiTask/MLF_DNN.py``."""
    return [
        ("trunk.text_subnet.*", {"weight_decay": check_nonneg(
            est, "text_weight_decay", est.text_weight_decay)}),
        ("trunk.audio_subnet.*", {"weight_decay": check_nonneg(
            est, "audio_weight_decay", est.audio_weight_decay)}),
        ("trunk.video_subnet.*", {"weight_decay": check_nonneg(
            est, "video_weight_decay", est.video_weight_decay)}),
    ]
