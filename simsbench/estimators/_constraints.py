"""Declared hyperparameter constraints, checked once at the start of ``fit``.

scikit-learn's ``_parameter_constraints`` idiom: each estimator class
declares, per constructor parameter, the values it accepts; the
declarations of the base classes are inherited (the training shell declares
the parameters every deep model shares) and a subclass redeclaring a name
replaces the inherited entry.  :func:`validate_params` checks an
estimator's parameters against them with scikit-learn's
``validate_parameter_constraints``, so a bad value is one line naming the
parameter and the estimator (``InvalidParameterError``, a ``ValueError``),
before any data is touched -- never an error from deep inside torch.

Every constructor parameter of every estimator is declared (a test keeps
it so); the few checks that involve two parameters or the data (``d_model``
divisible by ``num_heads``, a kernel no longer than the sequence) stay in the
model's code, as one line naming both.  Imports no torch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

from simsbench._defaults import PRECISIONS
from simsbench.datasets import MODALITIES

__all__ = [
    "MULTITASK",
    "SHARED",
    "EvenInt",
    "Ints",
    "Layer",
    "Modalities",
    "Probabilities",
    "Reals",
    "Tasks",
    "boolean",
    "constraints_of",
    "finite_real",
    "int_at_least",
    "nonnegative_real",
    "options",
    "positive_int",
    "positive_real",
    "probability",
    "validate_params",
]


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return (isinstance(v, numbers.Real) and not isinstance(v, bool)
            and type(v).__name__ != "bool_")


def _items(val):
    """``val`` as a tuple (a str is one item), or None when not a sequence."""
    if isinstance(val, str):
        return (val,)
    try:
        return tuple(val)
    except TypeError:
        return None


class _Sequence(Options):
    # scikit-learn's validator takes only its own constraint classes; an
    # ``Options`` subclass with its own test and description is one of them.
    def __init__(self):
        super().__init__(object, set())


class Ints(_Sequence):
    """A sequence of ``n`` ints ``>= low`` (``low``: one bound, or one per item)."""

    def __init__(self, n: int, low: int | tuple[int, ...] = 1):
        super().__init__()
        self.n = n
        self.low = low

    def is_satisfied_by(self, val) -> bool:
        vals = _items(val)
        if vals is None or isinstance(val, str) or len(vals) != self.n:
            return False
        lows = self.low if isinstance(self.low, tuple) else (self.low,) * self.n
        return all(_is_int(v) and v >= lo for v, lo in zip(vals, lows))

    def __str__(self) -> str:
        if isinstance(self.low, tuple):
            what = "ints >= (" + ", ".join(map(str, self.low)) + ") item by item"
        else:
            what = "positive ints" if self.low == 1 else f"ints >= {self.low}"
        return f"a sequence of {self.n} {what}"


class Probabilities(_Sequence):
    """A sequence of ``n`` dropout probabilities in [0, 1)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def is_satisfied_by(self, val) -> bool:
        try:
            vals = tuple(val)
        except TypeError:
            return False
        return len(vals) == self.n and all(_is_real(v) and 0 <= v < 1 for v in vals)

    def __str__(self) -> str:
        return f"a sequence of {self.n} dropout probabilities in [0, 1)"


class Reals(_Sequence):
    """A sequence of ``n`` finite reals ``>= low``."""

    def __init__(self, n: int, low: float = 0.0):
        super().__init__()
        self.n = n
        self.low = low

    def is_satisfied_by(self, val) -> bool:
        vals = _items(val)
        return (vals is not None and len(vals) == self.n
                and all(_is_real(v) and self.low <= v < math.inf for v in vals))

    def __str__(self) -> str:
        return f"a sequence of {self.n} finite reals >= {self.low}"


class Layer(_Sequence):
    """A ``(width, dropout)`` pair: a positive int and a probability in [0, 1)."""

    def is_satisfied_by(self, val) -> bool:
        vals = _items(val)
        return (vals is not None and len(vals) == 2 and not isinstance(val, str)
                and _is_int(vals[0]) and vals[0] >= 1 and _is_real(vals[1])
                and 0 <= vals[1] < 1)

    def __str__(self) -> str:
        return "a (width, dropout) pair: a positive int and a probability in [0, 1)"


class _Subset(_Sequence):
    # a non-empty subset of ``names``: one name, or a sequence of distinct names
    def __init__(self, names: tuple[str, ...], empty: bool = False):
        super().__init__()
        self.names = tuple(names)
        self.empty = empty

    def is_satisfied_by(self, val) -> bool:
        vals = _items(val)
        return (vals is not None and (self.empty or len(vals) > 0)
                and all(isinstance(v, str) and v in self.names for v in vals)
                and len(set(vals)) == len(vals))

    def __str__(self) -> str:
        what = "a subset" if self.empty else "a non-empty subset"
        return f"{what} of {self.names} (one name or a sequence of distinct names)"


class Modalities(_Subset):
    """A non-empty subset of ``("text", "audio", "vision")``."""

    def __init__(self):
        super().__init__(MODALITIES)


class Tasks(_Subset):
    """A subset (possibly empty) of the unimodal tasks ``("T", "A", "V")``."""

    def __init__(self):
        super().__init__(("T", "A", "V"), empty=True)


class _Interval(Interval):
    # scikit-learn's Interval accepts True/False (bool is an int, hence a
    # real); a size, rate or weight is no bool.
    def is_satisfied_by(self, val) -> bool:
        return type(val).__name__ not in ("bool", "bool_") and super().is_satisfied_by(val)


class EvenInt(_Interval):
    """An even int ``>= low``."""

    def __init__(self, low: int = 2):
        super().__init__(numbers.Integral, low, None, closed="left")

    def is_satisfied_by(self, val) -> bool:
        return super().is_satisfied_by(val) and val % 2 == 0

    def __str__(self) -> str:
        return f"an even int in the range [{self.left}, inf)"


def int_at_least(low: int):
    """An int ``>= low`` (no bool)."""
    return _Interval(numbers.Integral, low, None, closed="left")


def positive_int():
    """An int ``>= 1`` (no bool)."""
    return int_at_least(1)


def positive_real():
    """A finite real ``> 0`` (no bool, no NaN)."""
    return _Interval(numbers.Real, 0, None, closed="neither")


def nonnegative_real():
    """A finite real ``>= 0`` (no bool, no NaN)."""
    return _Interval(numbers.Real, 0, None, closed="left")


def finite_real():
    """Any finite real (no bool, no NaN)."""
    return _Interval(numbers.Real, None, None, closed="neither")


def probability():
    """A dropout probability in [0, 1)."""
    return _Interval(numbers.Real, 0, 1, closed="left")


def options(*values: str):
    """One of the strings ``values``."""
    return StrOptions(set(values))


boolean = "boolean"
"""True or False (numpy bools included): scikit-learn's ``"boolean"``."""


def constraints_of(estimator) -> dict:
    """The merged ``_parameter_constraints`` of an estimator's class, for the
    parameters its constructor has."""
    cls = estimator if isinstance(estimator, type) else type(estimator)
    merged: dict = {}
    for klass in reversed(cls.__mro__):
        declared = klass.__dict__.get("_parameter_constraints")
        if isinstance(declared, Mapping):
            merged.update(declared)
    names = set(getattr(cls, "_get_param_names")())  # noqa: B009 - a BaseEstimator class
    return {k: v for k, v in merged.items() if k in names}


def validate_params(estimator, names=None) -> None:
    """Check an estimator's parameters against its declared constraints.

    Parameters
    ----------
    estimator : BaseEstimator
    names : iterable of str, default=None
        Check only these parameters (all when None).

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        (a ``ValueError``) naming the first bad parameter and the estimator.
    """
    params = estimator.get_params(deep=False)
    if names is not None:
        params = {k: v for k, v in params.items() if k in set(names)}
    validate_parameter_constraints(constraints_of(estimator), params,
                                   caller_name=type(estimator).__name__)


SHARED = {
    "modalities": [Modalities()],
    "batch_size": [positive_int()],
    "learning_rate": [positive_real()],
    "weight_decay": [nonnegative_real()],
    "max_epochs": [positive_int(), None],
    "early_stop": [positive_int()],
    "tol": [nonnegative_real()],
    "selection": [StrOptions({"reference", "weighted"})],
    "validation_fraction": [_Interval(numbers.Real, 0, 1, closed="neither")],
    "device": [str],
    "precision": [StrOptions(set(PRECISIONS))],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "n_threads": [positive_int(), None],
}
"""The training shell's parameters (every deep model has them)."""

MULTITASK = {
    "tasks": [Tasks()],
    "loss_weights": [Reals(4)],
}
"""The multi-task models' parameters (M/T/A/V heads)."""
