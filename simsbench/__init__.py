"""simsbench: multimodal sentiment analysis benchmarks on CH-SIMS and CH-SIMS v2.

Subpackages: :mod:`simsbench.datasets` (MMSA-format loading, synthetic data),
:mod:`simsbench.metrics`, :mod:`simsbench.estimators` (scikit-learn
estimators), :mod:`simsbench.protocols`, :mod:`simsbench.runner`,
:mod:`simsbench.tables`; :func:`run_tables` and :func:`table_from_cache`
(:mod:`simsbench.suite`) do what ``simsbench run`` and ``simsbench table``
do.  Importing simsbench does not import torch.
"""

from simsbench._version import __version__

__all__ = ["__version__", "run_tables", "table_from_cache"]


def __getattr__(name: str):
    # the API is imported on first use: ``import simsbench`` (and the
    # command line's parser) stay free of pandas and scikit-learn
    if name in ("run_tables", "table_from_cache"):
        from simsbench import suite

        return getattr(suite, name)
    raise AttributeError(f"module 'simsbench' has no attribute {name!r}")
