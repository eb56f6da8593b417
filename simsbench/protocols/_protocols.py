"""The protocols of the CH-SIMS and CH-SIMS v2 papers."""

from __future__ import annotations

from typing import Any

from simsbench.datasets import LABEL_OF_MODALITY, MODALITIES
from simsbench.protocols._base import (
    Protocol,
    ProtocolError,
    check_labels,
    check_modalities,
    estimator_params,
    is_multitask,
)

__all__ = [
    "AVMCAblation",
    "Multimodal",
    "TaskCombination",
    "UnimodalMLabel",
    "UnimodalOwnLabel",
]


class Multimodal(Protocol):
    """All modalities in, the multimodal label ``M`` scored.

    Single-task estimators are trained on ``M``; multi-task estimators on the
    ``(n, 4)`` M/T/A/V matrix (and skipped when the data has no unimodal
    labels, e.g. a MOSI file).  Semi-supervised estimators (AV-MC (Semi))
    also get the unlabelled clips.  This is the protocol of CH-SIMS Table 2
    and CH-SIMS v2 Table 2.

    Parameters
    ----------
    modalities : tuple of str, default=("text", "audio", "vision")
        Modalities in ``X``.  A subset is set on the estimator's own
        ``modalities`` parameter (a modality ablation).
    """

    name = "multimodal"
    title = "multimodal, label M"

    def __init__(self, modalities=MODALITIES):
        self._modalities = check_modalities(modalities)

    @property
    def params(self) -> dict[str, Any]:
        return {"modalities": list(self._modalities)}

    def modalities(self):
        return self._modalities

    def required_labels(self, estimator):
        return ("M", "T", "A", "V") if is_multitask(estimator) else ("M",)

    def estimator_overrides(self, estimator):
        if self._modalities == MODALITIES:
            return {}
        return {"modalities": self._modalities}


class _Unimodal(Protocol):
    def __init__(self, modality: str):
        mods = check_modalities(modality, "modality")
        if len(mods) != 1:
            raise ProtocolError(f"{self.name} takes exactly one modality, got {list(mods)}")
        self.modality = mods[0]

    @property
    def params(self) -> dict[str, Any]:
        return {"modality": self.modality}

    def modalities(self):
        return (self.modality,)

    def estimator_overrides(self, estimator):
        return {"modalities": (self.modality,)}

    def required_labels(self, estimator):
        return (self.score_label(),)

    def train_labels(self, estimator):
        # One label column: a multi-task model then trains its M head only,
        # on this label (the CH-SIMS paper's Table 4 setting).
        return self.score_label()


class UnimodalOwnLabel(_Unimodal):
    """One modality in, scored on that modality's own label (T, A or V).

    The model sees only ``modality`` (its ``modalities`` parameter is set)
    and is trained and scored on the unimodal annotation.  CH-SIMS Table 4
    and CH-SIMS v2 Table 3, "unimodal label" rows.

    Parameters
    ----------
    modality : {"text", "audio", "vision"}
    """

    name = "unimodal_own_label"
    title = "unimodal, own label"

    def score_label(self):
        return LABEL_OF_MODALITY[self.modality]


class UnimodalMLabel(_Unimodal):
    """One modality in, trained and scored on the multimodal label M.

    CH-SIMS Table 4 and CH-SIMS v2 Table 3, "multimodal label" rows.

    Parameters
    ----------
    modality : {"text", "audio", "vision"}
    """

    name = "unimodal_m_label"
    title = "unimodal, label M"

    def score_label(self):
        return "M"


class TaskCombination(Protocol):
    """A multi-task model trained on a subset of the unimodal tasks.

    All modalities in; the M task is always trained, ``labels`` names the
    task set (``("M",)``, ``("M", "T")``, ..., ``("M", "T", "A", "V")``) and
    is written to the estimator's ``tasks`` parameter; scored on M.  CH-SIMS
    Table 5.

    Parameters
    ----------
    labels : tuple of str
        ``"M"`` followed by any subset of ``"T"``, ``"A"``, ``"V"``.
    """

    name = "task_combination"
    title = "multi-task ablation"

    def __init__(self, labels=("M", "T", "A", "V")):
        labs = check_labels(labels)
        if not labs or labs[0] != "M":
            raise ProtocolError(f"task_combination labels must start with 'M', got {list(labs)}")
        self.tasks = tuple(lab for lab in ("T", "A", "V") if lab in labs)

    @property
    def params(self) -> dict[str, Any]:
        return {"labels": ["M", *self.tasks]}

    def required_labels(self, estimator):
        return ("M", "T", "A", "V")

    def skip(self, estimator, dataset):
        if not is_multitask(estimator):
            return True, (
                f"{type(estimator).__name__} is not a multi-task estimator "
                "(task_combination needs M/T/A/V heads)"
            )
        return super().skip(estimator, dataset)

    def estimator_overrides(self, estimator):
        return {"tasks": self.tasks}


AVMC_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "no_mixup_av_unimodal": (
        "w/o Mixup-AV & Unimodal tasks",
        {"mixup_audio": False, "mixup_vision": False, "tasks": ()},
    ),
    "no_mixup_av": ("w/o Mixup-AV", {"mixup_audio": False, "mixup_vision": False}),
    "no_mixup_a": ("w/o Mixup-A", {"mixup_audio": False, "mixup_vision": True}),
    "no_mixup_v": ("w/o Mixup-V", {"mixup_audio": True, "mixup_vision": False}),
    "full": ("AV-MC", {"mixup_audio": True, "mixup_vision": True}),
}
"""The CH-SIMS v2 paper's Table 4 rows: variant -> (row label, parameters)."""


class AVMCAblation(Protocol):
    """The AV-MC ablation of CH-SIMS v2 Table 4 (multimodal, scored on M).

    Parameters
    ----------
    variant : {"full", "no_mixup_a", "no_mixup_v", "no_mixup_av", "no_mixup_av_unimodal"}
        Which mixups (and whether the unimodal tasks) are switched off.
    """

    name = "avmc_ablation"
    title = "AV-MC ablation"

    def __init__(self, variant: str = "full"):
        if variant not in AVMC_VARIANTS:
            raise ProtocolError(
                f"unknown avmc_ablation variant {variant!r}; choose from {list(AVMC_VARIANTS)}"
            )
        self.variant = variant

    @property
    def params(self) -> dict[str, Any]:
        return {"variant": self.variant}

    @property
    def row_label(self) -> str:
        return AVMC_VARIANTS[self.variant][0]

    def required_labels(self, estimator):
        return ("M", "T", "A", "V")

    def skip(self, estimator, dataset):
        params = estimator_params(estimator)
        if "mixup_audio" not in params or "mixup_vision" not in params:
            return True, (
                f"{type(estimator).__name__} has no mixup_audio/mixup_vision switches "
                "(the AV-MC ablation needs AV-MC)"
            )
        return super().skip(estimator, dataset)

    def estimator_overrides(self, estimator):
        return dict(AVMC_VARIANTS[self.variant][1])
