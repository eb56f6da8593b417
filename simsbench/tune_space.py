"""The search space of ``simsbench tune``: a spec's ``[search]`` table as
:class:`~sklearn.model_selection.ParameterSampler` distributions, and the
configurations drawn from it.

Lists are uniform choices (as in MMSA ``src/MMSA/config/config_tune.json``),
``{dist = ...}`` tables frozen :mod:`scipy.stats` distributions,
``{elements = [...]}`` one entry per element and a joint ``"a+b"`` key one
entry whose candidates are tuples.  Re-exported by :mod:`simsbench.tune`.
Imports no torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from simsbench.specs import EstimatorSpec, SpecError

__all__ = ["TuneError", "check_names", "sample_configurations", "search_space"]

_RANGE_DISTS = {"uniform", "loguniform", "randint"}


class TuneError(ValueError):
    """A study cannot start or cannot select (one line, for the CLI)."""


def _distribution(table: Mapping, where: str):
    """A frozen :mod:`scipy.stats` distribution from ``{dist = NAME, ...}``."""
    import scipy.stats

    args = {k: v for k, v in table.items() if k != "dist"}
    name = table["dist"]
    maker = getattr(scipy.stats, name, None)
    if maker is None or not hasattr(maker, "rvs"):
        raise SpecError(f"{where}: unknown distribution {name!r} (a scipy.stats name, "
                        "e.g. uniform, loguniform, randint)")
    if name in _RANGE_DISTS and len({"low", "high"} & set(args)) == 1:
        raise SpecError(f"{where}: {name} needs both low and high")
    if name in _RANGE_DISTS and {"low", "high"} <= set(args):
        low, high = args.pop("low"), args.pop("high")
        if not (isinstance(low, int | float) and isinstance(high, int | float)
                and low < high):
            raise SpecError(f"{where}: {name} needs numbers low < high")
        if name == "uniform":
            args.update(loc=low, scale=high - low)
        elif name == "loguniform":
            if low <= 0:
                raise SpecError(f"{where}: loguniform needs low > 0")
            args.update(a=low, b=high)
        else:
            args.update(low=low, high=high)
    try:
        dist = maker(**args)
        dist.rvs(random_state=0)
    except Exception as exc:  # noqa: BLE001 - scipy's message says what is wrong
        raise SpecError(f"{where}: {name}({', '.join(f'{k}={v}' for k, v in args.items())}) "
                        f"is not a valid distribution: {exc}") from None
    return dist


def search_space(spec: EstimatorSpec) -> dict[str, Any]:
    """The ``param_distributions`` of :class:`~sklearn.model_selection.ParameterSampler`.

    A list stays a list (uniform choice), a ``{dist = ...}`` table becomes a
    frozen scipy distribution, an ``{elements = [...]}`` parameter becomes one
    entry per element (``"loss_weights[0]"``...) and a joint ``"a+b"`` key
    stays one entry whose candidates are tuples; :func:`sample_configurations`
    puts them back together.

    Raises
    ------
    SpecError
        When the spec has no ``[search]`` table or a distribution is invalid.
    """
    where = spec.path or spec.name
    if not spec.search:
        raise SpecError(f"{where}: no [search] table, so there is nothing to tune; add the "
                        "tuning ranges (see estimators/lf_dnn.toml)")
    out: dict[str, Any] = {}
    for key, value in spec.search.items():
        if isinstance(value, Mapping) and "elements" in value:
            for i, elem in enumerate(value["elements"]):
                sub = f"{key}[{i}]"
                out[sub] = (_distribution(elem, f"{where}: [search] {sub}")
                            if isinstance(elem, Mapping) else list(elem))
        elif isinstance(value, Mapping):
            out[key] = _distribution(value, f"{where}: [search] {key}")
        else:
            out[key] = list(value)
    return out


def _plain(value):
    """numpy scalars to Python ones, lists to tuples (the estimators' form)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value


def _assemble(sample: Mapping[str, Any], spec: EstimatorSpec) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in spec.search.items():
        if isinstance(value, Mapping) and "elements" in value:
            params[key] = tuple(_plain(sample[f"{key}[{i}]"])
                                for i in range(len(value["elements"])))
        elif "+" in key:
            for name, v in zip(key.split("+"), sample[key], strict=True):
                params[name] = _plain(v)
        else:
            params[key] = _plain(sample[key])
    return params


def check_names(spec: EstimatorSpec) -> None:
    """Fail (one line) on a ``[search]`` key that is no parameter of the spec's class."""
    cls = spec.estimator_class()
    valid = cls().get_params(deep=False)
    for key in spec.search:
        for name in key.split("+"):
            if name not in valid:
                raise SpecError(
                    f"{spec.path or spec.name}: [search] unknown parameter {name!r} for "
                    f"{cls.__name__}; valid: {', '.join(sorted(valid))}"
                )


def sample_configurations(
    spec: EstimatorSpec, n_trials: int, random_state: int = 0
) -> list[dict[str, Any]]:
    """Draw ``n_trials`` configurations from ``spec``'s ``[search]`` table.

    :class:`~sklearn.model_selection.ParameterSampler` does the drawing: when
    every range is a list it samples the grid without replacement (so no
    configuration repeats, and a grid smaller than ``n_trials`` is taken
    whole); otherwise each parameter is drawn independently.  The same
    ``random_state`` always gives the same configurations, and a longer study
    starts with the configurations of a shorter one.

    Returns
    -------
    list of dict
        Parameter overrides, one dict per configuration, in draw order.
    """
    from sklearn.model_selection import ParameterSampler

    if n_trials < 1:
        raise TuneError(f"--trials must be >= 1, got {n_trials}")
    space = search_space(spec)
    with warnings.catch_warnings():
        # A grid smaller than n_iter is simply taken whole.
        warnings.simplefilter("ignore", UserWarning)
        samples = list(ParameterSampler(space, n_iter=n_trials, random_state=random_state))
    return [_assemble(s, spec) for s in samples]
