"""Run (estimator spec, task, seed) grids with on-disk caching.

Each run is identified by a cache key, the SHA-256 of

* the estimator spec's name (its table row), the estimator's class path and
  its full canonical parameters (the spec's overrides applied to the class
  defaults; ``n_threads``/``verbose`` excluded) -- never a live torch object,
* the task's protocol, protocol parameters and metrics,
* the paper seed and the run seed derived from it,
* the number of threads the run computes with (``threads``),
* the data fingerprint and the simsbench version.

A finished run (status ``ok`` or ``skipped``) is a JSON record under
``<results>/runs/<data>/<key>.json`` written atomically as soon as the run
returns, so an interrupted grid loses nothing and the next invocation
resumes; ``force=True`` recomputes.  A record that is unreadable, malformed,
or not the run its key names is skipped with a
:class:`~simsbench.results.RecordWarning` and recomputed.

Threads.  Results depend on the number of threads a run computes with (torch
and BLAS reductions are split differently: LF-DNN's predictions at 1 and 2
torch threads differ in the last bits), so the thread count is fixed by the
run, not by the machine or by ``jobs``: every run computes with ``threads``
torch intra-op and BLAS/OpenMP threads (default 1), its record says so
(``n_threads``) and its key includes it.  ``jobs`` only says how many runs
execute at once, so the same seed gives bit-identical predictions on CPU
whatever ``jobs`` is.  Runs execute with joblib (``jobs`` workers:
``loky``, ``threading`` or ``multiprocessing``; prefer ``loky`` for torch
models, since threads of one process share torch's global RNG) or on a Dask
cluster (``backend="dask"``, :mod:`simsbench._dask`: one future per run, the
records written by this process as they arrive).

Concurrency.  Several processes may run grids on one results directory: a
run is computed only by the process holding its lock file
``<results>/locks/<key>.lock`` (an OS file lock, via ``filelock``).  A
process skips the runs another one holds, then waits for them and uses
their records; a lock left by a killed process is released by the OS and
taken over.

Estimators see the dataset read-only: a run that writes into ``X`` fails
with an error instead of changing the data of the runs after it (the dataset
is cached per process).  Nothing here imports torch; the estimators do,
inside the workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import re
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from simsbench._version import __version__
from simsbench.estimators._fidelity import apply_variant, variant_of
from simsbench.estimators._fidelity import corrections as corrections_of
from simsbench.results import (
    FINISHED,
    RecordWarning,
    atomic_write_text,
    data_slug,
    new_record,
    read_record,
    record_path,
    versions,
    write_data_record,
    write_record,
)
from simsbench.specs import EstimatorSpec, SpecError, TaskSpec, canonical, spec_hash

__all__ = [
    "EXCLUDED_PARAMS",
    "QUICK_MAX_EPOCHS",
    "QUICK_MAX_TRAIN",
    "GridResult",
    "PlannedRun",
    "Progress",
    "RunRequest",
    "RunnerError",
    "check_backend",
    "derive_seed",
    "execute_run",
    "lock_path",
    "plan_runs",
    "run_grid",
]

QUICK_MAX_EPOCHS = 1
"""Epoch cap of ``--quick`` runs (estimators with a ``max_epochs`` parameter)."""
QUICK_MAX_TRAIN = 400
"""``--quick`` runs train on a seeded subset of at most this many labelled
clips (and as many unlabelled ones); valid and test stay whole.  A smoke run:
its numbers say nothing about the models."""

EXCLUDED_PARAMS = ("n_threads", "verbose")
"""Parameters that stay out of a run's ``params``: ``verbose`` does not change
the result, ``n_threads`` is set by the runner (the key has ``threads``)."""

BACKENDS = ("loky", "threading", "multiprocessing", "dask")
"""The backends ``--backend`` names: joblib's, and Dask (:mod:`simsbench._dask`)."""


class RunnerError(RuntimeError):
    """A grid cannot start (bad backend, unreadable data...)."""


def derive_seed(paper_seed: int, task: str) -> int:
    """The ``random_state`` of a run: a hash of the paper seed and the task.

    Every estimator of one task sees the same seed (as in the papers, where
    all models share the five seeds); it does not depend on run order or on
    a global RNG (benchopt's ``get_seed`` idea).  ``task`` is the task's
    :attr:`~simsbench.specs.TaskSpec.seed_key` (its ``seed_group``, else its
    name), so the tasks a Δ row compares can share their seeds.
    """
    digest = hashlib.sha256(f"simsbench|{int(paper_seed)}|{task}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


@dataclass(frozen=True)
class RunRequest:
    """One cell of a grid: an estimator spec on a task with one paper seed."""

    estimator: EstimatorSpec
    task: TaskSpec
    data: str
    seed: int
    quick: bool = False
    tiny: bool = False
    variant: str = "reference"

    @property
    def mode(self) -> str:
        parts = [p for p, on in (("tiny", self.tiny), ("quick", self.quick)) if on]
        return "+".join(parts) or "full"


@dataclass
class PlannedRun:
    """A request with its cache key (and why it cannot run, if it cannot)."""

    request: RunRequest
    key: str
    class_path: str | None
    params: dict | None
    unavailable: str = ""
    unavailable_status: str = "unavailable"
    run_seed: int = 0
    data_info: dict = field(default_factory=dict)
    variant: str = ""
    n_threads: int = 1
    corrections: list = field(default_factory=list)  # [[name, summary], ...]

    def base_record(self) -> dict[str, Any]:
        req = self.request
        return new_record(
            key=self.key,
            estimator=req.estimator.name,
            estimator_label=req.estimator.label,
            class_path=self.class_path or req.estimator.class_name,
            params=self.params or canonical(req.estimator.overrides(self.data_info.get("kind"))),
            task=req.task.name,
            task_description=req.task.description,
            protocol=req.task.protocol,
            task_key=req.task.canonical(),
            seed=req.seed,
            run_seed=self.run_seed,
            mode=req.mode,
            variant=self.variant or req.variant,
            requested_variant=req.variant,
            corrections=[list(c) for c in self.corrections],
            n_threads=self.n_threads,
            data=dict(self.data_info),
        )


def _extra_params(cls: type, req: RunRequest, run_seed: int, kind: str) -> dict[str, Any]:
    """Parameters the runner sets: tiny sizes, the quick epoch cap, the seed."""
    extra: dict[str, Any] = {}
    if req.tiny:
        extra.update(getattr(cls, "_tiny_params", {}))
    try:
        defaults = cls().get_params(deep=False)
    except Exception:  # noqa: BLE001 - reported when the run is built
        defaults = {}
    if req.quick and "max_epochs" in defaults:
        current = extra.get("max_epochs", req.estimator.overrides(kind).get(
            "max_epochs", defaults["max_epochs"]))
        extra["max_epochs"] = (QUICK_MAX_EPOCHS if current is None
                               else min(int(current), QUICK_MAX_EPOCHS))
    if "random_state" in defaults:
        extra["random_state"] = run_seed
    return extra


def _build(req: RunRequest, kind: str, run_seed: int):
    """The run's estimator and its configuration (:func:`variant_of`).

    The estimator has the request's variant, the runner's seed and sizes,
    and the protocol's switches (an ablation's ``tasks``, ``mixup_*``) set,
    so that its cache key and record show what is trained."""
    cls = req.estimator.estimator_class()
    est = req.estimator.build(kind)
    if req.variant != "reference":
        # The spec's overrides are the reference configuration's; the variant
        # switches corrections on over them.
        apply_variant(est, req.variant)
    # What the spec and the variant make, before the runner's seed and the
    # quick/tiny sizes (a quick run of the reference model is still one).
    variant = variant_of(est)
    extra = _extra_params(cls, req, run_seed, kind)
    if extra:
        est.set_params(**extra)
    try:
        req.task.make_protocol().configure(est)
    except Exception:  # noqa: BLE001 - the protocol's skip() says why at run time
        pass
    return est, variant


def plan_runs(requests: Sequence[RunRequest], data_info: dict,
              threads: int = 1) -> list[PlannedRun]:
    """Compute each request's cache key (imports estimator classes, not data).

    ``threads`` is the number of threads every run computes with; it is part
    of the key (results depend on it).
    """
    out = []
    for req in requests:
        run_seed = derive_seed(req.seed, req.task.seed_key)
        task_key = req.task.canonical()
        base = {
            # the spec's name too: two specs of one class and parameters are
            # two table rows, each with its own record
            "estimator": req.estimator.name,
            "task": task_key,
            "seed": req.seed,
            "run_seed": run_seed,
            "threads": int(threads),
            "data": data_info["fingerprint"],
            "simsbench": __version__,
        }
        if req.variant != "reference":
            # Quick/tiny caps can make two configurations' parameters equal;
            # each configuration's table still gets its own run.
            base["variant"] = req.variant
        if req.quick:
            base["quick_max_train"] = QUICK_MAX_TRAIN
        try:
            est, variant = _build(req, data_info["kind"], run_seed)
        except Exception as exc:  # noqa: BLE001 - ImportError, SpecError...
            # The row says why; the grid goes on.
            status = "error" if isinstance(exc, SpecError) else "unavailable"
            reason = str(exc) if isinstance(exc, SpecError) else _one_line(exc)
            key = spec_hash({**base, "unavailable": req.estimator.class_name,
                             "overrides": req.estimator.overrides(data_info["kind"])})
            out.append(PlannedRun(req, key, None, None, unavailable=reason,
                                  unavailable_status=status, run_seed=run_seed,
                                  data_info=data_info, n_threads=int(threads)))
            continue
        params = {k: v for k, v in est.get_params(deep=False).items()
                  if k not in EXCLUDED_PARAMS}
        cls = type(est)
        class_path = f"{cls.__module__}:{cls.__qualname__}"
        params_c = canonical(params)
        key = spec_hash({**base, "class": class_path, "params": params_c})
        docs = [[c.name, c.summary] for c in corrections_of(est)]
        out.append(PlannedRun(req, key, class_path, params_c, run_seed=run_seed,
                              data_info=data_info, variant=variant, corrections=docs,
                              n_threads=int(threads)))
    return out


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def execute_run(planned: PlannedRun) -> tuple[dict, str]:
    """Run one planned run; returns ``(record, log_text)``.

    Loads the data by its spec (cached per process) and hands it to the
    protocol read-only, builds the estimator, fixes the thread count to
    ``planned.n_threads``, asks the protocol whether to skip, then fits and
    scores.  Exceptions become an ``"error"`` record (KeyboardInterrupt
    propagates).
    """
    from simsbench.datasets import load_dataset

    req = planned.request
    record = planned.base_record()
    log = io.StringIO()
    t_start = time.perf_counter()
    if planned.unavailable:
        record.update(status=planned.unavailable_status, reason=planned.unavailable)
        return record, planned.unavailable + "\n"
    try:
        with _captured(log):
            dataset = load_dataset(req.data)
            if dataset.fingerprint != planned.data_info["fingerprint"]:
                raise RunnerError(
                    f"{req.data} changed while the grid ran (fingerprint differs)"
                )
            if req.quick and not req.tiny:
                dataset = dataset.subsample(QUICK_MAX_TRAIN, QUICK_MAX_TRAIN)
            dataset = read_only(dataset)
            est, _ = _build(req, dataset.kind, planned.run_seed)
            if "n_threads" in est.get_params(deep=False):
                est.set_params(n_threads=planned.n_threads)
            _fix_threads(planned.n_threads)
            protocol = req.task.make_protocol()
            skip, reason = protocol.skip(est, dataset)
            if skip:
                record.update(status="skipped", reason=reason)
                print(f"skipped: {reason}")
            else:
                metrics = req.task.metrics or _default_metrics(dataset.kind)
                info = protocol.evaluate(est, dataset, metrics)
                record.update(status="ok", scores=info.pop("metrics"), **info)
                history = _history(est)
                if history:
                    record["history"] = history
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded, the grid goes on
        record.update(status="error", reason=_one_line(exc))
        log.write(traceback.format_exc())
    record["wall_time"] = time.perf_counter() - t_start
    record["versions"] = versions()
    return record, log.getvalue()


def _history(est) -> dict[str, list[float]]:
    """Per-epoch ``train_loss``/``valid_loss`` of a fitted estimator (the last
    step of a pipeline), for the learning-curve figures; ``{}`` if it has none."""
    final = est.steps[-1][1] if hasattr(est, "steps") else est
    out = {}
    for key, attr in (("train_loss", "train_loss_curve_"), ("valid_loss", "valid_loss_curve_")):
        curve = getattr(final, attr, None)
        if curve is not None:
            out[key] = [float(v) for v in curve]
    return out


@contextlib.contextmanager
def _captured(log: io.StringIO):
    """Send the run's stdout/stderr to ``log`` -- in the main thread only.

    ``sys.stdout`` is process-wide: runs overlapping in threads (the
    threading backend, or grids started from several threads) would each
    restore another's stream and leave it redirected for good, so their
    output goes to the console instead.
    """
    if threading.current_thread() is not threading.main_thread():
        log.write("(output not captured: the run executed in a worker thread)\n")
        yield
        return
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield


def read_only(dataset):
    """``dataset`` with every array a read-only view (no copy).

    The dataset is cached per process and shared by the runs: an estimator
    that writes into ``X`` gets numpy's "assignment destination is
    read-only" error instead of changing the data of every later run.
    """
    import numpy as np

    def ro(value):
        if isinstance(value, np.ndarray):
            value = value.view()
            value.flags.writeable = False
        return value

    splits = {}
    for name, sp in dataset.splits.items():
        fields = {f.name: ro(getattr(sp, f.name)) for f in dataclasses.fields(sp)
                  if f.init}
        fields["labels"] = {k: ro(v) for k, v in sp.labels.items()}
        splits[name] = dataclasses.replace(sp, **fields)
    return dataclasses.replace(dataset, splits=splits)


_SAVED_THREADS: dict[str, Any] = {}


def _fix_threads(n: int) -> None:
    """Compute with ``n`` torch intra-op and BLAS/OpenMP threads from now on.

    Not undone per run (runs of one process may overlap with the threading
    backend, and all use the same ``n``); :func:`_restore_threads` puts the
    settings found before the first run back.
    """
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=int(n))
    _SAVED_THREADS.setdefault("limiter", limiter)
    torch = sys.modules.get("torch")
    if torch is not None:
        _SAVED_THREADS.setdefault("torch", torch.get_num_threads())
        if torch.get_num_threads() != n:
            torch.set_num_threads(int(n))


def _restore_threads() -> None:
    limiter = _SAVED_THREADS.pop("limiter", None)
    if limiter is not None:
        limiter.restore_original_limits()
    n = _SAVED_THREADS.pop("torch", None)
    torch = sys.modules.get("torch")
    if n is not None and torch is not None:
        torch.set_num_threads(n)


def _default_metrics(kind: str) -> tuple[str, ...]:
    from simsbench.metrics import metrics_for

    return metrics_for(kind)


def _execute_payload(planned: PlannedRun):
    return execute_run(planned)


def _lost_run(planned: PlannedRun, exc: BaseException) -> tuple[dict, str]:
    """The record of a run whose worker died (retried by the next invocation)."""
    record = planned.base_record()
    record.update(status="error", reason=f"worker lost: {_one_line(exc)}", wall_time=0.0,
                  versions=versions(deep=False))
    return record, traceback.format_exception_only(type(exc), exc)[-1]


class Progress:
    """A small progress printer: one line per finished run, with an ETA."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 0
        self.t0 = time.perf_counter()

    def update(self, record: dict, note: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        left = self.total - self.done
        eta = elapsed / self.done * left if self.done else 0.0
        status = record.get("status", "?")
        reason = record.get("reason")
        extra = f" ({reason})" if status != "ok" and reason else ""
        extra += f" [{note}]" if note else ""
        print(
            f"[{self.done}/{self.total} {100 * self.done / self.total:3.0f}% "
            f"elapsed {_fmt_time(elapsed)} ETA {_fmt_time(eta)}] "
            f"{record.get('estimator')} / {record.get('task')} / seed {record.get('seed')}: "
            f"{status} in {record.get('wall_time', 0.0):.1f}s{extra}",
            file=self.stream, flush=True,
        )


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


_BACKEND_PACKAGES = {
    "dask": ("distributed", "--backend dask needs dask.distributed: "
                            "pip install 'simsbench[dask]'"),
}


def check_backend(backend: str) -> None:
    """Fail (one line) on a backend that is unknown or not installed.

    Checked before anything runs, whatever the number of pending runs.
    """
    import importlib.util

    known = (*BACKENDS, "sequential")
    if backend not in known:
        raise RunnerError(f"--backend: unknown backend {backend!r}; choose from "
                          f"{', '.join(known)}")
    if backend in _BACKEND_PACKAGES:
        package, message = _BACKEND_PACKAGES[backend]
        if importlib.util.find_spec(package) is None:
            raise RunnerError(message)


def data_info_of(dataset, data_spec: str) -> dict[str, Any]:
    """What a record says about its data."""
    return {
        "spec": data_spec,
        "slug": data_slug(data_spec),
        "name": dataset.name,
        "kind": dataset.kind,
        "fingerprint": dataset.fingerprint,
        "description": dataset.description,
        "synthetic": data_spec.startswith("synthetic:"),
    }


def store_data_record(results_dir, dataset, data_spec: str) -> dict:
    """Save the data's description, split table and label statistics."""
    from simsbench.datasets import label_statistics, split_table

    info = data_info_of(dataset, data_spec)
    split = split_table(dataset)
    info["split_table"] = {
        "columns": list(split.columns), "index": list(split.index),
        "values": split.values.tolist(),
    }
    try:
        stats = label_statistics(dataset)
        info["label_histograms"] = {
            "columns": list(stats["histograms"].columns),
            "index": list(stats["histograms"].index),
            "values": stats["histograms"].values.tolist(),
        }
        info["label_difference"] = {
            "labels": list(stats["difference"].index),
            "values": stats["difference"].values.tolist(),
        }
    except ValueError:
        pass
    info["summary"] = dataset.summary()
    info["created"] = new_record()["created"]
    info["versions"] = versions(deep=False)  # the data does not depend on torch
    write_data_record(results_dir, info["slug"], info)
    return info


@dataclass
class GridResult:
    """The records of a grid and what was (re)computed."""

    records: list[dict]
    computed: list[str]
    cached: list[str]
    data_info: dict

    @property
    def trained(self) -> list[str]:
        """Keys of the runs fitted by this call (status ``ok``)."""
        done = set(self.computed)
        return [r["key"] for r in self.records if r["key"] in done and r["status"] == "ok"]


def lock_path(results_dir: str | os.PathLike, key: str) -> Path:
    """The lock file of run ``key``: held by the process computing it."""
    return Path(results_dir) / "locks" / f"{key}.lock"


def _record_mismatch(rec: dict, planned: PlannedRun) -> str:
    """What differs between a stored record and the run its key names."""
    want = planned.base_record()
    for name in ("estimator", "task", "seed", "run_seed", "mode", "class_path", "n_threads"):
        if rec.get(name) != want.get(name):
            return (f"its {name!r} is {rec.get(name)!r}, but the run of this key has "
                    f"{want.get(name)!r}")
    if rec["data"].get("fingerprint") != want["data"]["fingerprint"]:
        return "its data fingerprint is not the run's"
    return ""


def _finished_record(results_dir, planned: PlannedRun) -> dict | None:
    """The stored record of ``planned`` if it is finished, well formed and
    really this run's (else None, with a RecordWarning for a bad one)."""
    path = record_path(results_dir, planned.data_info["slug"], planned.key)
    rec = read_record(path)
    if rec is None:
        return None
    problem = _record_mismatch(rec, planned)
    if problem:
        warnings.warn(f"{path}: {problem}; record ignored, the run is recomputed",
                      RecordWarning, stacklevel=3)
        return None
    return rec if rec.get("status") in FINISHED else None


def run_grid(
    requests: Sequence[RunRequest],
    results_dir: str | os.PathLike = "results",
    *,
    jobs: int = 1,
    threads: int = 1,
    backend: str = "loky",
    force: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    on_record: Callable[[dict], None] | None = None,
    scheduler: str | None = None,
) -> GridResult:
    """Run every request that has no finished record; return all records.

    All requests must share one data spec.  Records are written as each run
    returns (atomically), so an interrupted grid resumes where it stopped.
    Each run is computed under its lock file, so concurrent processes on one
    ``results_dir`` never compute the same run twice.

    Parameters
    ----------
    requests : sequence of RunRequest
    results_dir : path, default="results"
    jobs : int, default=1
        Runs executed at once (joblib ``n_jobs``); ``1`` runs in this
        process.  Does not change any result.
    threads : int, default=1
        Torch intra-op and BLAS/OpenMP threads of every run.  Results depend
        on it, so it is in each run's key and record (``n_threads``).
    backend : str, default="loky"
        ``"loky"``, ``"threading"`` or ``"multiprocessing"`` (joblib), or
        ``"dask"``: one future per run on a Dask cluster, records written by
        this process as they arrive (:mod:`simsbench._dask`).
    scheduler : str, default=None
        Dask scheduler address (``backend="dask"``); without it (and without
        ``DASK_SCHEDULER_ADDRESS``) a local cluster of ``jobs`` worker
        processes runs the grid.
    force : bool, default=False
        Recompute finished runs.
    progress : bool, default=True
        Print one progress line per run (with an ETA) to ``stream``.

    Raises
    ------
    RunnerError
        Several data specs, ``jobs`` or ``threads`` below 1, or an unknown
        or uninstalled ``backend`` (checked before anything runs).
    """
    from filelock import FileLock, Timeout

    from simsbench.datasets import load_dataset

    if jobs < 1:
        raise RunnerError(f"--jobs must be >= 1, got {jobs}")
    if threads < 1:
        raise RunnerError(f"--threads must be >= 1, got {threads}")
    check_backend(backend)
    if not requests:
        return GridResult([], [], [], {})
    specs = {r.data for r in requests}
    if len(specs) != 1:
        raise RunnerError(f"run_grid takes one data spec at a time, got {sorted(specs)}")
    data_spec = specs.pop()
    dataset = load_dataset(data_spec)
    data_info = store_data_record(results_dir, dataset, data_spec)
    data_info = {k: data_info[k] for k in
                 ("spec", "slug", "name", "kind", "fingerprint", "description", "synthetic")}
    planned = plan_runs(requests, data_info, threads)
    records: dict[str, dict] = {}
    todo: list[PlannedRun] = []
    cached: list[str] = []
    for p in planned:
        rec = None if force else _finished_record(results_dir, p)
        if rec is not None:
            records[p.key] = rec
            cached.append(p.key)
        else:
            todo.append(p)
    bar = Progress(len(todo), stream=stream, enabled=progress)
    computed: list[str] = []
    logs_dir = Path(results_dir) / "logs"
    held: dict[str, FileLock] = {}

    def claim(p: PlannedRun) -> bool | None:
        """Lock ``p``: True (ours to compute), False (finished by another
        process meanwhile) or None (another process holds it)."""
        path = lock_path(results_dir, p.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        # Under the lock: another process may have finished it since planning.
        rec = None if force else _finished_record(results_dir, p)
        if rec is not None:
            lock.release()
            records[p.key] = rec
            cached.append(p.key)
            bar.update(rec, note="computed by another process")
            return False
        held[p.key] = lock
        return True

    def finish(rec: dict, log_text: str) -> None:
        try:
            write_record(results_dir, rec)
            atomic_write_text(logs_dir / f"{rec['key']}.log", _log_header(rec) + log_text)
        finally:
            lock = held.pop(rec["key"], None)
            if lock is not None:
                lock.release()
        records[rec["key"]] = rec
        computed.append(rec["key"])
        bar.update(rec)
        if on_record is not None:
            on_record(rec)

    def run_all(runs: list[PlannedRun]) -> list[PlannedRun]:
        """Compute the runs this process can lock; return the others."""
        busy: list[PlannedRun] = []
        if backend == "dask":
            mine = []
            for p in runs:
                got = claim(p)
                if got:
                    mine.append(p)
                elif got is None:
                    busy.append(p)
            if mine:
                from simsbench._dask import run_on_dask

                run_on_dask(mine, _execute_payload, finish, _lost_run, scheduler=scheduler,
                            n_workers=jobs)
            return busy
        if jobs == 1 or len(runs) <= 1 or backend == "sequential":
            for p in runs:
                got = claim(p)
                if got:
                    finish(*execute_run(p))
                elif got is None:
                    busy.append(p)
            return busy
        from joblib import Parallel, delayed, parallel_config

        def tasks():  # consumed lazily: a run is locked just before it is sent
            for p in runs:
                got = claim(p)
                if got:
                    yield delayed(_execute_payload)(p)
                elif got is None:
                    busy.append(p)

        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            with parallel_config(backend=backend, n_jobs=jobs):
                parallel = Parallel(return_as="generator_unordered")
                for rec, log_text in parallel(tasks()):
                    finish(rec, log_text)
        except TerminatedWorkerError as exc:
            found = re.search(r"\{[^}]*\}", str(exc))
            codes = found.group(0) if found else "unknown"
            raise RunnerError(
                f"a worker process died while running (exit codes {codes}; SIGKILL is "
                f"usually the out-of-memory killer); the {len(computed)} runs finished "
                "so far are kept and the next invocation resumes -- with fewer --jobs "
                "if memory ran out"
            ) from None
        return busy

    try:
        waiting = run_all(todo)
        while waiting:
            first = waiting[0]
            if progress:
                print(f"waiting for {first.request.estimator.name} / "
                      f"{first.request.task.name} / seed {first.request.seed}: another "
                      f"process is computing it ({lock_path(results_dir, first.key)})",
                      file=bar.stream, flush=True)
            with FileLock(lock_path(results_dir, first.key), thread_local=False):
                pass  # the other process finished (or died: the OS freed its lock)
            waiting = run_all(waiting)
    finally:
        for lock in held.values():
            lock.release()
        _restore_threads()
    ordered = [records[p.key] for p in planned if p.key in records]
    return GridResult(ordered, computed, cached, data_info)


def _log_header(rec: dict) -> str:
    return (
        f"# {rec.get('estimator')} / {rec.get('task')} / seed {rec.get('seed')} "
        f"(run seed {rec.get('run_seed')}, mode {rec.get('mode')})\n"
        f"# class {rec.get('class_path')}\n# data {rec.get('data', {}).get('description')}\n"
        f"# status {rec.get('status')} {rec.get('reason', '')}\n"
    )


def correction_variants(spec: EstimatorSpec, ablate: bool = False) -> tuple[str, ...]:
    """The variants of one model in the corrections table.

    ``("reference", "corrected")``, plus ``"reference+NAME"`` for each of its
    corrections when ``ablate`` and it has more than one; ``()`` when the
    class cannot be imported or has no correction.
    """
    from simsbench.estimators._fidelity import corrections

    try:
        corrs = corrections(spec.estimator_class())
    except Exception:  # noqa: BLE001 - an unimportable class has no rows here
        return ()
    if not corrs:
        return ()
    out = ["reference", "corrected"]
    if ablate and len(corrs) > 1:
        out += [f"reference+{c.name}" for c in corrs]
    return tuple(out)


def requests_for(
    pairs: Iterable[tuple[EstimatorSpec, TaskSpec]],
    data: str | None = None,
    *,
    quick: bool = False,
    tiny: bool = False,
    seeds: Sequence[int] | None = None,
    variant: str = "reference",
    variants: Mapping[str, Sequence[str]] | None = None,
) -> list[RunRequest]:
    """Expand (estimator, task) pairs over the task's seeds (the first only
    when ``quick``), deduplicated in order.

    Every run gets ``variant``, or, for an estimator named in ``variants``,
    one run per listed variant (the corrections table)."""
    out: list[RunRequest] = []
    seen = set()
    for est, task in pairs:
        task_seeds = tuple(seeds) if seeds else task.seeds
        if quick:
            task_seeds = task_seeds[:1]
        for v, s in ((v, s) for v in (variants or {}).get(est.name, (variant,))
                     for s in task_seeds):
            req = RunRequest(est, task, data or task.data, int(s), quick=quick, tiny=tiny,
                             variant=v)
            ident = (est.name, task.name, req.data, req.seed, quick, tiny, v)
            if ident not in seen:
                seen.add(ident)
                out.append(req)
    return out
