"""Hyperparameter tuning: random search over a spec's ``[search]`` ranges,
selected on the validation split.

Both papers tuned their models: the CH-SIMS paper by grid search, the
CH-SIMS v2 paper and its framework by 50 random configurations drawn from
per-model ranges (MMSA ``src/MMSA/config/config_tune.json``; ch-sims-v2
``config/config_tune.py``).  The reference scores every configuration on the
**test** split (MMSA ``src/MMSA/run.py``, tune mode), so its tuned numbers are
optimistic by construction.  Here:

* the configurations are drawn by scikit-learn's
  :class:`~sklearn.model_selection.ParameterSampler` with a fixed
  ``random_state`` from the ``[search]`` table of ``estimators/<name>.toml``
  (lists are uniform choices, as in the reference; ``{dist = ...}`` tables
  are :mod:`scipy.stats` distributions; see :func:`simsbench.specs.parse_search`);
* every (configuration, tuning seed) pair is an ordinary run of
  :func:`simsbench.runner.run_grid`: its cache key comes from its parameters,
  its record is written as soon as it finishes, and an interrupted study
  resumes without recomputing a finished trial;
* a configuration's score is its validation score averaged over the tuning
  seeds (the reference's 1111, 1112, 1113): the one validation fold of
  :class:`~sklearn.model_selection.PredefinedSplit` semantics is the data's
  own ``valid`` split, the test split is never a fold.  Ranking follows
  ``RandomizedSearchCV.cv_results_`` (rank 1 is best, ties share the lowest
  rank, the first best configuration wins, a failed one ranks last);
* the selection reads validation scores only.  The test scores of the same
  trials are read afterwards, for one labelled purpose: measuring how much a
  selection on test (the reference's protocol) inflates the reported score.

The winner is written as an estimator spec (a TOML file) that works as a row
of any table with ``--specs``.  The search space and sampling are in
:mod:`simsbench.tune_space`, the ranking and the reports in
:mod:`simsbench.tune_report`, the spec writing in :mod:`simsbench.tune_spec`;
this module runs the study and re-exports their names.  Nothing here imports
torch.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from simsbench.results import atomic_write_text
from simsbench.specs import EstimatorSpec, TaskSpec
from simsbench.tune_report import (
    TuneResult,
    best_trial,
    manifest_json,
    optimism,
    rank_trials,
    report,
    score_matrix,
    trials_csv,
)
from simsbench.tune_space import TuneError, check_names, sample_configurations, search_space
from simsbench.tune_spec import estimator_spec_toml, spec_header, winner_spec

__all__ = [
    "DEFAULT_METRIC",
    "DEFAULT_SEEDS",
    "DEFAULT_TRIALS",
    "default_task",
    "TUNE_TASK_SUFFIX",
    "TuneError",
    "TuneResult",
    "estimator_spec_toml",
    "optimism",
    "rank_trials",
    "report",
    "sample_configurations",
    "search_space",
    "trials_csv",
    "tune",
]

DEFAULT_TRIALS = 50
"""Configurations per study (MMSA's ``tune_times``, the ch-sims-v2 repo's 50)."""
DEFAULT_SEEDS = (1111, 1112, 1113)
"""Tuning seeds (ch-sims-v2 ``run.py`` tune mode); kept apart from the paper
seeds the tables use, so a tuned row is scored on seeds it was not chosen on."""
DEFAULT_METRIC = "mae"
"""Selection metric: MMSA's ``KeyEval = "Loss"`` (the L1 loss, i.e. MAE)."""


def default_task(kind: str) -> str:
    """The task a study tunes on by default: the multimodal task of the
    data's kind (``sims_multimodal`` or ``simsv2_multimodal``)."""
    return "simsv2_multimodal" if kind == "simsv2" else "sims_multimodal"


TUNE_TASK_SUFFIX = "@tune"
"""Trials run on ``<task>@tune``: a task of their own, so they never turn into
rows of a table, and their run seeds differ from the table's."""


def tune(
    spec: EstimatorSpec,
    task: TaskSpec,
    data: str | None = None,
    *,
    n_trials: int = DEFAULT_TRIALS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    metric: str = DEFAULT_METRIC,
    random_state: int = 0,
    results_dir: str | os.PathLike = "results",
    name: str | None = None,
    out: str | os.PathLike | None = None,
    jobs: int = 1,
    threads: int = 1,
    device: str = "cpu",
    precision: str = "float32",
    backend: str = "loky",
    scheduler: str | None = None,
    force: bool = False,
    quick: bool = False,
    tiny: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
) -> TuneResult:
    """Random search for ``spec`` on ``task``, selected on the validation split.

    Parameters
    ----------
    spec : EstimatorSpec
        The estimator spec to tune; its ``[search]`` table gives the ranges and
        its other overrides stay fixed.
    task : TaskSpec
        The task whose protocol trains and scores every trial.
    data : str, default=None
        Data spec (default: the task's).
    n_trials : int, default=50
    seeds : sequence of int, default=(1111, 1112, 1113)
        Tuning seeds; a configuration's score is its mean over them
        (``quick`` keeps the first).
    metric : str, default="mae"
        Selection metric, one of the task's metrics, on the validation split.
    random_state : int, default=0
        Seed of the :class:`~sklearn.model_selection.ParameterSampler`.
    results_dir : path, default="results"
        Run records go to ``runs/`` as for ``simsbench run``; the tuned spec to
        ``tuned/<data>/estimators/<name>.toml`` and the study's report, trial
        table and manifest to ``tuned/<data>/studies/<name>.*``.
    name : str, default=None
        Name of the tuned spec (default ``<spec>_tuned``).
    out : path, default=None
        Write the tuned spec here instead.
    jobs, threads, backend, scheduler, force, progress, stream
        As :func:`simsbench.runner.run_grid`.
    device, precision : str, default="cpu", "float32"
        Torch device and arithmetic of every trial (as
        :func:`simsbench.suite.run_tables`).
    quick, tiny : bool, default=False
        Smoke-run sizes, as ``simsbench run --quick``.

    Returns
    -------
    TuneResult

    Raises
    ------
    TuneError
        When no trial finished (nothing to select).
    """
    from simsbench.datasets import load_dataset
    from simsbench.metrics import GREATER_IS_BETTER, metrics_for
    from simsbench.runner import RunRequest, check_device, plan_runs, run_grid

    check_device(device, precision)
    if out is not None and Path(out).suffix != ".toml":
        raise TuneError(f"--out: a .toml file name expected, got {out}")
    data = data or task.data
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise TuneError("--seeds: give at least one tuning seed")
    if quick:
        seeds = seeds[:1]
    kind = load_dataset(data).kind
    scored = task.metrics or metrics_for(kind)
    if metric not in scored:
        raise TuneError(f"--metric: {metric!r} is not scored by task {task.name!r} "
                        f"(it scores {', '.join(scored)})")
    check_names(spec)
    configs = sample_configurations(spec, n_trials, random_state)
    tune_task = dataclasses.replace(
        task, name=f"{task.name}{TUNE_TASK_SUFFIX}",
        description=f"tuning trials of: {task.description}")
    width = len(str(len(configs) - 1))
    requests = []
    for i, params in enumerate(configs):
        per_kind = {k: dict(v) for k, v in spec.per_kind.items()}
        per_kind[kind] = {**per_kind.get(kind, {}), **params}
        trial = dataclasses.replace(
            spec, name=f"{spec.name}@trial{i:0{width}d}", label=f"{spec.label} trial {i}",
            per_kind=per_kind, search={})
        requests += [RunRequest(trial, tune_task, data, s, quick=quick, tiny=tiny,
                                device=device, precision=precision)
                     for s in seeds]
    if progress:
        print(f"simsbench: tune {spec.name} on {task.name} ({data}): {len(configs)} "
              f"configurations x {len(seeds)} seed(s) = {len(requests)} runs",
              file=stream if stream is not None else sys.stderr, flush=True)
    grid = run_grid(requests, results_dir, jobs=jobs, threads=threads, backend=backend,
                    scheduler=scheduler, force=force, progress=progress, stream=stream)
    by_key = {r["key"]: r for r in grid.records}
    keys = [p.key for p in plan_runs(requests, grid.data_info, threads)]
    flat = [by_key.get(k) for k in keys]
    records = [flat[i * len(seeds):(i + 1) * len(seeds)] for i in range(len(configs))]

    # Selection: validation scores only.
    greater = GREATER_IS_BETTER[metric]
    valid = score_matrix(records, "valid_scores", metric)
    ranked = rank_trials(valid, greater)
    best = best_trial(ranked)
    if best is None:
        reasons = sorted({r.get("reason") or r.get("status", "?")
                          for row in records for r in row if r is not None
                          and r.get("status") != "ok"}) or ["no validation scores"]
        raise TuneError(f"no trial of {spec.name} finished with a validation {metric} "
                        f"({'; '.join(reasons)[:300]}); see {Path(results_dir) / 'logs'}")

    tuned_name = name or f"{spec.name}_tuned"
    winner = winner_spec(spec, kind, configs[best], tuned_name, task.name)
    result = TuneResult(
        base=spec, task=task, data=data, data_info=dict(grid.data_info), seeds=seeds,
        metric=metric, greater_is_better=greater, random_state=random_state,
        mode=requests[0].mode, configurations=configs,
        records=[[r if r is not None else {"status": "missing"} for r in row]
                 for row in records],
        valid=valid, ranked=ranked, best=best, spec=winner, metrics=tuple(scored),
        computed=len(grid.computed), cached=len(grid.cached),
    )
    base_dir = Path(results_dir) / "tuned" / grid.data_info["slug"]
    spec_path = Path(out) if out else base_dir / "estimators" / f"{tuned_name}.toml"
    result.spec = dataclasses.replace(winner, name=spec_path.stem)
    atomic_write_text(spec_path, estimator_spec_toml(result.spec, spec_header(result)))
    result.spec_path = spec_path
    result.report = report(result)
    studies = base_dir / "studies"
    result.report_paths = [
        atomic_write_text(studies / f"{spec_path.stem}.md", result.report),
        atomic_write_text(studies / f"{spec_path.stem}.csv", trials_csv(result)),
        atomic_write_text(studies / f"{spec_path.stem}.json", manifest_json(result)),
    ]
    return result
