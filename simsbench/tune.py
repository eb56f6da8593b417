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
of any table with ``--specs``.  Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from simsbench.results import atomic_write_text
from simsbench.specs import EstimatorSpec, SpecError, TaskSpec, canonical

__all__ = [
    "DEFAULT_METRIC",
    "DEFAULT_SEEDS",
    "DEFAULT_TRIALS",
    "TUNE_TASK_SUFFIX",
    "TuneError",
    "TuneResult",
    "estimator_spec_toml",
    "rank_trials",
    "sample_configurations",
    "search_space",
    "tune",
]

DEFAULT_TRIALS = 50
"""Configurations per study (MMSA's ``tune_times``, the ch-sims-v2 repo's 50)."""
DEFAULT_SEEDS = (1111, 1112, 1113)
"""Tuning seeds (ch-sims-v2 ``run.py`` tune mode); kept apart from the paper
seeds the tables use, so a tuned row is scored on seeds it was not chosen on."""
DEFAULT_METRIC = "mae"
"""Selection metric: MMSA's ``KeyEval = "Loss"`` (the L1 loss, i.e. MAE)."""
TUNE_TASK_SUFFIX = "@tune"
"""Trials run on ``<task>@tune``: a task of their own, so they never turn into
rows of a table, and their run seeds differ from the table's."""

_RANGE_DISTS = {"uniform", "loguniform", "randint"}


class TuneError(ValueError):
    """A study cannot start or cannot select (one line, for the CLI)."""


# ---------------------------------------------------------------------------
# the search space

def _distribution(table: Mapping, where: str):
    """A frozen :mod:`scipy.stats` distribution from ``{dist = NAME, ...}``."""
    import scipy.stats

    args = {k: v for k, v in table.items() if k != "dist"}
    name = table["dist"]
    maker = getattr(scipy.stats, name, None)
    if maker is None or not hasattr(maker, "rvs"):
        raise SpecError(f"{where}: unknown distribution {name!r} (a scipy.stats name, "
                        "e.g. uniform, loguniform, randint)")
    if name in _RANGE_DISTS and len({"low", "high"} & set(args)) == 1:
        raise SpecError(f"{where}: {name} needs both low and high")
    if name in _RANGE_DISTS and {"low", "high"} <= set(args):
        low, high = args.pop("low"), args.pop("high")
        if not (isinstance(low, int | float) and isinstance(high, int | float)
                and low < high):
            raise SpecError(f"{where}: {name} needs numbers low < high")
        if name == "uniform":
            args.update(loc=low, scale=high - low)
        elif name == "loguniform":
            if low <= 0:
                raise SpecError(f"{where}: loguniform needs low > 0")
            args.update(a=low, b=high)
        else:
            args.update(low=low, high=high)
    try:
        dist = maker(**args)
        dist.rvs(random_state=0)
    except Exception as exc:  # noqa: BLE001 - scipy's message says what is wrong
        raise SpecError(f"{where}: {name}({', '.join(f'{k}={v}' for k, v in args.items())}) "
                        f"is not a valid distribution: {exc}") from None
    return dist


def search_space(spec: EstimatorSpec) -> dict[str, Any]:
    """The ``param_distributions`` of :class:`~sklearn.model_selection.ParameterSampler`.

    A list stays a list (uniform choice), a ``{dist = ...}`` table becomes a
    frozen scipy distribution, an ``{elements = [...]}`` parameter becomes one
    entry per element (``"loss_weights[0]"``...) and a joint ``"a+b"`` key
    stays one entry whose candidates are tuples; :func:`sample_configurations`
    puts them back together.

    Raises
    ------
    SpecError
        When the spec has no ``[search]`` table or a distribution is invalid.
    """
    where = spec.path or spec.name
    if not spec.search:
        raise SpecError(f"{where}: no [search] table, so there is nothing to tune; add the "
                        "tuning ranges (see estimators/lf_dnn.toml)")
    out: dict[str, Any] = {}
    for key, value in spec.search.items():
        if isinstance(value, Mapping) and "elements" in value:
            for i, elem in enumerate(value["elements"]):
                sub = f"{key}[{i}]"
                out[sub] = (_distribution(elem, f"{where}: [search] {sub}")
                            if isinstance(elem, Mapping) else list(elem))
        elif isinstance(value, Mapping):
            out[key] = _distribution(value, f"{where}: [search] {key}")
        else:
            out[key] = list(value)
    return out


def _plain(value):
    """numpy scalars to Python ones, lists to tuples (the estimators' form)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value


def _assemble(sample: Mapping[str, Any], spec: EstimatorSpec) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in spec.search.items():
        if isinstance(value, Mapping) and "elements" in value:
            params[key] = tuple(_plain(sample[f"{key}[{i}]"])
                                for i in range(len(value["elements"])))
        elif "+" in key:
            for name, v in zip(key.split("+"), sample[key], strict=True):
                params[name] = _plain(v)
        else:
            params[key] = _plain(sample[key])
    return params


def _check_names(spec: EstimatorSpec) -> None:
    cls = spec.estimator_class()
    valid = cls().get_params(deep=False)
    for key in spec.search:
        for name in key.split("+"):
            if name not in valid:
                raise SpecError(
                    f"{spec.path or spec.name}: [search] unknown parameter {name!r} for "
                    f"{cls.__name__}; valid: {', '.join(sorted(valid))}"
                )


def sample_configurations(
    spec: EstimatorSpec, n_trials: int, random_state: int = 0
) -> list[dict[str, Any]]:
    """Draw ``n_trials`` configurations from ``spec``'s ``[search]`` table.

    :class:`~sklearn.model_selection.ParameterSampler` does the drawing: when
    every range is a list it samples the grid without replacement (so no
    configuration repeats, and a grid smaller than ``n_trials`` is taken
    whole); otherwise each parameter is drawn independently.  The same
    ``random_state`` always gives the same configurations, and a longer study
    starts with the configurations of a shorter one.

    Returns
    -------
    list of dict
        Parameter overrides, one dict per configuration, in draw order.
    """
    from sklearn.model_selection import ParameterSampler

    if n_trials < 1:
        raise TuneError(f"--trials must be >= 1, got {n_trials}")
    space = search_space(spec)
    with warnings.catch_warnings():
        # A grid smaller than n_iter is simply taken whole.
        warnings.simplefilter("ignore", UserWarning)
        samples = list(ParameterSampler(space, n_iter=n_trials, random_state=random_state))
    return [_assemble(s, spec) for s in samples]


# ---------------------------------------------------------------------------
# selection (validation scores only) and ranking

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


def _best(ranked: Mapping[str, np.ndarray]) -> int | None:
    if not np.isfinite(ranked["mean"]).any():
        return None
    return int(np.argmin(ranked["rank"]))  # the first trial of rank 1


def _score_matrix(records: Sequence[Sequence[dict | None]], field_name: str,
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


# ---------------------------------------------------------------------------
# the study

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


def _tables_for_task(task: str) -> list[str]:
    from simsbench.tables import TABLES

    return [t.name for t in TABLES.values() if t.user_task == task]


def _winner_spec(base: EstimatorSpec, kind: str, params: Mapping, name: str,
                 task: str) -> EstimatorSpec:
    per_kind = {k: dict(v) for k, v in base.per_kind.items()}
    per_kind[kind] = {**per_kind.get(kind, {}), **params}
    tables = tuple(dict.fromkeys((*base.tables, *_tables_for_task(task))))
    return dataclasses.replace(
        base, name=name, label=f"{base.label} (tuned)", per_kind=per_kind, tables=tables,
        search={}, path=None,
        description=(f"{base.label} with the configuration selected by 'simsbench tune "
                     f"{base.name}' on {kind} data (validation split); other data kinds "
                     "use the base spec's values."),
    )


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
    from simsbench.runner import RunRequest, plan_runs, run_grid

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
    _check_names(spec)
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
        requests += [RunRequest(trial, tune_task, data, s, quick=quick, tiny=tiny)
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
    valid = _score_matrix(records, "valid_scores", metric)
    ranked = rank_trials(valid, greater)
    best = _best(ranked)
    if best is None:
        reasons = sorted({r.get("reason") or r.get("status", "?")
                          for row in records for r in row if r is not None
                          and r.get("status") != "ok"}) or ["no validation scores"]
        raise TuneError(f"no trial of {spec.name} finished with a validation {metric} "
                        f"({'; '.join(reasons)[:300]}); see {Path(results_dir) / 'logs'}")

    tuned_name = name or f"{spec.name}_tuned"
    winner = _winner_spec(spec, kind, configs[best], tuned_name, task.name)
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
    atomic_write_text(spec_path, estimator_spec_toml(result.spec, _spec_header(result)))
    result.spec_path = spec_path
    result.report = report(result)
    studies = base_dir / "studies"
    result.report_paths = [
        atomic_write_text(studies / f"{spec_path.stem}.md", result.report),
        atomic_write_text(studies / f"{spec_path.stem}.csv", trials_csv(result)),
        atomic_write_text(studies / f"{spec_path.stem}.json", _manifest(result)),
    ]
    return result


# ---------------------------------------------------------------------------
# outputs

def _toml_value(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise SpecError(f"cannot write {value!r} to a spec file (not a TOML value)")


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def estimator_spec_toml(spec: EstimatorSpec, header: str = "") -> str:
    """``spec`` as the text of an ``estimators/<name>.toml`` file.

    :func:`simsbench.specs.load_estimator_spec` reads it back to an equal spec
    (``[search]`` included).
    """
    lines = [f"# {ln}" if ln else "#" for ln in header.splitlines()]
    lines += [f"name = {_toml_value(spec.label)}", f"class = {_toml_value(spec.class_name)}"]
    if spec.description:
        lines.append(f"description = {_toml_value(spec.description)}")
    if spec.tables:
        lines.append(f"tables = {_toml_value(list(spec.tables))}")
    sections = [("params", spec.params)] + sorted(spec.per_kind.items())
    for section, params in sections:
        if params:
            lines += ["", f"[{section}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(params.items())]
    if spec.search:
        lines += ["", "[search]"]
        for key, value in spec.search.items():
            if isinstance(value, Mapping) and "elements" in value:
                elems = [
                    "{" + ", ".join(f"{_toml_key(a)} = {_toml_value(b)}" for a, b in e.items())
                    + "}" if isinstance(e, Mapping) else _toml_value(list(e))
                    for e in value["elements"]
                ]
                text = "{elements = [" + ", ".join(elems) + "]}"
            elif isinstance(value, Mapping):
                text = "{" + ", ".join(f"{_toml_key(a)} = {_toml_value(b)}"
                                       for a, b in value.items()) + "}"
            else:
                text = _toml_value(list(value))
            lines.append(f"{_toml_key(key)} = {text}")
    return "\n".join(lines) + "\n"


def _spec_header(res: TuneResult) -> str:
    mean = res.ranked["mean"][res.best]
    std = res.ranked["std"][res.best]
    return (
        f"Written by 'simsbench tune {res.base.name}' (simsbench {_version()}): trial "
        f"{res.best} of {len(res.configurations)}\n"
        f"random configurations (ParameterSampler, random_state={res.random_state}) from "
        f"the [search] table of {res.base.path or res.base.name},\n"
        f"selected on the validation split of {res.data} by the mean {res.metric} over "
        f"seeds {', '.join(map(str, res.seeds))}: {mean:.4f} +- {std:.4f} (mode "
        f"{res.mode}).\n"
        "The test split played no part in the selection.  Use it as a table row with\n"
        f"  simsbench run {(_tables_for_task(res.task.name) or ['table2'])[0]} --data "
        f"{res.data} --specs DIR --estimators {res.base.name},NAME\n"
        "where DIR holds estimators/NAME.toml (this file)."
    )


def _version() -> str:
    from simsbench._version import __version__

    return __version__


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _param_text(params: Mapping) -> str:
    return ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}"
                     for k, v in params.items())


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
    test = _score_matrix(res.records, "scores", metric)
    rows: list[dict[str, Any]] = []

    def add(label: str, chosen_by: str, trial: int | None, seed_col: int | None = None):
        vals: dict[str, float] = {}
        if trial is not None:
            for m in res.metrics:
                mat = _score_matrix(res.records[trial:trial + 1], "scores", m)[0]
                vals[m] = float(mat[seed_col]) if seed_col is not None else (
                    float(mat.mean()) if np.all(np.isfinite(mat)) else float("nan"))
        rows.append({"selection": label, "chosen_by": chosen_by, "trial": trial,
                     "test": vals})

    add("on validation (simsbench)", f"mean validation {metric}, {len(res.seeds)} seed(s)",
        res.best)
    by_test = _best(rank_trials(test, greater))
    add("on test, mean of seeds (ch-sims-v2 repo)",
        f"mean test {metric}, {len(res.seeds)} seed(s)", by_test)
    by_first = _best(rank_trials(test[:, :1], greater))
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
        tests = []
        for m in metrics:
            mat = _score_matrix(res.records[i:i + 1], "scores", m)[0]
            tests.append(float(mat.mean()) if np.all(np.isfinite(mat)) else float("nan"))
        statuses = sorted({r.get("status", "?") for r in res.records[i]})
        w.writerow(
            [i, res.ranked["rank"][i], res.ranked["mean"][i], res.ranked["std"][i]]
            + list(res.valid[i])
            + [json.dumps(canonical(config.get(n))) for n in names]
            + tests + ["+".join(statuses), " ".join(r.get("key", "") for r in res.records[i])]
        )
    return buf.getvalue()


def _manifest(res: TuneResult) -> str:
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
        "simsbench": _version(),
    }
    return json.dumps(doc, indent=1) + "\n"
