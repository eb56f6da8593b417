"""Executing one planned run, in whichever process or thread runs it.

:func:`execute_run` loads the data (cached per process), hands it to the
protocol read-only (:func:`read_only`), fixes the thread count, fits and
scores, and returns the run's record and log; an exception becomes an
``"error"`` record.  The estimators import torch here, inside the workers.

Threads.  Results depend on the number of threads a run computes with (torch
and BLAS reductions are split differently: LF-DNN's predictions at 1 and 2
torch threads differ in the last bits), so the thread count is fixed by the
run, not by the machine or by the number of runs at once: every run computes
with ``planned.n_threads`` torch intra-op and BLAS/OpenMP threads, and its
record says so (``n_threads``).

Estimators see the dataset read-only: a run that writes into ``X`` fails
with an error instead of changing the data of the runs after it (the dataset
is cached per process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import threading
import time
import traceback
from typing import Any

from simsbench._defaults import QUICK_MAX_EVAL, QUICK_MAX_TRAIN
from simsbench._requests import PlannedRun, RunnerError, _build, _one_line
from simsbench.results import versions

__all__ = ["execute_run", "lost_run", "read_only", "restore_threads"]


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
                dataset = dataset.subsample(QUICK_MAX_TRAIN, QUICK_MAX_TRAIN,
                                            max_eval=QUICK_MAX_EVAL)
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
    backend, and all use the same ``n``); :func:`restore_threads` puts the
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


def restore_threads() -> None:
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



def lost_run(planned: PlannedRun, exc: BaseException) -> tuple[dict, str]:
    """The record of a run whose worker died (retried by the next invocation)."""
    record = planned.base_record()
    record.update(status="error", reason=f"worker lost: {_one_line(exc)}", wall_time=0.0,
                  versions=versions(deep=False))
    return record, traceback.format_exception_only(type(exc), exc)[-1]

