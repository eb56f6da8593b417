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

Threads.  Every run computes with ``threads`` torch intra-op and BLAS/OpenMP
threads (default 1; results depend on it, so it is in the key and the
record, see :mod:`simsbench._execute`); ``jobs`` only says how many runs
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

Runs are planned by :mod:`simsbench._requests` and executed by
:mod:`simsbench._execute`; nothing here imports torch.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from simsbench._data_record import data_info_of, store_data_record
from simsbench._defaults import QUICK_MAX_EPOCHS, QUICK_MAX_TRAIN
from simsbench._execute import execute_run, lost_run, read_only, restore_threads
from simsbench._requests import (
    EXCLUDED_PARAMS,
    PlannedRun,
    RunnerError,
    RunRequest,
    check_device,
    correction_variants,
    derive_seed,
    finished_record,
    plan_runs,
    requests_for,
)
from simsbench.progress import format_duration
from simsbench.results import atomic_write_text, write_record

__all__ = [
    "BACKENDS",
    "EXCLUDED_PARAMS",
    "QUICK_MAX_EPOCHS",
    "QUICK_MAX_TRAIN",
    "GridResult",
    "PlannedRun",
    "Progress",
    "RunRequest",
    "RunnerError",
    "check_backend",
    "check_device",
    "correction_variants",
    "data_info_of",
    "derive_seed",
    "execute_run",
    "lock_path",
    "plan_runs",
    "read_only",
    "requests_for",
    "run_grid",
    "store_data_record",
]

BACKENDS = ("loky", "threading", "multiprocessing", "dask")
"""The backends ``--backend`` names: joblib's, and Dask (:mod:`simsbench._dask`)."""


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
            f"elapsed {format_duration(elapsed)} ETA {format_duration(eta)}] "
            f"{record.get('estimator')} / {record.get('task')} / seed {record.get('seed')}: "
            f"{status} in {record.get('wall_time', 0.0):.1f}s{extra}",
            file=self.stream, flush=True,
        )


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


@dataclass
class GridResult:
    """The records of a grid and what was (re)computed.

    ``data_info`` is what each record says about the data; ``data_record``
    the data record the grid stored (with the split table and label
    statistics), as read back from the results directory.  Both are empty
    for an empty grid.
    """

    records: list[dict]
    computed: list[str]
    cached: list[str]
    data_info: dict
    data_record: dict = field(default_factory=dict)

    @property
    def trained(self) -> list[str]:
        """Keys of the runs fitted by this call (status ``ok``)."""
        done = set(self.computed)
        return [r["key"] for r in self.records if r["key"] in done and r["status"] == "ok"]


def lock_path(results_dir: str | os.PathLike, key: str) -> Path:
    """The lock file of run ``key``: held by the process computing it."""
    return Path(results_dir) / "locks" / f"{key}.lock"


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
    stored = store_data_record(results_dir, dataset, data_spec)
    data_info = {k: stored[k] for k in
                 ("spec", "slug", "name", "kind", "fingerprint", "description", "synthetic")}
    planned = plan_runs(requests, data_info, threads)
    records: dict[str, dict] = {}
    todo: list[PlannedRun] = []
    cached: list[str] = []
    for p in planned:
        rec = None if force else finished_record(results_dir, p)
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
        rec = None if force else finished_record(results_dir, p)
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

                run_on_dask(mine, execute_run, finish, lost_run, scheduler=scheduler,
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
                    yield delayed(execute_run)(p)
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
        restore_threads()
    ordered = [records[p.key] for p in planned if p.key in records]
    return GridResult(ordered, computed, cached, data_info, stored)


def _log_header(rec: dict) -> str:
    return (
        f"# {rec.get('estimator')} / {rec.get('task')} / seed {rec.get('seed')} "
        f"(run seed {rec.get('run_seed')}, mode {rec.get('mode')})\n"
        f"# class {rec.get('class_path')}\n# data {rec.get('data', {}).get('description')}\n"
        f"# status {rec.get('status')} {rec.get('reason', '')}\n"
    )

