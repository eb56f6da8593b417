"""The runner: cache keys, reruns, --force, interruption and resumption,
parallel backends.  Uses PooledSVR and tiny custom estimators (torch-free)
plus one LF-DNN run when torch is installed."""

from __future__ import annotations

import json
import shutil
import textwrap

import pytest

from simsbench.cli import main
from simsbench.datasets import make_synthetic_mmsa, write_mmsa
from simsbench.results import read_records
from simsbench.runner import derive_seed, requests_for, run_grid
from simsbench.specs import EstimatorSpec, default_spec_roots, load_specs

BUILTIN = default_spec_roots()[0]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def sims_pkl(tmp_path_factory):
    sup, _ = make_synthetic_mmsa("sims", n_samples=(60, 20, 20), seq_lens=(6, 12, 8),
                                 feature_dims=(16, 5, 7), random_state=1)
    return str(write_mmsa(sup, tmp_path_factory.mktemp("data") / "sims_tiny.pkl"))


def _svr(name="svr", **params):
    return EstimatorSpec(name=name, label=name.upper(), class_name="PooledSVR",
                         params=params)


def _task(name="sims_multimodal"):
    return load_specs().task(name)


def test_derive_seed_is_deterministic_and_task_specific():
    s = derive_seed(1, "sims_multimodal")
    assert s == derive_seed(1, "sims_multimodal")
    assert 0 <= s < 2**31 - 1
    assert len({derive_seed(p, t) for p in (1, 12, 123) for t in ("a", "b")}) == 6


def test_rerun_skips_finished_runs_and_force_recomputes(tmp_path, sims_pkl):
    reqs = requests_for([(_svr(), _task())], sims_pkl, seeds=(1, 12))
    first = run_grid(reqs, tmp_path, progress=False)
    assert len(first.computed) == 2 and not first.cached
    assert all(r["status"] == "ok" and 0 <= r["scores"]["acc2"] <= 1 for r in first.records)
    again = run_grid(reqs, tmp_path, progress=False)
    assert not again.computed and len(again.cached) == 2
    assert [r["scores"] for r in again.records] == [r["scores"] for r in first.records]
    forced = run_grid(reqs, tmp_path, progress=False, force=True)
    assert len(forced.computed) == 2
    # A changed hyperparameter is a new run; the old record stays.
    changed = run_grid(requests_for([(_svr(C=3.0), _task())], sims_pkl, seeds=(1,)),
                       tmp_path, progress=False)
    assert len(changed.computed) == 1
    assert len(read_records(tmp_path, "sims_tiny")) == 3
    assert not list(tmp_path.rglob("*.tmp"))
    for rec in first.records:
        log = tmp_path / "logs" / f"{rec['key']}.log"
        assert log.exists() and "PooledSVR" in log.read_text()
        saved = json.loads((tmp_path / "runs" / "sims_tiny" / f"{rec['key']}.json").read_text())
        assert saved["params"]["C"] == 1 and saved["class_path"].endswith(":PooledSVR")
        assert saved["data"]["fingerprint"] == first.data_info["fingerprint"]
        assert saved["run_seed"] == derive_seed(saved["seed"], "sims_multimodal")


def test_cache_key_depends_on_seed_and_quick(tmp_path, sims_pkl):
    a = run_grid(requests_for([(_svr(), _task())], sims_pkl, seeds=(1,)), tmp_path,
                 progress=False, jobs=1)
    b = run_grid(requests_for([(_svr(), _task())], sims_pkl, seeds=(12,)), tmp_path,
                 progress=False)
    assert a.records[0]["key"] != b.records[0]["key"]
    quick = run_grid(requests_for([(_svr(), _task())], sims_pkl, seeds=(1,), quick=True),
                     tmp_path, progress=False)
    # --quick trains on a subsample: its own key, never the full run's record.
    assert not quick.cached and quick.records[0]["key"] != a.records[0]["key"]


FLAKY = '''
import os
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class Flaky(RegressorMixin, BaseEstimator):
    """Predicts the mean; logs each fit; can fail or be interrupted."""

    def __init__(self, random_state=None, fail=False, modalities=("text",)):
        self.random_state = random_state
        self.fail = fail
        self.modalities = modalities

    def fit(self, X, y):
        with open(os.environ["FLAKY_LOG"], "a") as fh:
            fh.write(f"{self.random_state}\\n")
        n_fits = len(open(os.environ["FLAKY_LOG"]).read().split())
        if str(n_fits) == os.environ.get("FLAKY_INTERRUPT_AT"):
            raise KeyboardInterrupt
        if self.fail:
            raise ValueError("bad things\\nsecond line")
        self.mean_ = float(np.mean(y if np.ndim(y) == 1 else y[:, 0]))
        return self

    def predict(self, X):
        n = len(X["text"])
        return self.mean_ + np.linspace(-0.1, 0.1, n)
'''


@pytest.fixture
def flaky_root(tmp_path, monkeypatch):
    """A spec root with the built-in tasks and one user estimator."""
    mod = tmp_path / "mods"
    mod.mkdir()
    (mod / "flaky_models_sb.py").write_text(FLAKY)
    monkeypatch.syspath_prepend(str(mod))
    root = tmp_path / "specs"
    shutil.copytree(BUILTIN / "tasks", root / "tasks")
    (root / "estimators").mkdir()
    (root / "estimators" / "flaky.toml").write_text(textwrap.dedent('''
        name = "Flaky"
        class = "flaky_models_sb:Flaky"
        tables = ["table2"]
    '''))
    monkeypatch.setenv("SIMSBENCH_SPECS", str(root))
    log = tmp_path / "fits.log"
    monkeypatch.setenv("FLAKY_LOG", str(log))
    return root, log


def test_interrupted_grid_resumes_without_recomputing(tmp_path, sims_pkl, flaky_root,
                                                      monkeypatch, capsys):
    _root, log = flaky_root
    results = tmp_path / "res"
    args = ["run", "table2", "--data", sims_pkl, "--results", str(results)]
    monkeypatch.setenv("FLAKY_INTERRUPT_AT", "3")
    assert main(args) == 130
    assert "interrupted" in capsys.readouterr().err
    first = log.read_text().split()
    assert len(first) == 3
    done = read_records(results, "sims_tiny")
    assert len(done) == 2 and all(r["status"] == "ok" for r in done)
    assert sorted(r["run_seed"] for r in done) == sorted(int(s) for s in first[:2])

    monkeypatch.delenv("FLAKY_INTERRUPT_AT")
    log.write_text("")
    assert main(args) == 0
    second = log.read_text().split()
    # Only the interrupted run and the two never started were fitted.
    assert len(second) == 3 and not set(second) & set(first[:2])
    assert first[2] in second
    recs = read_records(results, "sims_tiny")
    assert len(recs) == 5 and {r["seed"] for r in recs} == {1, 12, 123, 1234, 12345}
    out = capsys.readouterr().out
    assert "| Flaky" in out


def test_failed_run_is_recorded_in_one_line_and_retried(tmp_path, sims_pkl, flaky_root):
    spec = EstimatorSpec(name="flaky", label="Flaky", class_name="flaky_models_sb:Flaky",
                         params={"fail": True})
    reqs = requests_for([(spec, _task())], sims_pkl, seeds=(1,))
    res = run_grid(reqs, tmp_path, progress=False)
    rec = res.records[0]
    assert rec["status"] == "error" and rec["reason"] == "ValueError: bad things"
    assert "Traceback" in (tmp_path / "logs" / f"{rec['key']}.log").read_text()
    assert len(run_grid(reqs, tmp_path, progress=False).computed) == 1


def test_unknown_parameter_and_missing_class_become_row_errors(tmp_path, sims_pkl):
    bad = EstimatorSpec(name="bad", label="Bad", class_name="PooledSVR",
                        params={"gamma_typo": 1.0}, path="estimators/bad.toml")
    missing = EstimatorSpec(name="gone", label="Gone", class_name="nowhere_pkg:Model")
    res = run_grid(requests_for([(bad, _task()), (missing, _task())], sims_pkl, seeds=(1,)),
                   tmp_path, progress=False)
    reasons = {r["estimator"]: (r["status"], r["reason"]) for r in res.records}
    assert reasons["bad"][0] == "error" and "unknown parameter 'gamma_typo'" in reasons["bad"][1]
    assert "bad.toml" in reasons["bad"][1]
    assert "nowhere_pkg" in reasons["gone"][1]


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_parallel_backends_give_the_same_records(tmp_path, sims_pkl, backend):
    specs = [(_svr(), _task()), (_svr("svr_t", modalities=("text",)), _task())]
    seq = run_grid(requests_for(specs, sims_pkl, seeds=(1, 12)), tmp_path / "a",
                   progress=False)
    par = run_grid(requests_for(specs, sims_pkl, seeds=(1, 12)), tmp_path / "b",
                   progress=False, jobs=2, backend=backend)
    assert len(par.computed) == 4
    assert [r["key"] for r in par.records] == [r["key"] for r in seq.records]
    assert [r["scores"] for r in par.records] == [r["scores"] for r in seq.records]


def test_progress_lines_have_an_eta(tmp_path, sims_pkl):
    import io

    stream = io.StringIO()
    run_grid(requests_for([(_svr(), _task())], sims_pkl, seeds=(1, 12)), tmp_path,
             stream=stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "ETA" in lines[0] and "[2/2 100%" in lines[1]


def test_deep_estimator_run_is_capped_in_quick_mode(tmp_path, sims_pkl):
    pytest.importorskip("torch")
    spec = load_specs().estimator("lf_dnn")
    res = run_grid(requests_for([(spec, _task())], sims_pkl, seeds=(1,), quick=True,
                                tiny=True), tmp_path, progress=False)
    rec = res.records[0]
    assert rec["status"] == "ok", rec["reason"]
    from simsbench.runner import QUICK_MAX_EPOCHS

    assert rec["params"]["max_epochs"] == QUICK_MAX_EPOCHS
    assert rec["n_epochs"] <= QUICK_MAX_EPOCHS
    assert rec["params"]["random_state"] == derive_seed(1, "sims_multimodal")
    assert "n_threads" not in rec["params"] and rec["n_params"] > 0
    assert rec["n_threads"] == 1  # the runner's, in the record and the key
    assert rec["mode"] == "tiny+quick" and "torch" in rec["versions"]


def test_ablation_switches_are_in_the_record_and_key(tmp_path, sims_pkl):
    # Table 5's protocol sets ``tasks``: the record shows what was trained.
    pytest.importorskip("torch")
    specs = load_specs()
    mt = specs.estimator("mlf_dnn")
    reqs = requests_for([(mt, specs.task("sims_tasks_m")), (mt, specs.task("sims_tasks_mtav"))],
                        sims_pkl, seeds=(1,), tiny=True)
    res = run_grid(reqs, tmp_path, progress=False)
    by_task = {r["task"]: r for r in res.records}
    assert all(r["status"] == "ok" for r in res.records)
    assert by_task["sims_tasks_m"]["params"]["tasks"] == []
    assert by_task["sims_tasks_mtav"]["params"]["tasks"] == ["T", "A", "V"]
    assert by_task["sims_tasks_m"]["key"] != by_task["sims_tasks_mtav"]["key"]
