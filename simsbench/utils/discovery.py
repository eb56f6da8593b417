"""Find every simsbench estimator, by walking the estimator packages.

Like :func:`sklearn.utils.discovery.all_estimators`, :func:`all_estimators`
walks the modules of :mod:`simsbench.estimators` (subpackages included),
imports them and collects the public :class:`~sklearn.base.BaseEstimator`
subclasses each defines, leaving out abstract bases (a class with an
``@abstractmethod`` not overridden, :func:`inspect.isabstract`: the deep
shell ``DeepRegressor`` declares ``_build_module`` abstract).  No list of
models exists anywhere: a model is found because its module is in the
package.

Models may also live outside simsbench, in packages named by

* the ``SIMSBENCH_ESTIMATORS`` environment variable (comma-separated
  importable package or module names), or
* the ``simsbench.estimators`` entry-point group of an installed
  distribution (each entry point's value is a package or module name)::

      [project.entry-points."simsbench.estimators"]
      mymodels = "mymodels.estimators"

Their estimators are discovered the same way, can be named by class name in
an estimator spec's ``class`` key, and are listed by ``simsbench list`` and
checked by the common tests.

The names alone (:func:`estimator_names`, what ``simsbench list`` prints) are
read from the module sources without importing them (no torch);
:func:`all_estimators` imports the modules.
"""

from __future__ import annotations

import importlib
import inspect
import os
from importlib import metadata

ENV_VAR = "SIMSBENCH_ESTIMATORS"
ENTRY_POINT_GROUP = "simsbench.estimators"

_TYPES = ("regressor", "transformer")


def estimator_packages() -> list[str]:
    """The packages searched for estimators: :mod:`simsbench.estimators`,
    then those named by ``$SIMSBENCH_ESTIMATORS``, then the
    ``simsbench.estimators`` entry points (in that order, without repeats)."""
    names = ["simsbench.estimators"]
    names += [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]
    names += [ep.value.split(":")[0].strip()
              for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    return list(dict.fromkeys(names))


def _index(package: str):
    from simsbench.utils._index import package_path, source_index

    if package == "simsbench.estimators":
        import simsbench.estimators as est

        path = tuple(est.__path__)
    else:
        try:
            path = package_path(package)
        except ValueError as exc:
            raise ValueError(f"{ENV_VAR} or entry point {ENTRY_POINT_GROUP!r}: {exc}") from None
    return source_index(package, path)


def _check_type_filter(type_filter) -> tuple[str, ...]:
    if type_filter is None:
        return ()
    kinds = (type_filter,) if isinstance(type_filter, str) else tuple(type_filter)
    bad = [k for k in kinds if k not in _TYPES]
    if bad:
        raise ValueError(f"type_filter must be None or among {_TYPES}, got {bad[0]!r}")
    return kinds


def estimator_names(type_filter="regressor", include_deep: bool = True) -> list[str]:
    """Names :func:`all_estimators` returns, read from the sources (nothing
    is imported, so no torch).

    Parameters
    ----------
    type_filter : {"regressor", "transformer"}, list of them, or None
        Which estimators (``None``: all).
    include_deep : bool, default=True
        Include the estimators whose module needs torch.

    Returns
    -------
    names : list of str, sorted
    """
    kinds = _check_type_filter(type_filter)
    names: set[str] = set()
    for package in estimator_packages():
        index = _index(package)
        for name, info in index.estimators().items():
            if index.is_abstract(info):
                continue
            if not include_deep and index.modules[info.module].needs_torch:
                continue
            if kinds and not any(getattr(info, f"is_{k}") for k in kinds):
                continue
            names.add(name)
    return sorted(names)


def all_estimators(type_filter="regressor", include_deep: bool = True) -> list[tuple[str, type]]:
    """Public, concrete estimator classes of the estimator packages, by name.

    Parameters
    ----------
    type_filter : {"regressor", "transformer"}, list of them, or None, \
default="regressor"
        Which estimators: those subclassing :class:`~sklearn.base.RegressorMixin`
        or :class:`~sklearn.base.TransformerMixin` (``None``: all).  The
        default returns what the benchmark runs (the ``ModalityPooler``
        transformer is left out).
    include_deep : bool, default=True
        Include the estimators whose module needs torch.  Deep estimators are
        skipped (not an error) when torch or skorch is not installed.

    Returns
    -------
    estimators : list of (str, type)
        ``(name, class)`` pairs sorted by name.

    Examples
    --------
    >>> from simsbench.utils.discovery import all_estimators
    >>> all_estimators(include_deep=False)
    [('PooledSVR', <class 'simsbench.estimators._classical.PooledSVR'>)]
    """
    from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin

    mixins = {"regressor": RegressorMixin, "transformer": TransformerMixin}
    kinds = _check_type_filter(type_filter)
    found: dict[str, type] = {}
    for package in estimator_packages():
        index = _index(package)
        for module_name, info in index.modules.items():
            if not include_deep and info.needs_torch:
                continue
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if info.needs_torch and exc.name in ("torch", "skorch"):
                    continue
                raise
            # vars(), not dir(): a package's lazy __getattr__ must not be triggered
            for name, cls in list(vars(module).items()):
                if not inspect.isclass(cls) or name.startswith("_"):
                    continue
                if cls.__module__ != module_name:
                    continue
                if not issubclass(cls, BaseEstimator) or inspect.isabstract(cls):
                    continue
                if kinds and not any(issubclass(cls, mixins[k]) for k in kinds):
                    continue
                found.setdefault(name, cls)
    return sorted(found.items())


def get_estimator_class(name: str) -> type:
    """Resolve an estimator name or an import path.

    Parameters
    ----------
    name : str
        A discovered estimator's class name (``"TFN"``, or a class of a
        package named by ``$SIMSBENCH_ESTIMATORS`` or an entry point), or an
        import path (``"mypackage.models:MyModel"`` or
        ``"mypackage.models.MyModel"``).

    Returns
    -------
    cls : type

    Raises
    ------
    ValueError
        When the name is unknown or the path cannot be imported (one line).
    """
    import simsbench.estimators as est

    if "." not in name and ":" not in name:
        try:
            return getattr(est, name)
        except AttributeError:
            pass
        for package in estimator_packages()[1:]:
            info = _index(package).estimators().get(name)
            if info is not None:
                return getattr(importlib.import_module(info.module), name)
        known = ", ".join(estimator_names(type_filter=None))
        raise ValueError(f"unknown estimator {name!r}; known: {known}")
    mod, _, attr = name.rpartition(":") if ":" in name else name.rpartition(".")
    try:
        module = importlib.import_module(mod)
    except ImportError as exc:
        raise ValueError(f"cannot import estimator module {mod!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {mod!r} has no estimator {attr!r}") from None
