"""Hyperparameter checks shared by the deep estimators.

Each check takes the estimator (for its class name in the message), the
parameter's name and its value, raises a one-line ``ValueError`` naming
both, and returns the value converted to a plain Python type.
"""

from __future__ import annotations

import numbers


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_int(est, name: str, value, low: int = 1) -> int:
    """``value`` must be an int ``>= low``."""
    if not _is_int(value) or value < low:
        what = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{type(est).__name__}: {name} must be {what}, got {value!r}")
    return int(value)


def check_ints(est, name: str, value, n: int, low: int = 1) -> tuple[int, ...]:
    """``value`` must be a sequence of ``n`` ints ``>= low``."""
    try:
        vals = tuple(value)
    except TypeError:
        vals = (value,)
    if len(vals) != n or not all(_is_int(v) and v >= low for v in vals):
        what = "positive ints" if low == 1 else f"ints >= {low}"
        raise ValueError(f"{type(est).__name__}: {name} must be {n} {what}, got {value!r}")
    return tuple(int(v) for v in vals)


def check_probs(est, name: str, value, n: int | None = None):
    """``value`` must be a dropout probability in [0, 1) (``n=None``) or a
    sequence of ``n`` of them; returns a float or a tuple of floats."""
    seq = value if n is not None else (value,)
    try:
        vals = tuple(float(v) for v in seq if not isinstance(v, bool))
        ok = len(vals) == len(tuple(seq)) and all(0.0 <= v < 1.0 for v in vals)
    except (TypeError, ValueError):
        vals, ok = (), False
    if not ok or (n is not None and len(vals) != n):
        what = "a dropout probability" if n is None else f"{n} dropout probabilities"
        raise ValueError(
            f"{type(est).__name__}: {name} must be {what} in [0, 1), got {value!r}"
        )
    return vals[0] if n is None else vals


def check_nonneg(est, name: str, value, strict: bool = False) -> float:
    """``value`` must be a real number ``>= 0`` (``> 0`` if ``strict``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        value > 0 if strict else value >= 0)
    if not ok:
        raise ValueError(
            f"{type(est).__name__}: {name} must be {'> 0' if strict else '>= 0'}, "
            f"got {value!r}"
        )
    return float(value)
