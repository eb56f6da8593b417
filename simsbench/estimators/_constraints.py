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

Parameters a class does not declare are checked by the model's own code
when it builds its module.  Imports no torch.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "Ints",
    "Probabilities",
    "constraints_of",
    "positive_int",
    "positive_real",
    "nonnegative_real",
    "validate_params",
]


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


class _Sequence(Options):
    # scikit-learn's validator takes only its own constraint classes; an
    # ``Options`` subclass with its own test and description is one of them.
    def __init__(self):
        super().__init__(object, set())


class Ints(_Sequence):
    """A sequence of ``n`` ints ``>= low``."""

    def __init__(self, n: int, low: int = 1):
        super().__init__()
        self.n = n
        self.low = low

    def is_satisfied_by(self, val) -> bool:
        try:
            vals = tuple(val)
        except TypeError:
            return False
        return len(vals) == self.n and all(_is_int(v) and v >= self.low for v in vals)

    def __str__(self) -> str:
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
        return len(vals) == self.n and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < 1
            for v in vals)

    def __str__(self) -> str:
        return f"a sequence of {self.n} dropout probabilities in [0, 1)"


class _Ints(Interval):
    # scikit-learn's Interval(Integral) accepts True/False; a size is no bool.
    def is_satisfied_by(self, val) -> bool:
        return not isinstance(val, bool) and super().is_satisfied_by(val)


def positive_int():
    return _Ints(numbers.Integral, 1, None, closed="left")


def positive_real():
    return Interval(numbers.Real, 0, None, closed="neither")


def nonnegative_real():
    return Interval(numbers.Real, 0, None, closed="left")


def probability():
    return Interval(numbers.Real, 0, 1, closed="left")


def constraints_of(estimator) -> dict:
    """The merged ``_parameter_constraints`` of an estimator's class, for the
    parameters its constructor has."""
    cls = estimator if isinstance(estimator, type) else type(estimator)
    merged: dict = {}
    for klass in reversed(cls.__mro__):
        declared = klass.__dict__.get("_parameter_constraints")
        if isinstance(declared, Mapping):
            merged.update(declared)
    names = set(cls._get_param_names())
    return {k: v for k, v in merged.items() if k in names}


def validate_params(estimator) -> None:
    """Check an estimator's parameters against its declared constraints.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        (a ``ValueError``) naming the first bad parameter and the estimator.
    """
    params = estimator.get_params(deep=False)
    validate_parameter_constraints(constraints_of(estimator), params,
                                   caller_name=type(estimator).__name__)


SHARED = {
    "batch_size": [positive_int()],
    "learning_rate": [positive_real()],
    "weight_decay": [nonnegative_real()],
    "max_epochs": [positive_int(), None],
    "early_stop": [positive_int()],
    "tol": [nonnegative_real()],
    "selection": [StrOptions({"reference", "weighted"})],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    "device": [str],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "n_threads": [positive_int(), None],
}
"""The training shell's parameters (every deep model has them)."""
