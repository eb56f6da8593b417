"""Input handling shared by estimators, in numpy (done once per fit/predict).

* :func:`masked_mean` -- the length-aware time average (real frames only);
  ``padded=True`` gives MMSA's ``need_normalized`` behaviour (sum over the
  whole padded axis divided by L, MMSA ``src/MMSA/data_loader.py``).
* :func:`align_to_length` -- MMSA's ``AlignSubNet('avg_pool')``
  (MMSA ``src/MMSA/models/subNets/AlignNets.py``):
  pool a sequence to ``T`` steps in consecutive windows, padding by
  repeating the last frame when ``T`` does not divide the length.
* :func:`check_X` -- the dict-X validation every estimator runs (shapes,
  one sample count across modalities, finite values); it returns ``n``.
* :func:`check_y` -- the target validation: no inf anywhere, NaN in column M
  only for semi-supervised estimators (their unlabelled rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from simsbench.datasets import LABELS, LENGTH_KEYS, MODALITIES


def check_X(X, modalities: Iterable[str], estimator_name: str) -> int:
    """Check that ``X`` is a dict of arrays holding every requested modality.

    Each requested modality must be a 3-D ``(n_samples, L, D)`` numeric array
    of finite values, and every one of them (and each ``<modality>_lengths``
    present) must have the same ``n_samples``.  A plain ``dict`` is checked
    like a :class:`~simsbench.datasets.MultimodalX`.

    Returns
    -------
    n_samples : int

    Raises
    ------
    TypeError
        ``X`` is not a mapping.
    ValueError
        A modality is unknown or missing, not 3-D, not numeric, holds NaN or
        inf, or disagrees with the others in its number of samples (the
        message names the key).
    """
    if not isinstance(X, Mapping):
        raise TypeError(
            f"{estimator_name} expects X as a dict of arrays keyed by modality "
            f"(text/audio/vision and <modality>_lengths), e.g. dataset.X('train'); "
            f"got {type(X).__name__}"
        )
    modalities = tuple(modalities)
    n_ref: tuple[str, int] | None = None
    for m in modalities:
        if m not in MODALITIES:
            raise ValueError(
                f"{estimator_name}: unknown modality {m!r} in modalities; "
                f"choose from {list(MODALITIES)}"
            )
        if m not in X:
            raise ValueError(
                f"{estimator_name}: X has no {m!r} features (keys: {sorted(X)}) but "
                f"modalities={modalities}"
            )
        arr = X[m]
        if np.ndim(arr) != 3:
            raise ValueError(
                f"{estimator_name}: X[{m!r}] must be 3-D (n_samples, L, D), "
                f"got shape {np.shape(arr)}"
            )
        n = int(np.shape(arr)[0])
        if n_ref is None:
            n_ref = (m, n)
        elif n != n_ref[1]:
            raise ValueError(
                f"{estimator_name}: X[{m!r}] has {n} samples but X[{n_ref[0]!r}] has "
                f"{n_ref[1]}; every modality must describe the same clips"
            )
        _check_finite(arr, f"X[{m!r}]", estimator_name)
        key = LENGTH_KEYS[m]
        if key in X:
            lengths = X[key]
            if np.shape(lengths) != (n,):
                raise ValueError(
                    f"{estimator_name}: X[{key!r}] must have shape ({n},) like "
                    f"X[{m!r}], got {np.shape(lengths)}"
                )
            _check_finite(lengths, f"X[{key!r}]", estimator_name)
    return 0 if n_ref is None else n_ref[1]


def _check_finite(arr, where: str, estimator_name: str) -> None:
    """Raise a ValueError naming ``where`` if ``arr`` is not numeric or holds
    NaN/inf.  One float64 sum first (no full-size temporary), then a count
    only when something is wrong."""
    a = np.asarray(arr)
    kind = a.dtype.kind
    if kind in "biu":
        return
    if kind not in "fc":
        raise ValueError(f"{estimator_name}: {where} must be numeric, got dtype {a.dtype}")
    with np.errstate(all="ignore"):
        if np.isfinite(a.sum(dtype=np.complex128 if kind == "c" else np.float64)):
            return
    n_bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if n_bad:  # (the sum can overflow on huge but finite values)
        raise ValueError(
            f"{estimator_name}: {where} has {n_bad} non-finite value(s) (NaN or inf); "
            "clean the features first (load_mmsa replaces them by 0 and says so)"
        )


def check_y(
    y,
    n_samples: int,
    estimator_name: str,
    *,
    semi_supervised: bool = False,
    what: str = "y",
) -> np.ndarray:
    """Check a target: ``(n,)`` M labels or the ``(n, k <= 4)`` M/T/A/V matrix.

    Infinite labels are an error in every column.  NaN marks a missing label:
    allowed in the unimodal columns (T/A/V not annotated) and, for a
    ``semi_supervised`` estimator, in column M (the unlabelled rows), but an
    error in column M of any other estimator.  Each message names the column.

    Parameters
    ----------
    y : array-like
    n_samples : int
        Rows ``X`` has (what :func:`check_X` returns).
    estimator_name : str
    semi_supervised : bool, default=False
        Whether NaN in column M (unlabelled rows) is allowed.
    what : str, default="y"
        The argument's name in messages (``"y_valid"``...).

    Returns
    -------
    y : ndarray of float64, shape (n,) or (n, k)
    """
    x_name = "X" + what[1:] if what.startswith("y") else "X"
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{estimator_name}: {what} must be numeric ({exc})") from None
    if y.ndim not in (1, 2) or (y.ndim == 2 and not 1 <= y.shape[1] <= len(LABELS)):
        raise ValueError(
            f"{estimator_name}: {what} must have shape (n,) or (n, k) with k <= "
            f"{len(LABELS)} (M, T, A, V), got {y.shape}"
        )
    if y.shape[0] != n_samples:
        raise ValueError(
            f"{estimator_name}: {what} has {y.shape[0]} rows but {x_name} has {n_samples}"
        )
    cols = y[:, None] if y.ndim == 1 else y
    for j in range(cols.shape[1]):
        col = cols[:, j]
        n_inf = int(np.count_nonzero(np.isinf(col)))
        if n_inf:
            raise ValueError(
                f"{estimator_name}: {what} column {LABELS[j]!r} has {n_inf} infinite "
                "value(s)"
            )
    n_nan = int(np.count_nonzero(np.isnan(cols[:, 0])))
    if n_nan and not semi_supervised:
        raise ValueError(
            f"{estimator_name}: {what} column 'M' has {n_nan} NaN value(s) (unlabelled "
            f"rows), but {estimator_name} is not semi-supervised; drop those rows"
        )
    if n_samples and n_nan == n_samples:
        raise ValueError(f"{estimator_name}: {what} has no labelled row (column M is all NaN)")
    return y


def lengths_of(X: Mapping, modality: str) -> np.ndarray:
    """Real lengths of ``modality`` in ``X`` (the full length when absent)."""
    x = X[modality]
    key = LENGTH_KEYS[modality]
    if key in X:
        lengths = np.asarray(X[key]).astype(np.int64)
    else:
        lengths = np.full(np.shape(x)[0], np.shape(x)[1], dtype=np.int64)
    return np.clip(lengths, 1, np.shape(x)[1])


def masked_mean(x: np.ndarray, lengths: np.ndarray, padded: bool = False) -> np.ndarray:
    """Time-average ``x`` (N, L, D) over the first ``lengths`` frames.

    With ``padded=True`` the padding zeros are averaged in (MMSA's
    ``need_normalized``), i.e. the sum is divided by L.
    """
    x = np.asarray(x, dtype=np.float32)
    if padded:
        return np.nan_to_num(x.mean(axis=1, dtype=np.float64)).astype(np.float32)
    L = x.shape[1]
    mask = (np.arange(L)[None, :] < lengths[:, None]).astype(np.float32)
    total = np.einsum("nld,nl->nd", x, mask, optimize=True)
    return (total / np.maximum(lengths, 1)[:, None]).astype(np.float32)


def align_to_length(x: np.ndarray, target: int) -> np.ndarray:
    """MMSA's average-pool aligner: (N, R, D) -> (N, target, D)."""
    x = np.asarray(x, dtype=np.float32)
    n, R, D = x.shape
    if R == target:
        return x
    if R % target == 0:
        p = R // target
    else:
        p = R // target + 1
        pad = np.repeat(x[:, -1:, :], target * p - R, axis=1)
        x = np.concatenate([x, pad], axis=1)
    return x.reshape(n, target, p, D).mean(axis=2)
