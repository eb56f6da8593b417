"""Find every public simsbench estimator."""

from __future__ import annotations

import inspect

from sklearn.base import BaseEstimator


def all_estimators(include_deep: bool = True) -> list[tuple[str, type]]:
    """Public estimator classes of :mod:`simsbench.estimators`, by name.

    Deep estimators are skipped (not an error) when torch is not installed.
    The base class ``DeepRegressor`` and the ``ModalityPooler`` transformer
    are excluded: every returned class is a regressor.
    """
    import simsbench.estimators as est

    out = []
    for name in est.__all__:
        if name in ("DeepRegressor", "ModalityPooler"):
            continue
        if not include_deep and name in est._LAZY:
            continue
        try:
            obj = getattr(est, name)
        except ImportError:
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
            out.append((name, obj))
    return sorted(out)


def get_estimator_class(name: str) -> type:
    """Resolve a discovered estimator name (``"TFN"``) or an import path
    (``"mypackage.models:MyModel"`` or ``"mypackage.models.MyModel"``)."""
    import importlib

    import simsbench.estimators as est

    if name in est.__all__:
        return getattr(est, name)
    if ":" in name or "." in name:
        mod, _, attr = name.rpartition(":") if ":" in name else name.rpartition(".")
        try:
            module = importlib.import_module(mod)
        except ImportError as exc:
            raise ValueError(f"cannot import estimator module {mod!r}: {exc}") from None
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ValueError(f"module {mod!r} has no estimator {attr!r}") from None
    known = ", ".join(n for n in est.__all__ if n not in ("DeepRegressor",))
    raise ValueError(f"unknown estimator {name!r}; known: {known}")
