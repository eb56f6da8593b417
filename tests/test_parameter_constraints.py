"""Declared hyperparameter constraints: a bad value is a one-line error naming
the parameter, raised by ``fit`` before any training (scikit-learn's
``_parameter_constraints`` idiom, shared by every deep estimator)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from simsbench.estimators._constraints import constraints_of  # noqa: E402
from simsbench.utils.discovery import all_estimators  # noqa: E402

DEEP = [cls for _name, cls in all_estimators()
        if "n_threads" in cls().get_params() and cls.__name__ != "BertMAG"]

BAD_SHARED = [
    ("learning_rate", math.inf), ("learning_rate", 0.0), ("learning_rate", "fast"),
    ("tol", math.nan), ("weight_decay", -1.0), ("batch_size", 0), ("batch_size", "32"),
    ("batch_size", True), ("early_stop", False),
    ("max_epochs", 2.5), ("early_stop", 0), ("selection", "best"),
    ("validation_fraction", 1.0), ("n_threads", 0),
]


@pytest.mark.parametrize("cls", DEEP, ids=lambda c: c.__name__)
def test_every_deep_estimator_declares_the_shared_parameters(cls):
    declared = constraints_of(cls)
    for name in ("batch_size", "learning_rate", "weight_decay", "max_epochs", "early_stop",
                 "tol", "selection", "validation_fraction", "n_threads", "random_state"):
        if name in cls().get_params():
            assert name in declared, (cls.__name__, name)


@pytest.mark.parametrize("param, value", BAD_SHARED, ids=lambda v: repr(v))
@pytest.mark.parametrize("cls", DEEP, ids=lambda c: c.__name__)
def test_bad_shared_values_fail_before_training_naming_the_parameter(cls, param, value, tiny):
    if param not in cls().get_params():
        pytest.skip(f"{cls.__name__} has no {param}")
    est = cls(**cls._tiny_params).set_params(**{param: value})
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of {cls.__name__} must be"):
        est.fit(tiny.X("train"), tiny.y("train"))


@pytest.mark.parametrize("params, name", [
    ({"hidden_dims": (8, -1, 8)}, "hidden_dims"),
    ({"hidden_dims": 8}, "hidden_dims"),
    ({"text_out": "8"}, "text_out"),
    ({"dropouts": (0.1, 0.2)}, "dropouts"),
    ({"dropouts": (0.1, 0.2, 1.0, 0.3)}, "dropouts"),
    ({"pooling": "mean"}, "pooling"),
    ({"text_state_dropout": "yes"}, "text_state_dropout"),
])
def test_lf_dnn_model_parameters(params, name, tiny):
    from simsbench.estimators import LFDNN

    est = LFDNN(**LFDNN._tiny_params).set_params(**params)
    with pytest.raises(ValueError, match=rf"The '{name}' parameter of LFDNN must be"):
        est.fit(tiny.X("train"), tiny.y("train"))
