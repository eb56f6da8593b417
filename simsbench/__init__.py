"""simsbench: multimodal sentiment analysis benchmarks on CH-SIMS and CH-SIMS v2.

Subpackages: :mod:`simsbench.datasets` (MMSA-format loading, synthetic data),
:mod:`simsbench.metrics`, :mod:`simsbench.estimators` (scikit-learn
estimators), :mod:`simsbench.protocols`, :mod:`simsbench.runner`,
:mod:`simsbench.tables`.  Importing simsbench does not import torch.
"""

from simsbench._version import __version__

__all__ = ["__version__"]
