"""The papers' regression metrics, in pure numpy and unrounded.

* SIMS (CH-SIMS, and CH-SIMS v2 in MMSA): predictions and truths are clipped
  to [-1, 1] first; Acc-2/3/5 bin with lower-open, upper-closed intervals
  (0 counts as **negative** in Acc-2); F1 is the weighted F1 of the 2-class
  bins; MAE and Corr use the clipped values (MMSA ``src/MMSA/utils/metricsTop.py``).
* SIMS v2 extras: ``acc2_weak`` (Acc-2 on clips whose clipped truth lies in
  [-0.4, 0.4], both ends inclusive) and ``r2`` on the clipped values
  (ch-sims-v2 ``utils/metricsTop.py``).
* MOSI/MOSEI: unclipped MAE and Corr; Acc-7/Acc-5 round half-to-even after
  clipping to [-3, 3]/[-2, 2]; ``has0`` binarises as ``>= 0`` (0 positive);
  ``non0`` drops truths equal to 0 and binarises as ``> 0`` (MMSA ``src/MMSA/utils/metricsTop.py``).

Every metric has the signature ``f(y_true, y_pred) -> float``; a 2-D
``y_true`` (the M/T/A/V matrix) is scored on its first column, M.  Rounding
happens only in :mod:`simsbench.tables`.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import f1_score, make_scorer, r2_score

__all__ = [
    "SIMS_METRICS",
    "SIMSV2_METRICS",
    "MOSI_METRICS",
    "METRICS",
    "GREATER_IS_BETTER",
    "score_all",
    "scorer",
    "metrics_for",
]

_EDGES = {
    2: (-1.01, 0.0, 1.01),
    3: (-1.01, -0.1, 0.1, 1.01),
    5: (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01),
}


def _prep(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 2:
        y_true = y_true[:, 0]
    if y_pred.ndim == 2:
        y_pred = y_pred[:, 0]
    y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has {y_true.shape[0]} values but y_pred has {y_pred.shape[0]}"
        )
    if y_true.size == 0:
        raise ValueError("cannot score empty arrays")
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise ValueError("y_true and y_pred must be finite")
    return y_true, y_pred


def _clip1(y_true, y_pred):
    y_true, y_pred = _prep(y_true, y_pred)
    return np.clip(y_true, -1.0, 1.0), np.clip(y_pred, -1.0, 1.0)


def _clip1_f32(y_true, y_pred):
    """Clipped values in float32, where the class boundaries are compared.

    Labels are stored as float32 in every MMSA pickle and the models predict
    float32; the reference metrics (MMSA ``src/MMSA/utils/metricsTop.py``,
    ch-sims-v2 ``utils/metricsTop.py``) compare those float32 values with
    the boundaries (-0.4, 0, 0.1, 0.7...) in float32.  Widened to float64,
    a stored 0.4 is 0.40000000596 and falls outside ``<= 0.4``; narrowing
    back is exact, so comparing in float32 keeps exactly the reference's
    clips whether the labels arrive as float32 or as float64 copies of them.
    """
    t, p = _clip1(y_true, y_pred)
    return t.astype(np.float32), p.astype(np.float32)


def _bin(y: np.ndarray, n_classes: int) -> np.ndarray:
    # (lo, hi] bins: searchsorted(side="left") on the inner edges, compared
    # in the values' own dtype (float32 for the SIMS metrics).
    edges = np.asarray(_EDGES[n_classes][1:-1], dtype=y.dtype)
    return np.searchsorted(edges, y, side="left")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        warnings.warn(
            "Corr is undefined for a constant prediction or truth; returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


# --- SIMS ------------------------------------------------------------------

def acc2(y_true, y_pred) -> float:
    """SIMS Acc-2: non-positive vs positive after clipping (0 is negative)."""
    t, p = _clip1_f32(y_true, y_pred)
    return float(np.mean(_bin(t, 2) == _bin(p, 2)))


def acc3(y_true, y_pred) -> float:
    """SIMS Acc-3 with bins [-1, -0.1], (-0.1, 0.1], (0.1, 1]."""
    t, p = _clip1_f32(y_true, y_pred)
    return float(np.mean(_bin(t, 3) == _bin(p, 3)))


def acc5(y_true, y_pred) -> float:
    """SIMS Acc-5 with cut points -0.7, -0.1, 0.1, 0.7 (upper-closed bins)."""
    t, p = _clip1_f32(y_true, y_pred)
    return float(np.mean(_bin(t, 5) == _bin(p, 5)))


def f1(y_true, y_pred) -> float:
    """SIMS F1: weighted F1 of the Acc-2 bins."""
    t, p = _clip1_f32(y_true, y_pred)
    return float(f1_score(_bin(t, 2), _bin(p, 2), average="weighted", labels=[0, 1]))


def mae(y_true, y_pred) -> float:
    """SIMS MAE on the values clipped to [-1, 1]."""
    t, p = _clip1(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def corr(y_true, y_pred) -> float:
    """SIMS Pearson correlation on the clipped values (NaN, with a warning,
    when either side is constant)."""
    t, p = _clip1(y_true, y_pred)
    return _pearson(t, p)


def acc2_weak(y_true, y_pred) -> float:
    """SIMS v2 Acc2_weak: Acc-2 on clips whose clipped truth is in [-0.4, 0.4].

    The bounds are compared in float32, as the reference does
    (ch-sims-v2 ``utils/metricsTop.py``), so a stored label of +-0.4 is kept
    whether it arrives as float32 or widened to float64.  NaN (with a
    warning) when no clip qualifies."""
    t, p = _clip1_f32(y_true, y_pred)
    keep = (t >= np.float32(-0.4)) & (t <= np.float32(0.4))
    if not keep.any():
        warnings.warn("no truth in [-0.4, 0.4]: Acc2_weak is NaN", RuntimeWarning, 2)
        return float("nan")
    return float(np.mean(_bin(t[keep], 2) == _bin(p[keep], 2)))


def r2(y_true, y_pred) -> float:
    """SIMS v2 R² (``R_squre``): sklearn's r2_score on the clipped values."""
    t, p = _clip1(y_true, y_pred)
    return float(r2_score(t, p))


# --- MOSI / MOSEI ------------------------------------------------------------

def mosi_mae(y_true, y_pred) -> float:
    """MOSI/MOSEI MAE (unclipped)."""
    t, p = _prep(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def mosi_corr(y_true, y_pred) -> float:
    """MOSI/MOSEI Pearson correlation (unclipped)."""
    t, p = _prep(y_true, y_pred)
    return _pearson(t, p)


def acc7(y_true, y_pred) -> float:
    """MOSI Acc-7: clip to [-3, 3], round half to even, compare."""
    t, p = _prep(y_true, y_pred)
    return float(np.mean(np.round(np.clip(t, -3, 3)) == np.round(np.clip(p, -3, 3))))


def mosi_acc5(y_true, y_pred) -> float:
    """MOSI Acc-5: clip to [-2, 2], round half to even, compare."""
    t, p = _prep(y_true, y_pred)
    return float(np.mean(np.round(np.clip(t, -2, 2)) == np.round(np.clip(p, -2, 2))))


def has0_acc2(y_true, y_pred) -> float:
    """MOSI Has0 Acc-2: ``value >= 0`` is positive (0 counts as positive)."""
    t, p = _prep(y_true, y_pred)
    return float(np.mean((t >= 0) == (p >= 0)))


def has0_f1(y_true, y_pred) -> float:
    """MOSI Has0 weighted F1 (0 counts as positive)."""
    t, p = _prep(y_true, y_pred)
    return float(f1_score(t >= 0, p >= 0, average="weighted"))


def _non0(y_true, y_pred):
    t, p = _prep(y_true, y_pred)
    keep = t != 0
    if not keep.any():
        raise ValueError("Non0 metrics need at least one non-zero truth")
    return t[keep] > 0, p[keep] > 0


def non0_acc2(y_true, y_pred) -> float:
    """MOSI Non0 Acc-2: drop truths equal to 0, then ``> 0`` is positive."""
    t, p = _non0(y_true, y_pred)
    return float(np.mean(t == p))


def non0_f1(y_true, y_pred) -> float:
    """MOSI Non0 weighted F1."""
    t, p = _non0(y_true, y_pred)
    return float(f1_score(t, p, average="weighted"))


METRICS = {
    "acc2": acc2,
    "acc3": acc3,
    "acc5": acc5,
    "f1": f1,
    "mae": mae,
    "corr": corr,
    "acc2_weak": acc2_weak,
    "r2": r2,
    "has0_acc2": has0_acc2,
    "has0_f1": has0_f1,
    "non0_acc2": non0_acc2,
    "non0_f1": non0_f1,
    "mosi_acc5": mosi_acc5,
    "acc7": acc7,
    "mosi_mae": mosi_mae,
    "mosi_corr": mosi_corr,
}
"""Every metric by name."""

GREATER_IS_BETTER = {name: not name.endswith("mae") for name in METRICS}

SIMS_METRICS = ("acc2", "acc3", "acc5", "f1", "mae", "corr")
"""Columns of the CH-SIMS paper's Table 2 (MMSA ``Mult_acc_2`` ... ``Corr``)."""

SIMSV2_METRICS = ("acc2", "acc2_weak", "acc3", "acc5", "f1", "mae", "corr", "r2")
"""The AV-MC code's key set (``Mult_acc_2`` ... ``R_squre``)."""

MOSI_METRICS = ("has0_acc2", "has0_f1", "non0_acc2", "non0_f1", "mosi_acc5", "acc7",
                "mosi_mae", "mosi_corr")
"""MOSI/MOSEI keys (``Has0_acc_2`` ... ``Corr``)."""


def metrics_for(kind: str) -> tuple[str, ...]:
    """The metric set of a dataset kind (``sims``, ``simsv2``, ``mosi``, ``mosei``)."""
    return {"sims": SIMS_METRICS, "simsv2": SIMSV2_METRICS}.get(kind, MOSI_METRICS)


def score_all(y_true, y_pred, metrics=SIMS_METRICS) -> dict[str, float]:
    """Compute several metrics at once: ``{name: value}``, unrounded."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")
    return {m: METRICS[m](y_true, y_pred) for m in metrics}


def scorer(name: str):
    """An sklearn scorer for metric ``name``.

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score
    >>> s = scorer("acc2")   # cross_val_score(model, X, y, scoring=s)
    >>> s._sign
    1
    """
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {sorted(METRICS)}")
    return make_scorer(METRICS[name], greater_is_better=GREATER_IS_BETTER[name])
