"""Reliability of runs, records and estimator inputs (issue 12).

Each test here failed on the code before the fix it guards (but the
stale-lock test, which checks the new locks, and the PooledSVR
``check_estimator`` guard, which checks that a deterministic seedless
estimator still passes):

* shared data reaches estimators read-only (a writer gets an error, never
  another run's data);
* results do not depend on ``--jobs`` (a fixed per-run thread count, in the
  record and the key);
* ``simsbench run`` exits non-zero when a run failed;
* malformed or misplaced records are skipped with a warning and recomputed;
* concurrent processes never train the same run twice (a lock per run key,
  a stale lock of a killed process is taken over);
* ``--estimators`` and ``--backend`` are checked up front;
* NaN/inf in ``X`` or ``y`` and inconsistent plain dicts are one clear error;
* ``check_estimator`` fails what it cannot check and never refits.
"""

from __future__ import annotations

import csv

import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from simsbench.cli import main
from simsbench.datasets import make_synthetic_mmsa, write_mmsa
from simsbench.estimators import PooledSVR
from simsbench.results import RecordWarning, read_records, record_path
from simsbench.runner import lock_path, requests_for, run_grid
from simsbench.specs import EstimatorSpec, default_spec_roots, load_specs

BUILTIN = default_spec_roots()[0]

MODELS = '''
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class Vandal(RegressorMixin, BaseEstimator):
    """Writes into its input arrays (a bug a model may have)."""

    def __init__(self, random_state=None, modalities=("text", "audio", "vision")):
        self.random_state = random_state
        self.modalities = modalities

    def fit(self, X, y, X_valid=None, y_valid=None):
        X["text"][:] += 1.0
        self.mean_ = float(np.nanmean(y if np.ndim(y) == 1 else y[:, 0]))
        return self

    def predict(self, X):
        return np.full(len(X["text"]), self.mean_)


class Slow(RegressorMixin, BaseEstimator):
    """Logs each fit (pid and seed) and takes a while."""

    def __init__(self, random_state=None, fail=False, modalities=("text",)):
        self.random_state = random_state
        self.fail = fail
        self.modalities = modalities

    def fit(self, X, y):
        with open(os.environ["SB_FIT_LOG"], "a") as fh:
            fh.write(f"{os.getpid()} {self.random_state}\\n")
        if self.fail:
            raise ValueError("this model always fails")
        time.sleep(float(os.environ.get("SB_FIT_SLEEP", "0")))
        self.mean_ = float(np.mean(y if np.ndim(y) == 1 else y[:, 0]))
        return self

    def predict(self, X):
        return self.mean_ + np.linspace(-0.1, 0.1, len(X["text"]))
'''


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    """A private feature cache and the test models on sys.path."""
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "sb_rel_models.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.setenv("SB_FIT_LOG", str(tmp_path / "fits.log"))
    return tmp_path


@pytest.fixture(scope="module")
def sims_pkl(tmp_path_factory):
    sup, _ = make_synthetic_mmsa("sims", n_samples=(60, 20, 20), seq_lens=(6, 12, 8),
                                 feature_dims=(16, 5, 7), random_state=1)
    return str(write_mmsa(sup, tmp_path_factory.mktemp("rel_data") / "rel_tiny.pkl"))


def _spec(name, cls, **params):
    return EstimatorSpec(name=name, label=name, class_name=cls, params=params)


def _svr():
    return _spec("svr", "PooledSVR")


def _task(name="sims_multimodal"):
    return load_specs().task(name)


def _fits(tmp_path) -> list[str]:
    log = tmp_path / "fits.log"
    return log.read_text().split("\n")[:-1] if log.exists() else []


# ---------------------------------------------------------------------------
# runs and records

def test_estimator_writing_to_X_gets_an_error_never_another_runs_data(tmp_path, sims_pkl):
    clean = run_grid(requests_for([(_svr(), _task())], sims_pkl, seeds=(1,)),
                     tmp_path / "clean", progress=False)
    vandal = _spec("vandal", "sb_rel_models:Vandal")
    # the same process, the same cached dataset: the vandal runs first
    res = run_grid(requests_for([(vandal, _task()), (_svr(), _task())], sims_pkl,
                                seeds=(1,)), tmp_path / "b", progress=False)
    by_name = {r["estimator"]: r for r in res.records}
    assert by_name["vandal"]["status"] == "error"
    assert "read-only" in by_name["vandal"]["reason"]
    assert by_name["svr"]["status"] == "ok"
    assert by_name["svr"]["scores"] == clean.records[0]["scores"]


def test_same_seed_same_predictions_whatever_jobs(tmp_path, sims_pkl):
    pytest.importorskip("torch")
    lf_dnn = load_specs().estimator("lf_dnn")
    # one deep run (torch's RNG is process-global: no two deep runs in threads)
    # beside a classical one, so that jobs=2 takes the parallel path
    data = shutil.copy(sims_pkl, tmp_path / "jobs.pkl")  # its own per-process cache entry
    reqs = requests_for([(lf_dnn, _task()), (_svr(), _task())], str(data), seeds=(1,),
                        tiny=True)
    one = run_grid(reqs, tmp_path / "one", progress=False, jobs=1)
    two = run_grid(reqs, tmp_path / "two", progress=False, jobs=2, backend="threading")
    assert len(two.computed) == 2
    assert all(r["status"] == "ok" for r in one.records + two.records)
    assert [r["key"] for r in one.records] == [r["key"] for r in two.records]
    # bit-identical: the scores are computed from the predictions
    assert [r["scores"] for r in one.records] == [r["scores"] for r in two.records]
    assert {r["n_threads"] for r in one.records + two.records} == {1}


def test_thread_count_is_in_the_key_and_the_record(tmp_path, sims_pkl):
    reqs = requests_for([(_svr(), _task())], sims_pkl, seeds=(1,))
    a = run_grid(reqs, tmp_path, progress=False)
    b = run_grid(reqs, tmp_path, progress=False, threads=2)
    assert a.records[0]["n_threads"] == 1 and b.records[0]["n_threads"] == 2
    assert a.records[0]["key"] != b.records[0]["key"] and b.computed


def _spec_root(tmp_path, monkeypatch, **user):
    """Built-in tasks, the SVR spec and user specs ``name=(class, params)``."""
    root = tmp_path / "specs"
    shutil.copytree(BUILTIN / "tasks", root / "tasks")
    (root / "estimators").mkdir()
    shutil.copy(BUILTIN / "estimators" / "svr.toml", root / "estimators")
    for name, (cls, params) in user.items():
        body = f'name = "{name}"\nclass = "{cls}"\ntables = ["table2"]\n[params]\n'
        body += "".join(f"{k} = {v}\n" for k, v in params.items())
        (root / "estimators" / f"{name}.toml").write_text(body)
    monkeypatch.setenv("SIMSBENCH_SPECS", str(root))
    return root


def test_run_exits_non_zero_and_counts_failed_runs(tmp_path, sims_pkl, monkeypatch, capsys):
    _spec_root(tmp_path, monkeypatch, broken=("sb_rel_models:Slow", {"fail": "true"}))
    rc = main(["run", "table2", "--data", sims_pkl, "--estimators", "broken,svr",
               "--seeds", "1,12", "--results", str(tmp_path / "res"), "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "2 of 4 runs failed" in err


def _records_dir(tmp_path, sims_pkl):
    reqs = requests_for([(_svr(), _task())], sims_pkl, seeds=(1, 12))
    first = run_grid(reqs, tmp_path, progress=False)
    return reqs, first


@pytest.mark.parametrize("damage", ["scores_not_mapping", "no_estimator", "other_key",
                                    "not_json"])
def test_malformed_or_misplaced_record_is_skipped_with_a_warning(tmp_path, sims_pkl, damage,
                                                                 capsys):
    import json

    reqs, first = _records_dir(tmp_path, sims_pkl)
    slug = first.data_info["slug"]
    k1, k12 = (r["key"] for r in first.records)
    victim = record_path(tmp_path, slug, k12)
    rec = json.loads(victim.read_text())
    if damage == "scores_not_mapping":
        rec["scores"] = [0.5]
    elif damage == "no_estimator":
        del rec["estimator"]
    elif damage == "other_key":  # seed 1's record stored under seed 12's key
        rec = json.loads(record_path(tmp_path, slug, k1).read_text())
    victim.write_text("{not json" if damage == "not_json" else json.dumps(rec))

    with pytest.warns(RecordWarning, match=victim.name):
        again = run_grid(reqs, tmp_path, progress=False)
    assert again.computed == [k12] and again.cached == [k1]
    assert [r["seed"] for r in again.records] == [1, 12]
    assert all(r["status"] == "ok" for r in again.records)

    # ... and a damaged file never crashes `simsbench table`, nor counts twice
    victim.write_text(json.dumps(rec) if damage != "not_json" else "{not json")
    capsys.readouterr()
    assert main(["table", "table2", "--data", sims_pkl, "--results", str(tmp_path),
                 "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(f"simsbench: warning: {victim}") and err.count("\n") == 1
    rows = csv.DictReader(ln for ln in out.splitlines() if not ln.startswith("#"))
    svr_row = next(r for r in rows if r["model"] == "SVR" and r["source"] == "simsbench")
    assert svr_row["n"] == "1"  # one seed counted: seed 1's record


def test_a_mismatched_record_under_the_right_key_is_recomputed(tmp_path, sims_pkl):
    import json

    reqs, first = _records_dir(tmp_path, sims_pkl)
    path = record_path(tmp_path, first.data_info["slug"], first.records[1]["key"])
    rec = json.loads(path.read_text())
    rec["seed"] = 99  # a record whose content is not the run its key names
    path.write_text(json.dumps(rec))
    with pytest.warns(RecordWarning, match="seed"):
        again = run_grid(reqs, tmp_path, progress=False)
    assert again.computed == [first.records[1]["key"]]
    assert again.records[1]["seed"] == 12


def test_two_specs_of_one_class_and_params_are_two_runs(tmp_path, sims_pkl):
    # same computation, two table rows: each needs its own record
    reqs = requests_for([(_svr(), _task()), (_spec("svr_again", "PooledSVR"), _task())],
                        sims_pkl, seeds=(1,))
    first = run_grid(reqs, tmp_path, progress=False)
    assert [r["estimator"] for r in first.records] == ["svr", "svr_again"]
    again = run_grid(reqs, tmp_path, progress=False)
    assert not again.computed and [r["estimator"] for r in again.records] == [
        "svr", "svr_again"]


def test_table_skips_a_malformed_record(tmp_path, sims_pkl):
    from simsbench.tables import build_table

    _reqs, first = _records_dir(tmp_path, sims_pkl)
    good = first.records
    bad = [{**good[0], "scores": "oops"}, {k: v for k, v in good[1].items()
                                           if k != "estimator"}]
    with pytest.warns(RecordWarning):
        rt = build_table("table2", good + bad, data_info=first.data_info)
    svr = next(r for r in rt.rows if r.labels == ("SVR",) and r.source == "simsbench")
    assert svr.cells["acc2"].n == 2


def test_concurrent_grids_never_train_the_same_run_twice(tmp_path, sims_pkl, monkeypatch):
    import threading

    monkeypatch.setenv("SB_FIT_SLEEP", "0.3")
    slow = _spec("slow", "sb_rel_models:Slow")
    reqs = requests_for([(slow, _task())], sims_pkl, seeds=(1, 12, 123))
    results = tmp_path / "res"
    barrier = threading.Barrier(2)
    out: list = [None, None]

    def racer(i):
        barrier.wait()
        try:
            out[i] = run_grid(reqs, results, progress=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            out[i] = exc

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert all(not isinstance(o, BaseException) for o in out), out
    seeds = [ln.split()[1] for ln in _fits(tmp_path)]
    assert len(seeds) == 3 and len(set(seeds)) == 3, seeds
    assert len(out[0].computed) + len(out[1].computed) == 3  # computed once in all ...
    for res in out:  # ... and every run is in both results
        assert len(res.computed) + len(res.cached) == 3
        assert [r["status"] for r in res.records] == ["ok"] * 3
    assert len(read_records(results)) == 3


HOLDER = textwrap.dedent('''
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(600)
''')


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path, sims_pkl):
    reqs = requests_for([(_svr(), _task())], sims_pkl, seeds=(1,))
    from simsbench.datasets import load_dataset
    from simsbench.runner import data_info_of, plan_runs

    info = data_info_of(load_dataset(sims_pkl), sims_pkl)
    key = plan_runs(reqs, info)[0].key
    path = lock_path(tmp_path, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()  # SIGKILL: no chance to release anything
    holder.wait(timeout=30)
    assert path.exists()  # left behind by the killed process, held by nobody
    t0 = time.perf_counter()
    res = run_grid(reqs, tmp_path, progress=False)
    assert res.computed == [key] and res.records[0]["status"] == "ok"
    assert time.perf_counter() - t0 < 60


def test_estimators_not_in_the_table_is_a_one_line_error(tmp_path, sims_pkl, monkeypatch,
                                                         capsys):
    _spec_root(tmp_path, monkeypatch)
    rc = main(["run", "table4", "--data", sims_pkl, "--estimators", "svr",
               "--results", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "'svr' is not a row of table4" in err and "mlf_dnn" in err
    assert not (tmp_path / "res" / "runs").exists()


def test_bad_backend_is_checked_up_front(tmp_path, sims_pkl, monkeypatch, capsys):
    _spec_root(tmp_path, monkeypatch)
    rc = main(["run", "table2", "--data", sims_pkl, "--estimators", "svr", "--seeds", "1",
               "--backend", "nope", "--results", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "--backend: unknown backend 'nope'" in err and "loky" in err
    assert not read_records(tmp_path / "res")
    reqs = requests_for([(_svr(), _task())], sims_pkl, seeds=(1,))
    from simsbench.runner import RunnerError

    with pytest.raises(RunnerError, match="unknown backend 'nope'"):
        run_grid(reqs, tmp_path / "res2", backend="nope", progress=False)


# ---------------------------------------------------------------------------
# estimators

def _nonfinite(tiny, modality, value):
    X = tiny.X("train")
    X[modality] = X[modality].copy()
    X[modality][3, 0, 1] = value
    return X


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nonfinite_features_are_an_error_naming_the_modality(tiny, value):
    with pytest.raises(ValueError, match=r"PooledSVR: X\['audio'\] has 1 non-finite"):
        PooledSVR().fit(_nonfinite(tiny, "audio", value), tiny.y("train"))
    model = PooledSVR().fit(tiny.X("train"), tiny.y("train"))
    with pytest.raises(ValueError, match=r"X\['vision'\] has 1 non-finite"):
        model.predict(_nonfinite(tiny, "vision", value))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_lf_dnn_rejects_nonfinite_features(tiny, value):
    pytest.importorskip("torch")
    from simsbench.estimators import LFDNN

    est = LFDNN(**LFDNN._tiny_params, random_state=0, n_threads=1)
    with pytest.raises(ValueError, match=r"LFDNN: X\['audio'\] has 1 non-finite"):
        est.fit(_nonfinite(tiny, "audio", value), tiny.y("train"))


def test_nonfinite_targets_are_an_error_naming_the_label(tiny):
    from simsbench.estimators._inputs import check_y

    y = tiny.y("train", ("M", "T", "A", "V"))
    bad = y.copy()
    bad[2, 2] = np.inf
    with pytest.raises(ValueError, match=r"PooledSVR: y column 'A' has 1 infinite"):
        PooledSVR().fit(tiny.X("train"), bad)
    nan_m = y.copy()
    nan_m[5, 0] = np.nan
    with pytest.raises(ValueError, match=r"PooledSVR: y column 'M' has 1 NaN"):
        PooledSVR().fit(tiny.X("train"), nan_m)
    # NaN marks unlabelled rows and missing unimodal labels: allowed where used
    nan_t = y.copy()
    nan_t[5, 1] = np.nan
    check_y(nan_t, len(y), "Model")
    check_y(nan_m, len(y), "Model", semi_supervised=True)
    with pytest.raises(ValueError, match="y column 'M' has 1 infinite"):
        check_y(np.where(np.isnan(nan_m), np.inf, nan_m), len(y), "Model",
                semi_supervised=True)
    with pytest.raises(ValueError, match="y_valid has 3 rows but X_valid has 48"):
        check_y(y[:3], 48, "Model", what="y_valid")


def test_lf_dnn_rejects_infinite_targets(tiny):
    pytest.importorskip("torch")
    from simsbench.estimators import LFDNN

    y = tiny.y("train")
    y[4] = np.inf
    est = LFDNN(**LFDNN._tiny_params, random_state=0, n_threads=1)
    with pytest.raises(ValueError, match="LFDNN: y column 'M' has 1 infinite"):
        est.fit(tiny.X("train"), y)


def test_plain_dict_with_disagreeing_sample_counts_is_a_clear_error(tiny):
    X = dict(tiny.X("train"))
    X["vision"] = X["vision"][:-2]
    X["vision_lengths"] = X["vision_lengths"][:-2]
    with pytest.raises(ValueError, match=r"X\['vision'\] has 46 samples but X\['text'\] "
                                         r"has 48"):
        PooledSVR().fit(X, tiny.y("train"))
    X = dict(tiny.X("train"))
    X["audio_lengths"] = X["audio_lengths"][:-1]
    with pytest.raises(ValueError, match=r"X\['audio_lengths'\] must have shape \(48,\)"):
        PooledSVR().fit(X, tiny.y("train"))


def test_lf_dnn_plain_dict_with_disagreeing_sample_counts(tiny):
    pytest.importorskip("torch")
    from simsbench.estimators import LFDNN

    X = dict(tiny.X("train"))
    X["audio"] = X["audio"][:-2]
    est = LFDNN(**LFDNN._tiny_params, random_state=0, n_threads=1)
    with pytest.raises(ValueError, match=r"X\['audio'\] has 46 samples"):
        est.fit(X, tiny.y("train"))


def test_pooled_svr_accepts_a_plain_dict(tiny):
    X, y = dict(tiny.X("train")), tiny.y("train")
    p = PooledSVR().fit(X, y).predict(dict(tiny.X("test")))
    np.testing.assert_array_equal(
        p, PooledSVR().fit(tiny.X("train"), y).predict(tiny.X("test")))
    with pytest.raises(ValueError, match="PooledSVR: y has 47 rows but X has 48"):
        PooledSVR().fit(X, y[:-1])


# ---------------------------------------------------------------------------
# estimator checks

CHECKED = '''
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted


class NoSeed(RegressorMixin, BaseEstimator):
    """Random (the global numpy RNG) without a random_state parameter."""

    def __init__(self, modalities=("text", "audio", "vision")):
        self.modalities = modalities

    def fit(self, X, y):
        self.noise_ = np.random.normal(size=1)[0]
        return self

    def predict(self, X):
        check_is_fitted(self)
        return np.full(len(next(iter(X.values()))), self.noise_, dtype=np.float64)


class NoModalities(RegressorMixin, BaseEstimator):
    """Fine except that it has no ``modalities`` parameter."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        self.c_ = float(np.random.RandomState(self.random_state).normal())
        return self

    def predict(self, X):
        check_is_fitted(self)
        return np.full(len(next(iter(X.values()))), self.c_, dtype=np.float64)


class BrokenValid(NoModalities):
    """Its X_valid path raises a TypeError (a bug): it must not pass."""

    def __init__(self, random_state=None, modalities=("text", "audio", "vision")):
        self.random_state = random_state
        self.modalities = modalities

    def fit(self, X, y, X_valid=None, y_valid=None):
        if X_valid is not None:
            len(None)  # TypeError
        return super().fit(X, y)
'''


@pytest.fixture
def checked(tmp_path, monkeypatch):
    d = tmp_path / "checked"
    d.mkdir()
    (d / "sb_checked_models.py").write_text(CHECKED)
    monkeypatch.syspath_prepend(str(d))
    import importlib

    return importlib.import_module("sb_checked_models")


def test_check_estimator_fails_a_random_estimator_without_random_state(checked, tiny):
    from simsbench.utils.estimator_checks import check_seed_reproducible

    with pytest.raises(AssertionError, match="no random_state parameter"):
        check_seed_reproducible(checked.NoSeed(), tiny)


def test_check_estimator_fails_an_estimator_without_modalities(checked, tiny):
    from simsbench.utils.estimator_checks import check_estimator, check_modality_subsets

    with pytest.raises(AssertionError, match="no 'modalities' parameter"):
        check_modality_subsets(checked.NoModalities(), tiny)
    with pytest.raises(AssertionError, match="modalities"):
        check_estimator(checked.NoModalities(), tiny)


def test_check_estimator_never_refits_after_an_error(checked, tiny):
    from simsbench.utils.estimator_checks import check_estimator

    with pytest.raises(TypeError):
        check_estimator(checked.BrokenValid(), tiny)


def test_check_estimator_still_passes_a_deterministic_seedless_estimator(tiny):
    from simsbench.utils.estimator_checks import check_estimator

    check_estimator(PooledSVR(), tiny)


def test_a_killed_loky_worker_is_a_one_line_error_and_finished_runs_are_kept(tmp_path,
                                                                              monkeypatch):
    # The out-of-memory killer takes a worker: the grid stops with a one-line
    # RunnerError that says what happened; runs already finished keep their
    # records, and the next invocation computes only the rest.
    from simsbench.runner import RunnerError, requests_for, run_grid
    from simsbench.specs import load_estimator_spec, load_task_spec

    code = tmp_path / "code"
    code.mkdir()
    (code / "sb_killer.py").write_text(
        "import os, signal\n"
        "import numpy as np\n"
        "from sklearn.base import BaseEstimator, RegressorMixin\n\n"
        "class Killer(RegressorMixin, BaseEstimator):\n"
        "    def __init__(self, random_state=None, modalities=('text',)):\n"
        "        self.random_state = random_state\n"
        "        self.modalities = modalities\n\n"
        "    def fit(self, X, y):\n"
        "        if os.environ.get('SB_KILL') == str(self.random_state):\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        self.mean_ = float(np.mean(y))\n"
        "        return self\n\n"
        "    def predict(self, X):\n"
        "        n = len(X['text'])\n"
        "        return np.full(n, self.mean_) + np.linspace(-1e-3, 1e-3, n)\n")
    monkeypatch.setenv("PYTHONPATH", str(code))
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "k.toml").write_text('name = "Killer"\nclass = "sb_killer:Killer"\n')
    (tmp_path / "t.toml").write_text(
        'description = "t"\nprotocol = "multimodal"\ndata = "synthetic:sims"\n'
        'labels = ["M"]\nmodalities = ["text"]\nseeds = [1, 2, 3, 4]\nmetrics = ["mae"]\n')
    from simsbench.datasets import make_synthetic_mmsa, write_mmsa

    sup, _ = make_synthetic_mmsa("sims", n_samples=(24, 8, 8), seq_lens=(4, 6, 5),
                                 feature_dims=(6, 3, 4), random_state=0)
    data = str(write_mmsa(sup, tmp_path / "d.pkl"))
    reqs = requests_for([(load_estimator_spec(tmp_path / "k.toml"),
                          load_task_spec(tmp_path / "t.toml"))], data)
    first = run_grid(reqs[:1], tmp_path / "res", progress=False)  # seed 1, in-process
    victim = str(next(p for p in __import__("simsbench.runner", fromlist=["plan_runs"])
                      .plan_runs(reqs, first.data_info)
                      if p.request.seed == 3).run_seed)
    monkeypatch.setenv("SB_KILL", victim)
    with pytest.raises(RunnerError, match="a worker process died .*SIGKILL.* resumes"):
        run_grid(reqs, tmp_path / "res", jobs=2, progress=False)
    monkeypatch.delenv("SB_KILL")
    again = run_grid(reqs, tmp_path / "res", progress=False)
    assert reqs[0].seed == 1 and first.records[0]["key"] in again.cached
    assert all(r["status"] == "ok" for r in again.records)
