"""Dataset statistics: the CH-SIMS paper's Table 3 and Figure 2."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simsbench.datasets._base import LABELS, SPLITS, MultimodalDataset

if TYPE_CHECKING:
    import pandas as pd

CLASS_NAMES = ("NG", "WN", "NU", "WP", "PS")
# The Acc-5 bins of the SIMS metric: (lo, hi] intervals with outer edges +-1.01.
CLASS_EDGES = (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01)


def five_class(y: np.ndarray) -> np.ndarray:
    """Map SIMS scores to the five classes NG, WN, NU, WP, PS (0..4)."""
    y = np.clip(np.asarray(y, dtype=float), -1.0, 1.0)
    return np.searchsorted(np.asarray(CLASS_EDGES[1:-1]), y, side="left")


def split_table(ds: MultimodalDataset) -> pd.DataFrame:
    """Table 3 of the CH-SIMS paper: clips per split and five-class M label."""
    import pandas as pd  # lazily: loading a dataset needs no pandas

    rows = {}
    for s in SPLITS:
        y = ds.y(s, "M")
        counts = np.bincount(five_class(y), minlength=5)
        rows[s.capitalize()] = [len(y), *counts.tolist()]
    return pd.DataFrame.from_dict(rows, orient="index", columns=["Total", *CLASS_NAMES])


def label_statistics(ds: MultimodalDataset, split: str | None = None) -> dict:
    """Figure 2 statistics of the CH-SIMS paper.

    Returns a dict with ``"histograms"`` (a DataFrame: rows are the label grid
    values, columns the labels M/T/A/V, values the clip counts) and
    ``"difference"`` (the matrix D_ij = mean((y_i - y_j)**2) over clips).
    Uses all supervised splits unless ``split`` is given.
    """
    import pandas as pd

    labels = ds.available_labels
    splits = [split] if split else [s for s in SPLITS]
    y = np.concatenate([ds.y(s, labels).reshape(-1, len(labels)) for s in splits])
    grid = np.round(np.arange(-1.0, 1.0001, 0.2), 1) + 0.0  # no "-0.0"
    hist = {}
    for j, lab in enumerate(labels):
        snapped = np.round(np.clip(y[:, j], -1, 1) * 5) / 5
        hist[lab] = [int(np.isclose(snapped, g).sum()) for g in grid]
    hist_df = pd.DataFrame(hist, index=[f"{g:+.1f}" for g in grid])
    diff = np.array([[np.mean((y[:, i] - y[:, j]) ** 2) for j in range(len(labels))]
                     for i in range(len(labels))])
    return {
        "histograms": hist_df,
        "difference": pd.DataFrame(diff, index=list(labels), columns=list(labels)),
    }


__all__ = ["CLASS_NAMES", "five_class", "label_statistics", "split_table", "LABELS"]
