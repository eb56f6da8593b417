"""Running a grid on a Dask cluster (``simsbench run ... --backend dask``).

Each pending run is one ``distributed`` future.  Its record comes back to
the **client**, which writes it to the results directory as soon as it
arrives (a worker's disk is not the results directory), so:

* a worker that dies mid-run loses only that run: the scheduler hands it to
  another worker (Dask retries the tasks of a lost worker), and if it keeps
  failing it is recorded as an error, to be retried by the next invocation;
* a finished run is never recomputed: its record was written by the client
  before anything else could fail, and the next invocation reads it (a
  result that a dying worker still held, before the client fetched it, is
  recomputed by Dask within the same invocation: it was not finished yet).

The workers load the data themselves from its spec: a synthetic spec is
generated on the worker, a file path must be readable by every worker at
the same path (a shared file system; see the README).

Without a scheduler address (``--scheduler`` or ``DASK_SCHEDULER_ADDRESS``)
a ``distributed.LocalCluster`` of ``n_workers`` single-threaded processes is
started for the grid and closed after it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["run_on_dask"]


def _import_distributed():
    try:
        import distributed
    except ImportError:
        from simsbench.runner import RunnerError

        raise RunnerError(
            "--backend dask needs dask.distributed: pip install 'simsbench[dask]'"
        ) from None
    return distributed


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int = 2):
    """A client for ``scheduler`` (an address), or a fresh local cluster."""
    distributed = _import_distributed()
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        client = distributed.Client(address)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_on_dask(
    todo: Sequence,
    execute: Callable,
    finish: Callable[[dict, str], None],
    failed_record: Callable[[Any, BaseException], tuple[dict, str]],
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    retries: int = 1,
) -> None:
    """Submit every planned run; write each record on the client as it lands.

    Parameters
    ----------
    todo : sequence of PlannedRun
    execute : callable
        ``execute(planned) -> (record, log_text)``, run on a worker (with the
        run's own thread count, ``planned.n_threads``).
    finish : callable
        Called on the client with each ``(record, log_text)`` as it arrives.
    failed_record : callable
        ``failed_record(planned, exc) -> (record, log_text)`` for a run whose
        future failed (its worker died more often than Dask retries).
    scheduler : str, default=None
        Address of a running scheduler (else ``DASK_SCHEDULER_ADDRESS``, else
        a local cluster).
    n_workers : int, default=2
        Worker processes of the local cluster.
    retries : int, default=1
        Extra attempts of a run whose task raised on a worker (a run's own
        exceptions are caught inside ``execute`` and never raise).
    """
    distributed = _import_distributed()
    with dask_client(scheduler, n_workers) as client:
        futures = {}
        for planned in todo:
            fut = client.submit(execute, planned, key=f"simsbench-run-{planned.key}",
                                pure=False, retries=retries)
            futures[fut] = planned
        for fut in distributed.as_completed(list(futures)):
            planned = futures.pop(fut)
            try:
                rec, log_text = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, lost data...
                rec, log_text = failed_record(planned, exc)
            finish(rec, log_text)
