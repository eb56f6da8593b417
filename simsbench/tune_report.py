"""What a study found and how it reports it: the trial ranking (validation
scores only), :class:`TuneResult`, the Markdown report with its
selection-on-test rows, the trial table and the manifest.

Ranking follows ``RandomizedSearchCV.cv_results_``: rank 1 is best, ties share
the lowest rank, the first best configuration wins, a failed one ranks last.
Only :func:`optimism` reads test scores, after the selection.  Re-exported by
:mod:`simsbench.tune`.  Imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simsbench._version import __version__
from simsbench.specs import EstimatorSpec, TaskSpec, canonical

__all__ = [
    "TuneResult",
    "best_trial",
    "manifest_json",
    "optimism",
    "rank_trials",
    "report",
    "score_matrix",
    "trials_csv",
]


def rank_trials(scores: np.ndarray, greater_is_better: bool) -> dict[str, np.ndarray]:
    """``cv_results_``-style mean, std and rank of a ``(n_trials, n_seeds)`` array.

    A trial with any non-finite score (a failed seed, a NaN correlation) has a
    NaN mean and ranks last, as ``error_score=np.nan`` does in scikit-learn's
    searches; ties share the lowest rank.
    """
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    finite = np.all(np.isfinite(scores), axis=1) if scores.size else np.zeros(len(scores), bool)
    mean = np.full(len(scores), np.nan)
    std = np.full(len(scores), np.nan)
    if finite.any():
        mean[finite] = scores[finite].mean(axis=1)
        std[finite] = scores[finite].std(axis=1)
    key = np.where(finite, -mean if greater_is_better else mean, np.inf)
    rank = rankdata(key, method="min").astype(int)
    return {"mean": mean, "std": std, "rank": rank}


def best_trial(ranked: Mapping[str, np.ndarray]) -> int | None:
    """The first trial of rank 1 in :func:`rank_trials` output; ``None`` when all failed."""
    if not np.isfinite(ranked["mean"]).any():
        return None
    return int(np.argmin(ranked["rank"]))  # the first trial of rank 1


def score_matrix(records: Sequence[Sequence[dict | None]], field_name: str,
                  metric: str) -> np.ndarray:
    """``records[trial][seed][field_name][metric]``; NaN where absent or not ok."""
    out = np.full((len(records), len(records[0]) if records else 0), np.nan)
    for i, row in enumerate(records):
        for j, rec in enumerate(row):
            if rec is None or rec.get("status") != "ok":
                continue
            value = (rec.get(field_name) or {}).get(metric)
            if value is not None:
                out[i, j] = float(value)
    return out


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    configurations : list of dict
        The sampled overrides, in trial order.
    records : list of list of dict
        ``records[trial][seed]``: the run records.
    valid : ndarray of shape (n_trials, n_seeds)
        The selection metric on the validation split.
    ranked : dict
        ``mean``, ``std`` and ``rank`` of ``valid`` per trial.
    best : int
        The selected trial.
    spec : EstimatorSpec
        The winner as an estimator spec (also written to ``spec_path``).
    metrics : tuple of str
        The task's metrics, in its order.
    """

    base: EstimatorSpec
    task: TaskSpec
    data: str
    data_info: dict
    seeds: tuple[int, ...]
    metric: str
    greater_is_better: bool
    random_state: int
    mode: str
    configurations: list[dict]
    records: list[list[dict]]
    valid: np.ndarray
    ranked: dict
    best: int
    spec: EstimatorSpec
    metrics: tuple[str, ...] = ()
    spec_path: Path | None = None
    report_paths: list[Path] = field(default_factory=list)
    computed: int = 0
    cached: int = 0
    report: str = ""


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _param_text(params: Mapping) -> str:
    return ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}"
                     for k, v in params.items())


def _test_score(res: TuneResult, trial: int, metric: str, seed_col: int | None = None) -> float:
    """Test ``metric`` of ``trial``: one seed's, or the mean (NaN if any seed lacks it)."""
    row = score_matrix(res.records[trial:trial + 1], "scores", metric)[0]
    if seed_col is not None:
        return float(row[seed_col])
    return float(row.mean()) if np.all(np.isfinite(row)) else float("nan")


def optimism(res: TuneResult) -> list[dict[str, Any]]:
    """The selection-on-test rows of the report, computed *after* selection.

    For the same trials: the test scores of the configuration chosen on the
    validation split (this study's choice), of the one a selection on the
    mean test score would choose (the ch-sims-v2 repository's protocol), and
    of the one a selection on the first seed's test score would choose
    (MMSA's tune mode, one seed per configuration).  Only this function reads
    test scores.
    """
    metric, greater = res.metric, res.greater_is_better
    test = score_matrix(res.records, "scores", metric)
    rows: list[dict[str, Any]] = []

    def add(label: str, chosen_by: str, trial: int | None, seed_col: int | None = None):
        vals: dict[str, float] = {}
        if trial is not None:
            for m in res.metrics:
                vals[m] = _test_score(res, trial, m, seed_col)
        rows.append({"selection": label, "chosen_by": chosen_by, "trial": trial,
                     "test": vals})

    add("on validation (simsbench)", f"mean validation {metric}, {len(res.seeds)} seed(s)",
        res.best)
    by_test = best_trial(rank_trials(test, greater))
    add("on test, mean of seeds (ch-sims-v2 repo)",
        f"mean test {metric}, {len(res.seeds)} seed(s)", by_test)
    by_first = best_trial(rank_trials(test[:, :1], greater))
    add("on test, first seed only (MMSA)", f"test {metric}, seed {res.seeds[0]}", by_first,
        seed_col=0)
    return rows


def report(res: TuneResult) -> str:
    """The study's Markdown report: the search, the top trials, the winner and
    the selection-on-test (optimism) rows."""
    info = res.data_info
    order = np.argsort(res.ranked["rank"], kind="stable")
    label = res.metric.upper() if res.metric == "mae" else res.metric
    lines = [
        f"# Tuning {res.base.label} ({res.base.name}) on {res.task.name}",
        "",
        f"Data: {info.get('description', res.data)}",
        "",
        f"{len(res.configurations)} random configurations (scikit-learn ParameterSampler, "
        f"random_state={res.random_state}) from the [search] table of "
        f"{res.base.path or res.base.name}; each trained with seed(s) "
        f"{', '.join(map(str, res.seeds))} (mode {res.mode}) and scored on the "
        f"**validation** split; selection: {'highest' if res.greater_is_better else 'lowest'} "
        f"mean validation {label}.  Runs: {res.computed} computed, {res.cached} cached.",
        "",
        f"| rank | trial | valid {label} (mean ± std) | parameters |",
        "|---:|---:|---|---|",
    ]
    for i in order[:10]:
        mean, std = res.ranked["mean"][i], res.ranked["std"][i]
        score = f"{_fmt(mean)} ± {_fmt(std)}" if np.isfinite(mean) else "failed"
        lines.append(f"| {res.ranked['rank'][i]} | {i} | {score} | "
                     f"{_param_text(res.configurations[i])} |")
    if len(order) > 10:
        lines.append(f"| | | | ... {len(order) - 10} more in the trial table (.csv) |")
    lines += ["", f"Selected: trial {res.best}, written as spec {res.spec.name!r}"
              + (f" ({res.spec_path})" if res.spec_path else "") + ".", ""]
    rows = optimism(res)
    metrics = res.metrics
    lines += [
        "## Selection on test, measured (read after the selection)",
        "",
        "Test scores of the configurations that each selection rule picks from these "
        "same trials.  The reference frameworks select on test; the difference to the "
        "validation choice is the optimism their tuned numbers carry.  The honest "
        "estimate of the tuned model is its table row on the paper seeds.",
        "",
        "| selection | chosen by | trial | " + " | ".join(f"test {m}" for m in metrics) + " |",
        "|---|---|---:|" + "---:|" * len(metrics),
    ]
    for row in rows:
        cells = " | ".join(_fmt(row["test"].get(m)) for m in metrics)
        trial = "n/a" if row["trial"] is None else str(row["trial"])
        lines.append(f"| {row['selection']} | {row['chosen_by']} | {trial} | {cells} |")
    base = rows[0]["test"]
    for row in rows[1:]:
        deltas = " | ".join(
            _fmt(row["test"].get(m, float("nan")) - base.get(m, float("nan")))
            for m in metrics)
        lines.append(f"| Δ {row['selection']} − on validation | | | {deltas} |")
    lines.append("")
    if any(r.get("test_labels") == "missing" for row in res.records for r in row):
        lines.append("The test split has no labels: the test rows are n/a.")
    else:
        for row in rows[1:]:
            ours, theirs = base.get(res.metric), row["test"].get(res.metric)
            if ours is None or theirs is None:
                continue
            gain = (theirs - ours) if res.greater_is_better else (ours - theirs)
            lines.append(
                f"* Optimism of the selection {row['selection']}: its test {label} "
                f"{_fmt(theirs)} looks better than the validation choice's {_fmt(ours)} by "
                f"{_fmt(gain)} on the same trials.")
    return "\n".join(lines) + "\n"


def trials_csv(res: TuneResult) -> str:
    """One row per trial, ``cv_results_``-style: sampled parameters, per-seed
    and mean validation scores, rank, then (for the report) mean test scores."""
    import csv
    import io

    metric = res.metric
    names = list(dict.fromkeys(k for c in res.configurations for k in c))
    metrics = res.metrics
    head = (["trial", "rank_valid_" + metric, "mean_valid_" + metric, "std_valid_" + metric]
            + [f"seed{s}_valid_{metric}" for s in res.seeds]
            + [f"param_{n}" for n in names]
            + [f"mean_test_{m}" for m in metrics] + ["status", "keys"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for i, config in enumerate(res.configurations):
        tests = [_test_score(res, i, m) for m in metrics]
        statuses = sorted({r.get("status", "?") for r in res.records[i]})
        w.writerow(
            [i, res.ranked["rank"][i], res.ranked["mean"][i], res.ranked["std"][i]]
            + list(res.valid[i])
            + [json.dumps(canonical(config.get(n))) for n in names]
            + tests + ["+".join(statuses), " ".join(r.get("key", "") for r in res.records[i])]
        )
    return buf.getvalue()


def manifest_json(res: TuneResult) -> str:
    """The study's machine-readable manifest (JSON text)."""
    doc = {
        "estimator": res.base.name,
        "spec_file": res.base.path,
        "search": canonical(res.base.search),
        "task": res.task.name,
        "data": res.data,
        "data_fingerprint": res.data_info.get("fingerprint"),
        "seeds": list(res.seeds),
        "metric": res.metric,
        "greater_is_better": res.greater_is_better,
        "random_state": res.random_state,
        "mode": res.mode,
        "best_trial": res.best,
        "tuned_spec": str(res.spec_path) if res.spec_path else None,
        "trials": [
            {"trial": i, "params": canonical(c),
             "keys": [r.get("key") for r in res.records[i]],
             "rank": int(res.ranked["rank"][i]),
             "mean_valid": (float(res.ranked["mean"][i])
                            if np.isfinite(res.ranked["mean"][i]) else None)}
            for i, c in enumerate(res.configurations)
        ],
        "simsbench": __version__,
    }
    return json.dumps(doc, indent=1) + "\n"
