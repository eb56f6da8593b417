"""simsbench estimators: scikit-learn regressors for multimodal sentiment.

Every public estimator class defined in a module of this package is an
attribute of it (``from simsbench.estimators import TFN``), loaded on first
access: importing the package imports no model module, and the deep
estimators (which need the ``deep`` extra, torch + skorch) import torch only
when one of them is asked for.  There is no list of models to maintain: the
names and their modules are read from the package's module sources
(:mod:`simsbench.utils._index`), so adding a model is adding its module.
"""

from __future__ import annotations

import importlib


def _estimators() -> dict:
    """Public estimator classes by name -> their source record."""
    from simsbench.utils._index import source_index

    return source_index(__name__, tuple(__path__)).estimators()


def _load(name: str):
    from simsbench.utils._index import modules_defining

    for module_name in modules_defining(__name__, tuple(__path__), name):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name in ("torch", "skorch"):
                raise ImportError(
                    f"simsbench.estimators.{name} needs torch and skorch: "
                    "pip install 'simsbench[deep]' (torch==2.13.0)"
                ) from exc
            raise
        value = getattr(module, name, None)
        if isinstance(value, type):
            from sklearn.base import BaseEstimator

            if issubclass(value, BaseEstimator):
                return value
    return None


def __getattr__(name: str):
    if name == "__all__":
        return sorted(_estimators())
    value = None if name.startswith("_") else _load(name)
    if value is None:
        raise AttributeError(f"module 'simsbench.estimators' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_estimators()})
