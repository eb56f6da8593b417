"""Input handling shared by estimators, in numpy (done once per fit/predict).

* :func:`masked_mean` -- the length-aware time average (real frames only);
  ``padded=True`` gives MMSA's ``need_normalized`` behaviour (sum over the
  whole padded axis divided by L, reference-facts §1.7).
* :func:`align_to_length` -- MMSA's ``AlignSubNet('avg_pool')`` (§1.9):
  pool a sequence to ``T`` steps in consecutive windows, padding by
  repeating the last frame when ``T`` does not divide the length.
* :func:`check_X` -- the dict-X validation every estimator runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from simsbench.datasets import LENGTH_KEYS, MODALITIES


def check_X(X, modalities: Iterable[str], estimator_name: str) -> None:
    """Check that ``X`` is a dict of arrays holding every requested modality."""
    if not isinstance(X, Mapping):
        raise TypeError(
            f"{estimator_name} expects X as a dict of arrays keyed by modality "
            f"(text/audio/vision and <modality>_lengths), e.g. dataset.X('train'); "
            f"got {type(X).__name__}"
        )
    for m in modalities:
        if m not in MODALITIES:
            raise ValueError(
                f"{estimator_name}: unknown modality {m!r} in modalities; "
                f"choose from {list(MODALITIES)}"
            )
        if m not in X:
            raise ValueError(
                f"{estimator_name}: X has no {m!r} features (keys: {sorted(X)}) but "
                f"modalities={tuple(modalities)}"
            )
        arr = X[m]
        if np.ndim(arr) != 3:
            raise ValueError(
                f"{estimator_name}: X[{m!r}] must be 3-D (n_samples, L, D), "
                f"got shape {np.shape(arr)}"
            )


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
