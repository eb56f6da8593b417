"""The constraint classes every estimator declares its parameters with
(torch-free): what each accepts, what it refuses, and the one-line message."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from simsbench.estimators._constraints import (
    EvenInt,
    Ints,
    Layer,
    Modalities,
    Probabilities,
    Reals,
    Tasks,
    finite_real,
    int_at_least,
    nonnegative_real,
    positive_int,
    positive_real,
    probability,
    validate_params,
)


@pytest.mark.parametrize("constraint, good, bad", [
    (positive_int(), [1, np.int64(4)], [0, -1, 2.5, True, np.True_, "3", None]),
    (int_at_least(0), [0, 3], [-1, False, 1.0]),
    (positive_real(), [1e-3, np.float32(0.5), 2], [0.0, -1.0, math.inf, math.nan, True, "1"]),
    (nonnegative_real(), [0, 0.0, 5.0], [-1e-9, math.nan, math.inf, True]),
    (finite_real(), [-1.0, 0, 2.5], [math.nan, -math.inf, math.inf, None, False]),
    (probability(), [0, 0.0, 0.99], [1.0, -0.1, math.nan, True, "0.1"]),
    (EvenInt(2), [2, 8, np.int64(16)], [0, 7, 8.0, True, -2]),
    (Ints(3), [(8, 4, 8), [8, np.int32(4), 8], np.array([1, 2, 3])],
     [(8, 4), (8, 0, 8), (8, 4.0, 8), (8, True, 8), 8, "abc", None]),
    (Ints(3, low=(2, 1, 1)), [(2, 1, 1)], [(1, 4, 4)]),
    (Probabilities(3), [(0.1, 0, 0.2), np.array([0.1, 0.2, 0.3])],
     [(0.1, 0.2), (0.1, 1.0, 0.2), ("a", 0, 0), (0.1, math.nan, 0.2), (0.1, True, 0.2), 0.3]),
    (Reals(4), [(0.6, 0.4, 0.0, 1.0), [1, 2, 3, 4]],
     [(1.0, 1.0, 1.0), (1.0, -0.1, 0.0, 1.0), (1.0, math.nan, 0.0, 1.0), "abcd"]),
    (Layer(), [(8, 0.2), [128, 0.0]], [(8,), (8, 1.0), (0, 0.2), (True, 0.2), 8, (8, 0.2, 1)]),
    (Modalities(), ["text", ("audio", "vision"), ["text", "audio", "vision"]],
     [(), ("text", "smell"), ("text", "text"), None, 3]),
    (Tasks(), [(), "T", ("T", "A", "V")], [("T", "X"), ("T", "T"), "TAV", None]),
])
def test_constraints_accept_and_refuse(constraint, good, bad):
    for value in good:
        assert constraint.is_satisfied_by(value), (str(constraint), value)
    for value in bad:
        assert not constraint.is_satisfied_by(value), (str(constraint), value)


class Model(BaseEstimator):
    _parameter_constraints = {"hidden_dims": [Ints(3)], "rank": [positive_int()]}

    def __init__(self, hidden_dims=(8, 4, 8), rank=2, extra=None):
        self.hidden_dims = hidden_dims
        self.rank = rank
        self.extra = extra


class Sub(Model):
    _parameter_constraints = {"rank": [positive_int(), None]}  # replaces the inherited entry


def test_validate_params_message_names_parameter_and_class():
    validate_params(Model())
    with pytest.raises(ValueError, match=r"^The 'hidden_dims' parameter of Model must be a "
                                         r"sequence of 3 positive ints\. Got \(8, -1, 8\)"):
        validate_params(Model(hidden_dims=(8, -1, 8)))
    with pytest.raises(ValueError, match=r"^The 'rank' parameter of Model must be an int in "
                                         r"the range \[1, inf\)\. Got True instead"):
        validate_params(Model(rank=True))


def test_subclass_declarations_merge_with_and_replace_the_base():
    validate_params(Sub(rank=None))
    with pytest.raises(ValueError, match="The 'hidden_dims' parameter of Sub"):
        validate_params(Sub(hidden_dims=8))


def test_validate_params_can_check_some_parameters_only():
    validate_params(Model(hidden_dims=8), names=("rank",))
    with pytest.raises(ValueError, match="'hidden_dims'"):
        validate_params(Model(hidden_dims=8), names=("hidden_dims", "rank"))
