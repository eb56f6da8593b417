"""A grid on a Dask LocalCluster of 2 worker processes, one of which is
killed mid-grid: the killed run is redone, no finished run is recomputed,
and a second invocation trains nothing."""

from __future__ import annotations

import os
import signal
import textwrap
import time

import pytest

pytest.importorskip("distributed")

from simsbench.datasets import make_synthetic_mmsa, write_mmsa  # noqa: E402
from simsbench.results import read_records  # noqa: E402
from simsbench.runner import requests_for, run_grid  # noqa: E402
from simsbench.specs import load_estimator_spec, load_task_spec  # noqa: E402

SLOW = '''
import os
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class SlowMean(RegressorMixin, BaseEstimator):
    """Predicts the training mean after a pause; logs its starts and ends."""

    def __init__(self, pause=1.5, random_state=None):
        self.pause = pause
        self.random_state = random_state

    def fit(self, X, y, X_valid=None, y_valid=None):
        log = Path(os.environ["SB_DASK_LOG"])
        tag = f"{self.random_state}:{os.getpid()}"
        (log / f"start-{tag}").write_text(str(os.getpid()))
        time.sleep(self.pause)
        y = np.asarray(y, dtype=float)
        self.mean_ = float(np.nanmean(y if y.ndim == 1 else y[:, 0]))
        (log / f"end-{tag}").write_text(str(os.getpid()))
        return self

    def predict(self, X):
        n = len(X["text"])
        return np.full(n, self.mean_) + np.linspace(-1e-3, 1e-3, n)
'''


@pytest.fixture
def grid(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "sb_dask_slow.py").write_text(SLOW)
    log = tmp_path / "log"
    log.mkdir()
    # Worker processes inherit the environment: they import the stand-in
    # and write the log there.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(code), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("SB_DASK_LOG", str(log))
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    sup, _ = make_synthetic_mmsa("sims", n_samples=(24, 8, 8), seq_lens=(4, 6, 5),
                                 feature_dims=(6, 3, 4), random_state=0)
    data = str(write_mmsa(sup, tmp_path / "sims_small.pkl"))
    (tmp_path / "slow.toml").write_text('name = "Slow mean"\nclass = "sb_dask_slow:SlowMean"\n')
    (tmp_path / "task.toml").write_text(textwrap.dedent('''
        description = "one multimodal task"
        protocol = "multimodal"
        data = "synthetic:sims"
        labels = ["M"]
        seeds = [1, 2, 3, 4, 5, 6]
        metrics = ["mae"]
    '''))
    est = load_estimator_spec(tmp_path / "slow.toml")
    task = load_task_spec(tmp_path / "task.toml")
    return requests_for([(est, task)], data), tmp_path / "results", log


def test_killed_worker_loses_only_its_run(grid):
    requests, results, log = grid
    killed = []

    def kill_one_running(rec):
        if killed:
            return
        deadline = time.time() + 10
        while time.time() < deadline:  # a fit in progress on the other worker
            started = {p.name.split("-", 1)[1] for p in log.glob("start-*")}
            ended = {p.name.split("-", 1)[1] for p in log.glob("end-*")}
            running = sorted(started - ended)
            if running:
                pid = int(running[0].rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(running[0])
                return
            time.sleep(0.05)

    result = run_grid(requests, results, jobs=2, backend="dask", progress=False,
                      on_record=kill_one_running)
    assert killed, "no run was in progress to kill"
    assert [r["status"] for r in result.records] == ["ok"] * 6
    ended_runs = {p.name.split("-", 1)[1].split(":")[0] for p in log.glob("end-*")}
    starts = len(list(log.glob("start-*")))
    assert len(ended_runs) == 6  # every run finished
    # the killed run started again; a result the dead worker held before the
    # client fetched it may be recomputed too -- Dask's recovery, within the
    # first invocation, before any record was written
    assert starts >= 7
    created = {r["key"]: r["created"] for r in read_records(results)}

    again = run_grid(requests, results, jobs=2, backend="dask", progress=False)
    assert again.computed == [] and len(again.cached) == 6
    assert len(list(log.glob("start-*"))) == starts  # the rerun trains nothing
    assert {r["key"]: r["created"] for r in read_records(results)} == created
