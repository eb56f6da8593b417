"""Multimodal sentiment datasets: the container, the MMSA loader and the
synthetic default.  Imports no torch."""

from simsbench.datasets._base import (
    LABEL_OF_MODALITY,
    LABELS,
    LENGTH_KEYS,
    MODALITIES,
    SPLITS,
    UNLABELLED,
    MultimodalDataset,
    MultimodalX,
    Split,
)
from simsbench.datasets._describe import five_class, label_statistics, split_table
from simsbench.datasets._loading import dataset_kind, load_dataset, parse_data_spec
from simsbench.datasets._mmsa import (
    MMSAFormatError,
    UnsafePickleError,
    from_mmsa_dict,
    load_mmsa,
    safe_load_pickle,
    write_mmsa,
)
from simsbench.datasets._synthetic import make_synthetic, make_synthetic_mmsa

__all__ = [
    "LABELS",
    "LABEL_OF_MODALITY",
    "LENGTH_KEYS",
    "MODALITIES",
    "SPLITS",
    "UNLABELLED",
    "MMSAFormatError",
    "MultimodalDataset",
    "MultimodalX",
    "Split",
    "UnsafePickleError",
    "dataset_kind",
    "five_class",
    "from_mmsa_dict",
    "label_statistics",
    "load_dataset",
    "load_mmsa",
    "make_synthetic",
    "make_synthetic_mmsa",
    "parse_data_spec",
    "safe_load_pickle",
    "split_table",
    "write_mmsa",
]
