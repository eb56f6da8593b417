"""The shared hyperparameter checks of the deep estimators (torch-free)."""

from __future__ import annotations

import numpy as np
import pytest

from simsbench.estimators._validation import check_int, check_ints, check_nonneg, check_probs


class Model:
    pass


M = Model()


def test_check_int():
    assert check_int(M, "rank", np.int64(4)) == 4
    assert check_int(M, "early_stop", 0, low=0) == 0
    for bad in (0, -1, 2.5, True, "3", None):
        with pytest.raises(ValueError, match=r"^Model: rank must be a positive int, got "):
            check_int(M, "rank", bad)
    with pytest.raises(ValueError, match="an int >= 2"):
        check_int(M, "window", 1, low=2)


def test_check_ints():
    assert check_ints(M, "hidden_dims", [8, np.int32(4), 8], 3) == (8, 4, 8)
    for bad in ((8, 4), (8, 0, 8), (8, 4.0, 8), 8, "abc"):
        with pytest.raises(ValueError, match=r"^Model: hidden_dims must be 3 positive ints"):
            check_ints(M, "hidden_dims", bad, 3)
    assert check_ints(M, "dims", (0, 1), 2, low=0) == (0, 1)


def test_check_probs():
    assert check_probs(M, "dropout", 0.5) == 0.5
    assert check_probs(M, "dropouts", (0.1, 0, 0.2), 3) == (0.1, 0.0, 0.2)
    for bad in (1.0, -0.1, "x", None, (0.1,), True):
        with pytest.raises(ValueError, match=r"^Model: dropout must be a dropout probability"):
            check_probs(M, "dropout", bad)
    for bad in ((0.1, 0.2), (0.1, 1.5, 0.2), 0.3, ("a", 0, 0)):
        with pytest.raises(ValueError, match=r"dropouts must be 3 dropout probabilities in"):
            check_probs(M, "dropouts", bad, 3)


def test_check_nonneg():
    assert check_nonneg(M, "weight_decay", 0) == 0.0
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -1"):
        check_nonneg(M, "weight_decay", -1)
    with pytest.raises(ValueError, match="factor_lr must be > 0, got 0"):
        check_nonneg(M, "factor_lr", 0, strict=True)
    with pytest.raises(ValueError, match="must be >= 0"):
        check_nonneg(M, "weight_decay", True)
