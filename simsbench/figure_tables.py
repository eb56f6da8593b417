"""Figures of a table's run records: learning curves, score distributions over
seeds and the critical-difference diagram (Friedman test and Nemenyi critical
difference, :func:`simsbench.stats.friedman_nemenyi`).

Re-exported by :mod:`simsbench.figures`.  Imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from simsbench.figure_canvas import new_figure
from simsbench.stats_ranking import RankingResult, friedman_nemenyi

__all__ = ["cd_figure", "curves_figure", "distribution_figure", "table_figure", "table_ranking"]


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
    fig = new_figure(3.0 * ncols + 0.4, 2.4 * nrows + 0.9,
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
    fig = new_figure(3.4 * ncols + 1.2, (0.28 * len(rows) + 1.1) * nrows + 0.9,
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
    fig = new_figure(7.5, 1.6 + 0.3 * half + 0.6,
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
