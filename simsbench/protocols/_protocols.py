"""The protocols of the CH-SIMS and CH-SIMS v2 papers.

Each is a frozen dataclass whose fields are the task TOML keys it reads
(:meth:`~simsbench.protocols.Protocol.from_task`); values are checked and
normalised (lists to tuples, modalities in the canonical order) when it is
built.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

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
    "AVMC_VARIANTS",
    "AVMCAblation",
    "AVMCVariant",
    "Multimodal",
    "TaskCombination",
    "UnimodalMLabel",
    "UnimodalOwnLabel",
]


def _set(obj, **values) -> None:
    """Normalise fields of a frozen dataclass in ``__post_init__``."""
    for key, value in values.items():
        object.__setattr__(obj, key, value)


@dataclass(frozen=True, repr=False)
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
    labels : tuple of str, default=("M",)
        The scored label: only ``("M",)``.
    """

    name = "multimodal"
    modalities: tuple[str, ...] = MODALITIES
    labels: tuple[str, ...] = ("M",)

    def __post_init__(self):
        _set(self, modalities=check_modalities(self.modalities),
             labels=check_labels(self.labels))
        if self.labels != ("M",):
            raise ProtocolError("the multimodal protocol scores label M: labels = [\"M\"]")

    @property
    def params(self) -> dict[str, Any]:
        return {"modalities": list(self.modalities)}

    def input_modalities(self):
        return self.modalities

    def required_labels(self, estimator):
        return ("M", "T", "A", "V") if is_multitask(estimator) else ("M",)

    def estimator_overrides(self, estimator):
        if self.modalities == MODALITIES:
            return {}
        return {"modalities": self.modalities}


@dataclass(frozen=True, repr=False)
class _Unimodal(Protocol):
    """One modality in (``modalities``: exactly one); ``labels``, when given,
    must be the one label the protocol scores."""

    modalities: tuple[str, ...] = ()
    labels: tuple[str, ...] | None = None

    def __post_init__(self):
        mods = check_modalities(self.modalities, "modality")
        if len(mods) != 1:
            raise ProtocolError(f"{self.name} takes exactly one modality, got {list(mods)}")
        _set(self, modalities=mods)
        if self.labels is not None and tuple(check_labels(self.labels)) != (self.score_label(),):
            raise ProtocolError(
                f"{self.name} on {self.modality} uses label {self.score_label()!r}, "
                f"not {list(check_labels(self.labels))}"
            )
        _set(self, labels=(self.score_label(),))

    @property
    def modality(self) -> str:
        return self.modalities[0]

    @property
    def params(self) -> dict[str, Any]:
        return {"modality": self.modality}

    def input_modalities(self):
        return self.modalities

    def estimator_overrides(self, estimator):
        return {"modalities": self.modalities}

    def required_labels(self, estimator):
        return (self.score_label(),)

    def train_labels(self, estimator):
        # One label column: a multi-task model then trains its M head only,
        # on this label (the CH-SIMS paper's Table 4 setting).
        return self.score_label()


@dataclass(frozen=True, repr=False)
class UnimodalOwnLabel(_Unimodal):
    """One modality in, scored on that modality's own label (T, A or V).

    The model sees only the modality (its ``modalities`` parameter is set)
    and is trained and scored on the unimodal annotation.  CH-SIMS Table 4
    and CH-SIMS v2 Table 3, "unimodal label" rows.

    Parameters
    ----------
    modalities : {"text", "audio", "vision"} or a one-element tuple of them
    labels : tuple of str, default=None
        The modality's own label when given (``("T",)`` for text...).
    """

    name = "unimodal_own_label"

    def score_label(self):
        return LABEL_OF_MODALITY[self.modality]


@dataclass(frozen=True, repr=False)
class UnimodalMLabel(_Unimodal):
    """One modality in, trained and scored on the multimodal label M.

    CH-SIMS Table 4 and CH-SIMS v2 Table 3, "multimodal label" rows.

    Parameters
    ----------
    modalities : {"text", "audio", "vision"} or a one-element tuple of them
    labels : tuple of str, default=None
        ``("M",)`` when given.
    """

    name = "unimodal_m_label"

    def score_label(self):
        return "M"


@dataclass(frozen=True, repr=False)
class TaskCombination(Protocol):
    """A multi-task model trained on a subset of the unimodal tasks.

    All modalities in; the M task is always trained, ``labels`` names the
    task set (``("M",)``, ``("M", "T")``, ..., ``("M", "T", "A", "V")``) and
    is written to the estimator's ``tasks`` parameter; scored on M.  CH-SIMS
    Table 5.

    Parameters
    ----------
    labels : tuple of str, default=("M", "T", "A", "V")
        ``"M"`` followed by any subset of ``"T"``, ``"A"``, ``"V"``.
    """

    name = "task_combination"
    labels: tuple[str, ...] = ("M", "T", "A", "V")

    def __post_init__(self):
        labs = check_labels(self.labels)
        if not labs or labs[0] != "M":
            raise ProtocolError(f"task_combination labels must start with 'M', got {list(labs)}")
        _set(self, labels=("M", *(lab for lab in ("T", "A", "V") if lab in labs)))

    @property
    def tasks(self) -> tuple[str, ...]:
        """The unimodal tasks trained besides M (the estimator's ``tasks``)."""
        return self.labels[1:]

    @property
    def params(self) -> dict[str, Any]:
        return {"labels": list(self.labels)}

    @property
    def label(self) -> str:
        return ", ".join(self.labels)

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


class AVMCVariant(NamedTuple):
    """One row of the CH-SIMS v2 paper's Table 4."""

    label: str
    """The row label, as the paper prints it."""
    params: dict[str, Any]
    """The AV-MC parameters the variant sets."""


AVMC_VARIANTS = MappingProxyType({
    "no_mixup_av_unimodal": AVMCVariant(
        "w/o Mixup-AV & Unimodal tasks",
        {"mixup_audio": False, "mixup_vision": False, "tasks": ()},
    ),
    "no_mixup_av": AVMCVariant("w/o Mixup-AV", {"mixup_audio": False, "mixup_vision": False}),
    "no_mixup_a": AVMCVariant("w/o Mixup-A", {"mixup_audio": False, "mixup_vision": True}),
    "no_mixup_v": AVMCVariant("w/o Mixup-V", {"mixup_audio": True, "mixup_vision": False}),
    "full": AVMCVariant("AV-MC", {"mixup_audio": True, "mixup_vision": True}),
})
"""The CH-SIMS v2 paper's Table 4 rows by variant name (the only place their labels are)."""


@dataclass(frozen=True, repr=False)
class AVMCAblation(Protocol):
    """The AV-MC ablation of CH-SIMS v2 Table 4 (multimodal, scored on M).

    Parameters
    ----------
    variant : {"full", "no_mixup_a", "no_mixup_v", "no_mixup_av", "no_mixup_av_unimodal"}
        Which mixups (and whether the unimodal tasks) are switched off.
    """

    name = "avmc_ablation"
    variant: str = "full"

    def __post_init__(self):
        if self.variant not in AVMC_VARIANTS:
            raise ProtocolError(
                f"unknown avmc_ablation variant {self.variant!r}; "
                f"choose from {list(AVMC_VARIANTS)}"
            )

    @property
    def params(self) -> dict[str, Any]:
        return {"variant": self.variant}

    @property
    def label(self) -> str:
        return AVMC_VARIANTS[self.variant].label

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
        return dict(AVMC_VARIANTS[self.variant].params)
