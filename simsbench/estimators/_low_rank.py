"""What LMF and MLMF share on the estimator side: the encoder dropouts,
constraints and corrections of the low-rank family, the net that leaves the
fusion output out of the optimizer (MMSA ``src/MMSA/trains/singleTask/LMF.py``)
and their docstring text."""

from __future__ import annotations

from simsbench.estimators._constraints import Ints, boolean, positive_int, positive_real
from simsbench.estimators._deep import SimsNet
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._late_fusion import LATE_FUSION_CONSTRAINTS, POOLING, TEXT_DROPOUT


def _encoder_dropouts(est):
    """``dropouts`` with the text entry zeroed unless the text dropout is
    applied: the reference's 1-layer ``TextSubNet`` sets its dropout to 0
    (MMSA ``src/MMSA/models/subNets/FeatureNets.py``)."""
    dropouts = tuple(float(p) for p in est.dropouts)
    if not est.text_state_dropout:
        dropouts = (*dropouts[:2], 0.0, *dropouts[3:])
    return dropouts


#: The constraints LMF and MLMF share (the text encoder's output is
#: ``hidden_dims[0] // 2``, so ``hidden_dims[0] >= 2``).
_LOW_RANK_CONSTRAINTS = {
    "hidden_dims": [Ints(3, low=(2, 1, 1))],
    "rank": [positive_int()],
    "factor_lr": [positive_real()],
    "freeze_fusion_weights": [boolean],
    **LATE_FUSION_CONSTRAINTS,
}


#: The low-rank fusion's output parameters (the reference's fusion_weights
#: and fusion_bias), which the reference never updates.
FUSION_OUTPUT = ("fusion.fusion_weights", "fusion.fusion_bias")

#: The corrections LMF and MLMF share.
_LOW_RANK_CORRECTIONS = (
    POOLING,
    TEXT_DROPOUT,
    Correction(
        "fusion_weights",
        "The reference never updates the low-rank fusion's fusion_weights and fusion_bias, "
        "which keep their random initialisation; corrected: they are trained at "
        "learning_rate, as the LMF paper describes.",
        {"freeze_fusion_weights": (True, False)},
    ),
)


class _LeaveOutNet(SimsNet):
    """SimsNet whose optimizer leaves out the parameters named in ``left_out``.

    They still get gradients but are never updated, as LMF's
    ``fusion_weights`` and ``fusion_bias`` in MMSA
    ``src/MMSA/trains/singleTask/LMF.py`` (whose Adam gets
    ``model.parameters()[:3]`` and ``[5:]``).
    """

    def __init__(self, *args, left_out=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.left_out = tuple(left_out)

    def get_all_learnable_params(self):
        skip = set(self.left_out)
        for name, param in super().get_all_learnable_params():
            if name not in skip:
                yield name, param


_POOLING_DOC = """    pooling : {"padded", "length_aware"}, default="padded"
        ``"padded"`` (the reference, MMSA's ``need_normalized``) averages
        audio/vision over the whole padded time axis, zero padding included,
        and runs the text LSTM over every padded step; ``"length_aware"``
        (correction ``pooling``) uses the real frames and real tokens only.
    text_state_dropout : bool, default=False
        False (the reference): the text dropout is a no-op, as the
        reference's 1-layer ``TextSubNet`` sets it to 0.  True (correction
        ``text_dropout``): it is applied to the LSTM's final state.
    freeze_fusion_weights : bool, default=True
        True (the reference): ``fusion_weights`` and ``fusion_bias`` keep
        their initialisation (xavier-normal, zero).  False (correction
        ``fusion_weights``): they are trained at ``learning_rate``.
"""

_LOW_RANK_CORRECTIONS_DOC = """
    Corrections (``apply_variant(est, "corrected")`` switches every one on):

    * ``pooling`` -- ``pooling="length_aware"``: audio/vision averaged over
      their real frames, the text LSTM's state after the last real token;
    * ``text_dropout`` -- ``text_state_dropout=True``: the configured text
      dropout is applied to the LSTM's final state;
    * ``fusion_weights`` -- ``freeze_fusion_weights=False``: the fusion
      weights and bias are trained, as the LMF paper (Liu et al., 2018)
      describes;
    * ``selection`` and ``epoch_cap`` -- the training shell's (the
      ``selection`` and ``max_epochs`` parameters).
"""
