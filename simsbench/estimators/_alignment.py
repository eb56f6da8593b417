"""The aligned-sequence inputs of the sequence models: EF-LSTM, MFN and Graph-MFN.

The sequence models step over one time grid.  Its *anchor* is the text when
text is used, otherwise the used modality with the shortest padded length
(vision for audio+vision, the modality itself when it is alone).  The other
modalities are pooled onto the anchor's grid:

* ``alignment="padded"`` (the reference of EF-LSTM and Graph-MFN): MMSA's
  ``AlignSubNet('avg_pool')`` (MMSA ``src/MMSA/models/subNets/AlignNets.py``,
  applied by ``src/MMSA/models/AMIO.py``) on the padded arrays, and the
  recurrence over every padded step;
* ``alignment="length_aware"`` (correction :data:`ALIGNMENT`): each clip's
  **real** frames are average-pooled into as many consecutive, near-equal
  windows as the clip's real anchor length (frames are repeated when a clip
  has fewer frames than steps), and the recurrence runs over the real steps
  only;
* ``alignment="mean"`` (MFN only): the reference's MFN inputs on SIMS: MMSA's
  data loader (``src/MMSA/data_loader.py``, ``need_normalized``) averages
  the non-text modalities over the padded axis and the aligner then repeats
  the mean vector at every padded step.
"""

from __future__ import annotations

import numpy as np

from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import align_to_length, lengths_of, masked_mean

__all__ = [
    "ALIGNMENT",
    "align_real_frames",
    "aligned_sequence_inputs",
    "anchor_modality",
    "sequence_length",
]

ALIGNMENT = Correction(
    "alignment",
    "The reference average-pools the padded audio/vision arrays onto the text's padded "
    "steps (windows over zero padding, padded by repeating the last frame) and runs the "
    "recurrence over every padded step; corrected: each clip's real frames are pooled "
    "onto its real tokens and the recurrence stops at the clip's last real token.",
    {"alignment": ("padded", "length_aware")},
)
"""``alignment``: ``"padded"`` (reference) or ``"length_aware"``."""


def anchor_modality(seq_lens: dict) -> str:
    """The modality whose time grid the sequence models step over."""
    if "text" in seq_lens:
        return "text"
    best: str = ""
    for m, L in seq_lens.items():  # canonical order breaks ties
        if not best or L < seq_lens[best]:
            best = m
    return best


def _fit_length(x: np.ndarray, T: int) -> np.ndarray:
    """Zero-pad or truncate axis 1 of ``x`` to ``T``."""
    L = x.shape[1]
    if L == T:
        return x
    if L > T:
        return x[:, :T]
    pad = np.zeros((x.shape[0], T - L, x.shape[2]), dtype=x.dtype)
    return np.concatenate([x, pad], axis=1)


def align_real_frames(x: np.ndarray, lengths: np.ndarray, steps: np.ndarray,
                      T: int) -> np.ndarray:
    """Pool each clip's real frames onto its real number of steps.

    Clip ``i`` has ``lengths[i]`` real frames and ``steps[i]`` real steps:
    with at least as many frames as steps, step ``k`` is the mean of frames
    ``floor(k*r/t) .. floor((k+1)*r/t) - 1`` (consecutive windows whose sizes
    differ by at most one); with fewer frames, step ``k`` is frame
    ``floor(k*r/t)``.  Steps past ``steps[i]`` are zero.  Returns
    ``(n, T, D)`` float32.
    """
    x = np.asarray(x, dtype=np.float32)
    n, _, D = x.shape
    out = np.zeros((n, T, D), dtype=np.float32)
    for i in range(n):
        r, t = int(lengths[i]), int(steps[i])
        k = (np.arange(t) * r) // t
        if r >= t:
            sums = np.add.reduceat(x[i, :r], k, axis=0)
            counts = np.diff(np.append(k, r)).astype(np.float32)
            out[i, :t] = sums / counts[:, None]
        else:
            out[i, :t] = x[i, k]
    return out


def aligned_sequence_inputs(est, X) -> dict:
    """Inputs of EF-LSTM/MFN/Graph-MFN: modalities on the anchor's time grid
    and the number of real steps per clip (``step_lengths``), as
    ``est.alignment`` (checked by the estimator's constraints) says."""
    mods = est._modalities()
    lens = getattr(est, "seq_lens_", None) or {m: int(np.shape(X[m])[1]) for m in mods}
    anchor = anchor_modality(lens)
    T = int(lens[anchor])
    n = int(np.shape(X[anchor])[0])
    if est.alignment == "length_aware":
        steps = np.minimum(lengths_of(X, anchor), T)
    else:
        steps = np.full(n, T, dtype=np.int64)
    out = {}
    for m in mods:
        x = np.asarray(X[m], dtype=np.float32)
        if est.alignment == "mean" and m != "text":
            out[m] = masked_mean(x, lengths_of(X, m), padded=True)[:, None, :]
        elif m == anchor:
            out[m] = _fit_length(x, T)
        elif est.alignment == "padded" or est.alignment == "mean":
            out[m] = align_to_length(x, T)
        else:
            out[m] = align_real_frames(x, lengths_of(X, m), steps, T)
    out["step_lengths"] = steps.astype(np.int64)
    return out


def sequence_length(seq_lens: dict) -> int:
    """Number of steps of the anchor grid for the given padded lengths."""
    return int(seq_lens[anchor_modality(seq_lens)])
