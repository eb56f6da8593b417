"""The papers' figures and the benchmark's own, with matplotlib.

Every figure names its data (description and fingerprint) in a footer and,
when the data is synthetic, carries a red ``SIMULATED DATA`` banner.  They
are drawn on :class:`matplotlib.figure.Figure` objects directly (no pyplot,
no global backend switch: the Agg canvas), and saved as PNG and SVG (text
kept as text in the SVG, so it is searchable and small).

=========  ===============================================================
``labels`` CH-SIMS Fig. 2: M/T/A/V label distributions and the ``D_ij``
           discrepancy heat map, from the stored data record.
``tsne``   CH-SIMS Fig. 4 / v2 Fig. 7: t-SNE of a fitted multi-task model's
           unimodal representations of the test clips, coloured by the M
           label's class (negative / neutral / positive).
``curves`` Train/valid loss per epoch of a table's runs (the records'
           ``history``; deep estimators only).
``dist``   Each metric's distribution over seeds, per model of a table.
``cd``     Critical-difference diagram: mean ranks over seeds, Friedman test
           and Nemenyi critical difference (:func:`simsbench.stats.friedman_nemenyi`).
=========  ===============================================================

The figures live in :mod:`simsbench.figure_paper` (``labels``, ``tsne``) and
:mod:`simsbench.figure_tables` (``curves``, ``dist``, ``cd``), their shared
canvas and writers in :mod:`simsbench.figure_canvas`, the progress lines of
``simsbench figure`` / ``report`` in :mod:`simsbench.progress`; this module
re-exports them all.  matplotlib is the optional ``figures`` extra; it is
imported when a figure is drawn, never on import of this module.  Imports no
torch.
"""

from __future__ import annotations

from simsbench.figure_canvas import BANNER, FIGURE_FORMATS, png_base64, save_figure, svg_text
from simsbench.figure_paper import (
    fit_representations,
    labels_figure,
    tsne_embeddings,
    tsne_figure,
    tsne_payload,
)
from simsbench.figure_tables import (
    cd_figure,
    curves_figure,
    distribution_figure,
    table_figure,
    table_ranking,
)
from simsbench.progress import StepProgress

__all__ = [
    "BANNER",
    "FIGURES",
    "FIGURE_FORMATS",
    "StepProgress",
    "cd_figure",
    "curves_figure",
    "distribution_figure",
    "fit_representations",
    "labels_figure",
    "png_base64",
    "save_figure",
    "svg_text",
    "table_figure",
    "table_ranking",
    "tsne_embeddings",
    "tsne_figure",
    "tsne_payload",
]

FIGURES = ("labels", "tsne", "curves", "dist", "cd")
"""Figure names of ``simsbench figure``."""
