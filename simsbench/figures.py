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

matplotlib is the optional ``figures`` extra; it is imported when a figure
is drawn, never on import of this module.  Imports no torch.
"""

from __future__ import annotations

import base64
import io
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from simsbench.stats import RankingResult, friedman_nemenyi

__all__ = [
    "FIGURES",
    "FIGURE_FORMATS",
    "cd_figure",
    "curves_figure",
    "distribution_figure",
    "labels_figure",
    "StepProgress",
    "fit_representations",
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
FIGURE_FORMATS = ("png", "svg")

BANNER = "SIMULATED DATA: not CH-SIMS results"
_BANNER_COLOUR = "#b00020"
_CLASS_NAMES = ("negative", "neutral", "positive")
_CLASS_COLOURS = ("#d62728", "#7f7f7f", "#1f77b4")
_RC = {"svg.fonttype": "none", "svg.hashsalt": "simsbench", "font.size": 9}


def _mpl():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "figures need matplotlib: pip install 'simsbench[figures]'"
        ) from None
    return matplotlib, Figure


def _is_synthetic(info: Mapping) -> bool:
    return bool(info.get("synthetic")) or str(info.get("spec", "")).startswith("synthetic:")


def _data_line(info: Mapping, extra: str = "") -> str:
    desc = str(info.get("description") or info.get("spec") or "unknown data")
    fp = info.get("fingerprint")
    text = f"Data: {desc}" + (f" | fingerprint {str(fp)[:16]}" if fp else "")
    return text + (f" | {extra}" if extra else "")


def _new_figure(width: float, height: float, title: str, info: Mapping, extra: str = ""):
    """A Figure with a title, the data footer and (synthetic data) the banner.

    Returns the figure and the rectangle (figure fraction) left for axes.
    """
    _, Figure = _mpl()
    synthetic = _is_synthetic(info)
    top_in = 0.45 + (0.32 if synthetic else 0.0)
    bottom_in = 0.42
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(
        rect=(0.0, bottom_in / height, 1.0, 1.0 - (top_in + bottom_in) / height)
    )
    y = 1.0 - 0.06 / height
    if synthetic:
        fig.text(0.5, y, BANNER, ha="center", va="top", color="white", fontsize=10,
                 fontweight="bold", gid="simulated-banner",
                 bbox={"boxstyle": "square,pad=0.25", "facecolor": _BANNER_COLOUR,
                       "edgecolor": "none"})
        y -= 0.32 / height
    fig.text(0.5, y, title, ha="center", va="top", fontsize=11, fontweight="bold",
             gid="figure-title")
    fig.text(0.01, 0.08 / height, _data_line(info, extra), ha="left", va="bottom",
             fontsize=7, color="#444444", gid="data-footer", wrap=True)
    return fig


def save_figure(fig, stem: str | os.PathLike, formats: Iterable[str] = FIGURE_FORMATS,
                description: str = "") -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` / ``<stem>.svg``; returns the paths."""
    matplotlib, _ = _mpl()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        if fmt not in FIGURE_FORMATS:
            raise ValueError(f"unknown figure format {fmt!r}; choose from png, svg")
        path = stem.with_suffix(f".{fmt}")
        meta: dict[str, str | None] = {"Title": stem.name, "Description": description}
        if fmt == "svg":
            meta["Date"] = None
        tmp = path.with_name(f".{path.name}.tmp")
        with matplotlib.rc_context(_RC):
            fig.savefig(tmp, format=fmt, dpi=120, metadata=meta)
        os.replace(tmp, path)
        out.append(path)
    return out


def svg_text(fig) -> str:
    """The figure as an inline SVG document (no XML prolog), for HTML."""
    matplotlib, _ = _mpl()
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def png_base64(fig, dpi: int = 100) -> str:
    """The figure as a base64 PNG (for a ``data:`` URI)."""
    matplotlib, _ = _mpl()
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------------------
# CH-SIMS Fig. 2

def labels_figure(data_info: Mapping[str, Any]):
    """CH-SIMS Fig. 2: label histograms (one panel per label) and ``D_ij``.

    Parameters
    ----------
    data_info : mapping
        A stored data record (``simsbench data describe`` / any run writes
        it) with ``label_histograms`` and ``label_difference``.
    """
    hist = data_info.get("label_histograms")
    diff = data_info.get("label_difference")
    if not hist or not diff:
        raise ValueError(
            "the data record has no label statistics (data without unimodal labels?); "
            "run 'simsbench data describe DATA' on data with M/T/A/V labels"
        )
    labels = list(hist["columns"])
    grid = [float(v) for v in hist["index"]]
    counts = np.asarray(hist["values"], dtype=float)
    fig = _new_figure(2.2 * len(labels) + 3.4, 3.4, "Label distributions and discrepancy "
                      "(CH-SIMS Fig. 2)", data_info)
    gs = fig.add_gridspec(1, len(labels) + 1, width_ratios=[1] * len(labels) + [1.5])
    share = None
    for j, lab in enumerate(labels):
        ax = fig.add_subplot(gs[0, j], sharey=share)
        share = share or ax
        ax.bar(grid, counts[:, j], width=0.16, color="#4c72b0")
        ax.set_title(f"label {lab}")
        ax.set_xlabel("label value")
        if j == 0:
            ax.set_ylabel("clips")
        ax.set_xticks([-1.0, -0.5, 0.0, 0.5, 1.0])
    ax = fig.add_subplot(gs[0, -1])
    d_labels = list(diff["labels"])
    d = np.asarray(diff["values"], dtype=float)
    im = ax.imshow(d, cmap="viridis")
    ax.set_xticks(range(len(d_labels)), d_labels)
    ax.set_yticks(range(len(d_labels)), d_labels)
    ax.set_title("D_ij = mean((y_i - y_j)^2)")
    ax.set_xlabel("label j")
    ax.set_ylabel("label i")
    hi = float(np.nanmax(d)) if d.size else 0.0
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            ax.text(j, i, f"{d[i, j]:.3f}", ha="center", va="center", fontsize=7,
                    color="white" if d[i, j] < hi * 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


# ---------------------------------------------------------------------------
# CH-SIMS Fig. 4 / v2 Fig. 7

def tsne_embeddings(representations: Mapping[str, np.ndarray], random_state: int = 0,
                    perplexity: float = 30.0) -> dict[str, np.ndarray]:
    """2-D t-SNE of each modality's representations (scikit-learn's TSNE).

    ``perplexity`` is lowered to ``(n - 1) / 3`` for small ``n`` (TSNE needs
    it below ``n``).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    order = [m for m in ("text", "audio", "vision") if m in representations]
    order += [m for m in representations if m not in order]
    out = {}
    for mod in order:
        rep = np.asarray(representations[mod], dtype=np.float64)
        n = rep.shape[0]
        if n < 4:
            raise ValueError(f"t-SNE needs at least 4 clips, got {n}")
        perp = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
        tsne = TSNE(n_components=2, perplexity=perp, init="pca", random_state=random_state)
        # one thread: OpenMP workers of scikit-learn's Barnes-Hut code spin against
        # torch's (seconds -> minutes on a loaded machine, for a few hundred points)
        with threadpool_limits(limits=1):
            out[mod] = tsne.fit_transform(rep)
    return out


def _three_class(y: np.ndarray) -> np.ndarray:
    # the SIMS Acc-3 bins: (-1.01, -0.1], (-0.1, 0.1], (0.1, 1.01]
    y = np.clip(np.asarray(y, dtype=float), -1.0, 1.0)
    return np.searchsorted(np.asarray([-0.1, 0.1]), y, side="left")


def tsne_figure(embeddings: Mapping[str, np.ndarray], labels, data_info: Mapping[str, Any],
                model: str = "MLF-DNN", label_name: str = "M"):
    """CH-SIMS Fig. 4 / v2 Fig. 7: one scatter per modality, coloured by class.

    Parameters
    ----------
    embeddings : mapping modality -> array of shape (n, 2)
    labels : array of shape (n,)
        The clips' sentiment scores (coloured by their three-class bin).
    data_info : mapping
        The data record (named in the footer; banner when synthetic).
    model, label_name : str
        Named in the title.
    """
    classes = _three_class(labels)
    mods = list(embeddings)
    fig = _new_figure(3.2 * len(mods) + 0.6, 3.8,
                      f"t-SNE of the unimodal representations of {model} "
                      f"(CH-SIMS Fig. 4 / v2 Fig. 7)", data_info,
                      extra=f"test clips, coloured by label {label_name}")
    axes = fig.subplots(1, len(mods), squeeze=False)[0]
    for ax, mod in zip(axes, mods):
        xy = np.asarray(embeddings[mod])
        for k, (name, colour) in enumerate(zip(_CLASS_NAMES, _CLASS_COLOURS)):
            sel = classes == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=8, c=colour, label=name, alpha=0.8,
                       linewidths=0)
        ax.set_title(f"{mod} representation")
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].legend(title=f"label {label_name}", loc="best", fontsize=7, title_fontsize=7)
    return fig


# ---------------------------------------------------------------------------
# figures of a table's records

def _row_of(rt) -> dict[tuple[str, str], str]:
    """(estimator, task) -> row label of a rendered table's result rows."""
    out = {}
    for row in rt.table.rows:
        if row.kind == "result" and row.estimator:
            out[(row.estimator, row.task)] = " / ".join(row.labels)
    return out


def curves_figure(rt, records: Sequence[dict] | None = None):
    """Train (solid) and valid (dashed) loss per epoch, one panel per table row.

    Parameters
    ----------
    rt : RenderedTable
        A table built from records (:func:`simsbench.tables.build_table`).
    records : sequence of dict, optional
        Default: the records the table used (``rt.records``).
    """
    records = rt.records if records is None else records
    labels = _row_of(rt)
    panels: dict[str, list[dict]] = {}
    for r in records:
        hist = r.get("history") or {}
        if r.get("status") == "ok" and hist.get("train_loss"):
            key = labels.get((r["estimator"], r["task"]), r.get("estimator_label",
                                                                r["estimator"]))
            panels.setdefault(key, []).append(r)
    if not panels:
        raise ValueError(
            f"no run of {rt.table.name} has a per-epoch history (deep estimators record "
            "one; rerun with --force if the records predate it)"
        )
    n = len(panels)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = _new_figure(3.0 * ncols + 0.4, 2.4 * nrows + 0.9,
                      f"Learning curves: {rt.table.paper} {rt.table.paper_table} "
                      f"[{rt.table.name}]", rt.data_info,
                      extra=f"mode {rt.mode or 'n/a'}")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    from matplotlib.lines import Line2D

    seeds = sorted({r["seed"] for recs in panels.values() for r in recs})
    colour = {s: f"C{i % 10}" for i, s in enumerate(seeds)}
    for ax, (label, recs) in zip(axes, panels.items()):
        for r in sorted(recs, key=lambda r: r["seed"]):
            for key, style in (("train_loss", "-o"), ("valid_loss", "--s")):
                # a non-finite loss was stored as null
                loss = np.array([np.nan if v is None else v
                                 for v in r["history"].get(key) or []], dtype=float)
                if loss.size:
                    ax.plot(np.arange(1, loss.size + 1), loss, style, color=colour[r["seed"]],
                            ms=3)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
    for ax in axes[n:]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colour[s], label=f"seed {s}") for s in seeds]
    handles += [Line2D([], [], color="black", ls="-", marker="o", ms=3, label="train"),
                Line2D([], [], color="black", ls="--", marker="s", ms=3, label="valid")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    return fig


def distribution_figure(rt, metrics: Sequence[str] | None = None):
    """Each metric over seeds, per model: box plot with the seeds as points."""
    metrics = list(metrics or rt.table.metrics)
    rows = [k for k in rt.per_seed if any(rt.per_seed[k].get(m) for m in metrics)]
    if not rows:
        raise ValueError(f"{rt.table.name} has no finished runs to plot")
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = _new_figure(3.4 * ncols + 1.2, (0.28 * len(rows) + 1.1) * nrows + 0.9,
                      f"Scores over seeds: {rt.table.paper} {rt.table.paper_table} "
                      f"[{rt.table.name}]", rt.data_info,
                      extra=f"mode {rt.mode or 'n/a'}")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    labels = rt.table.metric_labels
    for ax, m in zip(axes, metrics):
        vals = [list(rt.per_seed[k].get(m, {}).values()) for k in rows]
        pos = np.arange(len(rows))
        data = [v if v else [np.nan] for v in vals]
        try:  # matplotlib >= 3.10; 'vert' is deprecated from 3.11
            ax.boxplot(data, positions=pos, orientation="horizontal", widths=0.6,
                       showfliers=False)
        except TypeError:
            ax.boxplot(data, positions=pos, vert=False, widths=0.6, showfliers=False)
        for p, v in zip(pos, vals):
            ax.scatter(v, np.full(len(v), p), s=10, color="C1", zorder=3)
        ax.set_yticks(pos, rows)
        ax.invert_yaxis()
        scale = "" if rt.table.scale(m) == 1.0 else " (x100)"
        ax.set_xlabel(f"{labels.get(m, m)}{scale}")
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    return fig


def table_ranking(rt, metric: str | None = None, alpha: float = 0.05) -> RankingResult:
    """Friedman + Nemenyi over a table's result rows, blocks = paper seeds."""
    from simsbench.metrics import GREATER_IS_BETTER

    metric = metric or rt.table.metrics[0]
    if metric not in rt.table.metrics:
        raise ValueError(f"--metric {metric!r} is not a column of {rt.table.name}; "
                         f"choose from {', '.join(rt.table.metrics)}")
    rows = [k for k in rt.per_seed if rt.per_seed[k].get(metric)]
    if len(rows) < 2:
        raise ValueError(f"a ranking needs at least two rows of {rt.table.name} with "
                         f"finished runs, got {len(rows)}")
    seeds = sorted({s for k in rows for s in rt.per_seed[k][metric]})
    scores = np.array([[rt.per_seed[k][metric].get(s, np.nan) for k in rows] for s in seeds])
    return friedman_nemenyi(scores, rows, higher_is_better=GREATER_IS_BETTER[metric],
                            alpha=alpha)


def cd_figure(rt, metric: str | None = None, alpha: float = 0.05):
    """Critical-difference diagram (Demšar 2006) of a table's rows on ``metric``."""
    metric = metric or rt.table.metrics[0]
    res = table_ranking(rt, metric, alpha)
    k = len(res.names)
    order = res.order()
    ranks = res.mean_ranks
    label = rt.table.metric_labels.get(metric, metric)
    if res.p is not None:
        stat = (f"Friedman chi2 = {res.statistic:.2f}, p = {res.p:.3g}; Nemenyi CD = "
                f"{res.cd:.2f} at alpha = {alpha} over {res.n_blocks} seeds")
    else:
        stat = f"no test: {res.reason} ({res.n_blocks} seed(s)); mean ranks only"
    half = math.ceil(k / 2)
    fig = _new_figure(7.5, 1.6 + 0.3 * half + 0.6,
                      f"Critical difference ({label}): {rt.table.paper} "
                      f"{rt.table.paper_table} [{rt.table.name}]", rt.data_info,
                      extra=f"mode {rt.mode or 'n/a'}")
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(-0.6, k + 1.6)
    ax.set_ylim(-(half + 0.8), 1.8)
    ax.set_axis_off()
    # the rank scale, drawn by hand: rank 1 (best) on the left
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.12], color="black", lw=1)
        ax.text(r, 0.2, str(r), ha="center", va="bottom", fontsize=8)
    ax.text((k + 1) / 2, 0.62, f"mean rank over seeds ({label}; 1 = best)", ha="center",
            va="bottom", fontsize=8, gid="cd-axis-label")
    # the better half hangs to the left, the worse to the right
    for pos, idx in enumerate(order):
        rank = float(ranks[idx])
        left = pos < half
        level = -(pos + 1) * 0.7 if left else -(k - pos) * 0.7
        x_text = 0.8 if left else k + 0.2
        ax.plot([rank, rank, x_text], [0, level, level], color="black", lw=0.8)
        ax.text(x_text, level, f"{res.names[idx]} ({rank:.2f}) " if left else
                f" ({rank:.2f}) {res.names[idx]}", ha="right" if left else "left",
                va="center", fontsize=8)
    if res.cd is not None:
        ax.plot([1, 1 + res.cd], [1.35, 1.35], color="black", lw=2)
        for x in (1, 1 + res.cd):
            ax.plot([x, x], [1.28, 1.42], color="black", lw=1)
        ax.text(1 + res.cd / 2, 1.47, f"CD = {res.cd:.2f}", ha="center", va="bottom",
                fontsize=8)
        for g, (a, b) in enumerate(res.groups()):
            lo, hi = float(ranks[order[a]]), float(ranks[order[b]])
            y = -0.2 - 0.15 * g
            ax.plot([lo - 0.05, hi + 0.05], [y, y], color="#333333", lw=3,
                    solid_capstyle="round")
    ax.text(0.5, 0.0, stat, transform=ax.transAxes, ha="center", va="top", fontsize=7,
            gid="cd-statistics")
    return fig


def table_figure(kind: str, rt, metric: str | None = None):
    """The ``curves``, ``dist`` or ``cd`` figure of a built table; returns
    ``(figure, file stem)``."""
    if rt.table.source != "records":
        raise ValueError(f"{rt.table.name} is computed from the data; the {kind} figure "
                         "needs a table of run results")
    if kind == "curves":
        return curves_figure(rt), f"{rt.table.name}-curves"
    if kind == "dist":
        return distribution_figure(rt, [metric] if metric else None), f"{rt.table.name}-dist"
    if kind == "cd":
        metric = metric or rt.table.metrics[0]
        return cd_figure(rt, metric), f"{rt.table.name}-cd-{metric}"
    raise ValueError(f"unknown table figure {kind!r}; choose from curves, dist, cd")


# ---------------------------------------------------------------------------
# fitting a model for the t-SNE figure

def fit_representations(dataset, spec, *, random_state: int = 1, max_epochs: int | None = None,
                        tiny: bool = False, max_train: int | None = None):
    """Fit a multi-task estimator spec on train (valid for early stopping)
    and return its unimodal representations of the test clips.

    Parameters
    ----------
    dataset : MultimodalDataset
    spec : EstimatorSpec
        A multi-task model (its estimator has ``get_representations``).
    random_state : int, default=1
    max_epochs : int, optional
        Cap on the spec's epochs (quick figures).
    tiny : bool, default=False
        Use the class's tiny sizes (tests).
    max_train : int, optional
        Train on a seeded subset of at most this many clips.

    Returns
    -------
    (dict of str to ndarray, ndarray)
        The representations per modality and the test clips' M labels.
    """
    cls = spec.estimator_class()
    extra: dict[str, Any] = dict(getattr(cls, "_tiny_params", {})) if tiny else {}
    defaults = cls().get_params(deep=False)
    if max_epochs is not None and "max_epochs" in defaults:
        current = extra.get("max_epochs", spec.overrides(dataset.kind).get(
            "max_epochs", defaults["max_epochs"]))
        # the reference configuration has no cap (None)
        extra["max_epochs"] = (int(max_epochs) if current is None
                               else min(int(current), int(max_epochs)))
    if "random_state" in defaults:
        extra["random_state"] = random_state
    est = spec.build(dataset.kind, extra)
    if not hasattr(est, "get_representations"):
        raise ValueError(f"{spec.name} ({type(est).__name__}) has no unimodal representations; "
                         "the t-SNE figure needs a multi-task model such as mlf_dnn")
    if max_train is not None:
        dataset = dataset.subsample(max_train, max_train)
    labels = [lab for lab in ("M", "T", "A", "V") if lab in dataset.available_labels]
    est.fit(dataset.X("train"), dataset.y("train", labels),
            X_valid=dataset.X("valid"), y_valid=dataset.y("valid", labels))
    return est.get_representations(dataset.X("test")), dataset.y("test", "M")


def tsne_payload(embeddings: Mapping[str, np.ndarray], labels, data_info: Mapping,
                 model: str, seed: int) -> dict:
    """A JSON-able record of a t-SNE figure's data (the report redraws it)."""
    return {
        "model": model, "seed": int(seed), "label": "M",
        "labels": [float(v) for v in np.asarray(labels).reshape(-1)],
        "embeddings": {m: np.asarray(e, dtype=float).round(5).tolist()
                       for m, e in embeddings.items()},
        "data": {k: data_info.get(k) for k in
                 ("spec", "slug", "kind", "fingerprint", "description", "synthetic")},
    }


class StepProgress:
    """One line per finished step, with elapsed time and an ETA (stderr)."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = max(int(total), 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def step(self, label: str) -> None:
        """Count one finished step called ``label``."""
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * max(self.total - self.done, 0)
        print(f"[{self.done}/{self.total} {100 * self.done / self.total:3.0f}% "
              f"elapsed {_fmt_time(elapsed)} ETA {_fmt_time(eta)}] {label}",
              file=self.stream, flush=True)


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"
