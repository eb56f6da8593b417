"""Evaluation protocols: which data an estimator is fitted on and scored on.

A protocol turns ``(estimator, dataset)`` into one fit on the train split
(with the valid split for model selection) and one score on the test split.
It never fails on data that cannot support it: :meth:`Protocol.skip` says
why instead (benchopt-style ``(skip, reason)``).  Imports no torch.
"""

from simsbench.protocols._base import (
    PROTOCOLS,
    FitData,
    Protocol,
    ProtocolError,
    get_protocol,
)
from simsbench.protocols._protocols import (
    AVMC_VARIANTS,
    AVMCAblation,
    AVMCVariant,
    Multimodal,
    TaskCombination,
    UnimodalMLabel,
    UnimodalOwnLabel,
)

__all__ = [
    "AVMC_VARIANTS",
    "PROTOCOLS",
    "AVMCAblation",
    "AVMCVariant",
    "FitData",
    "Multimodal",
    "Protocol",
    "ProtocolError",
    "TaskCombination",
    "UnimodalMLabel",
    "UnimodalOwnLabel",
    "get_protocol",
]
