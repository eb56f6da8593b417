"""``simsbench tune``: the [search] tables, scikit-learn's sampler, selection
on the validation split only, cached and resumable trials, the tuned spec as a
table row, and the selection-on-test (optimism) report."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import ParameterSampler

import simsbench.datasets as sb_datasets
from simsbench.cli import main
from simsbench.datasets import MultimodalDataset, make_synthetic_mmsa, write_mmsa
from simsbench.results import read_records
from simsbench.specs import SpecError, default_spec_roots, load_estimator_spec, load_specs
from simsbench.estimators._constraints import validate_params
from simsbench.tune import (
    TUNE_TASK_SUFFIX,
    estimator_spec_toml,
    rank_trials,
    sample_configurations,
    search_space,
    tune,
)

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = default_spec_roots()[0]
REQUIRED = ("lf_dnn", "lmf", "tfn", "ef_lstm", "mlf_dnn")

STAND_IN = '''
import time

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

from simsbench.estimators import ModalityPooler


class SlowRidge(RegressorMixin, BaseEstimator):
    """Ridge on pooled features; ``delay`` seconds of fitting, for the
    kill-and-resume test."""

    def __init__(self, alpha=1.0, delay=0.0, random_state=None):
        self.alpha = alpha
        self.delay = delay
        self.random_state = random_state

    def fit(self, X, y, X_valid=None, y_valid=None):
        time.sleep(self.delay)
        y = np.asarray(y, dtype=float)
        self.pool_ = ModalityPooler().fit(X)
        self.ridge_ = Ridge(alpha=self.alpha).fit(self.pool_.transform(X), y)
        return self

    def predict(self, X):
        return self.ridge_.predict(self.pool_.transform(X))
'''

RIDGE_SPEC = '''
name = "Pooled ridge"
class = "sb_tune_stand_ins:SlowRidge"
[params]
delay = {delay}
[search]
alpha = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
'''


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def sims_file(tmp_path_factory):
    """The CLI tests' smallest data: 48/16/16 clips."""
    d = tmp_path_factory.mktemp("tune_data")
    sup, _ = make_synthetic_mmsa("sims", n_samples=(48, 16, 16), seq_lens=(6, 10, 8),
                                 feature_dims=(16, 5, 7), random_state=2)
    return str(write_mmsa(sup, d / "sims_tiny.pkl"))


@pytest.fixture
def ridge(tmp_path, monkeypatch):
    """A spec root with a fast stand-in estimator; returns (root, code dir)."""
    code = tmp_path / "stand_ins"
    _write(code / "sb_tune_stand_ins.py", STAND_IN)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "specs"
    _write(root / "estimators" / "ridge.toml", RIDGE_SPEC.format(delay=0.0))
    return root, code


def _run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------------------
# the [search] table and the sampler

def test_search_table_forms_parse_and_sample(tmp_path):
    path = _write(tmp_path / "estimators" / "x.toml", '''
        class = "LFDNN"
        [search]
        learning_rate = {dist = "loguniform", low = 1e-4, high = 1e-2}
        hidden_dims = [[128, 16, 128], [64, 16, 64]]
        dropouts = {elements = [[0.1, 0.2], [0.3], {dist = "uniform", low = 0, high = 0.5}]}
        "text_out+post_fusion_dim" = [[32, 16], [64, 128]]
    ''')
    spec = load_estimator_spec(path)
    assert spec.search["hidden_dims"] == [(128, 16, 128), (64, 16, 64)]
    space = search_space(spec)
    assert set(space) == {"learning_rate", "hidden_dims", "dropouts[0]", "dropouts[1]",
                          "dropouts[2]", "text_out+post_fusion_dim"}
    configs = sample_configurations(spec, 40, random_state=1)
    assert len(configs) == 40
    for c in configs:
        assert 1e-4 <= c["learning_rate"] <= 1e-2 and isinstance(c["learning_rate"], float)
        assert c["hidden_dims"] in {(128, 16, 128), (64, 16, 64)}
        d = c["dropouts"]
        assert isinstance(d, tuple) and len(d) == 3
        assert d[0] in (0.1, 0.2) and d[1] == 0.3 and 0 <= d[2] <= 0.5
        assert (c["text_out"], c["post_fusion_dim"]) in {(32, 16), (64, 128)}
    # Every element is drawn on its own: both values of each list turn up.
    assert {c["dropouts"][0] for c in configs} == {0.1, 0.2}
    assert len({round(c["learning_rate"], 9) for c in configs}) == 40


@pytest.mark.parametrize("body, message", [
    ("lr = []", "[search] lr: a non-empty list"),
    ("lr = 0.1", "[search] lr: a non-empty list"),
    ("lr = {low = 1, high = 2}", "[search] lr: a distribution needs dist"),
    ('lr = {dist = "uniform", low = [1]}', "distribution argument 'low' must be a number"),
    ('"a+b" = [[1, 2], [3]]', "[search] a+b: every candidate must be a list of 2 values"),
    ("w = {elements = []}", "[search] w: elements must be a non-empty list"),
    ("w = {elements = [[1]], extra = 1}", "has no other keys"),
    ("w = {elements = [[1], []]}", "[search] w element 1: a non-empty list"),
])
def test_malformed_search_names_file_and_key(tmp_path, body, message):
    path = _write(tmp_path / "bad.toml", f'class = "LFDNN"\n[search]\n{body}\n')
    with pytest.raises(SpecError) as info:
        load_estimator_spec(path)
    assert "bad.toml" in str(info.value) and message in str(info.value)


def test_bad_distribution_and_unknown_parameter_fail_when_tuning(tmp_path):
    path = _write(tmp_path / "d.toml", 'class = "LFDNN"\n[search]\n'
                  'lr = {dist = "no_such_dist"}\n')
    with pytest.raises(SpecError, match=r"d.toml: \[search\] lr: unknown distribution"):
        search_space(load_estimator_spec(path))
    path = _write(tmp_path / "e.toml", 'class = "LFDNN"\n[search]\n'
                  'lr = {dist = "loguniform", low = 0.0, high = 1.0}\n')
    with pytest.raises(SpecError, match="loguniform needs low > 0"):
        search_space(load_estimator_spec(path))
    path = _write(tmp_path / "f.toml", 'class = "LFDNN"\n[search]\n'
                  'lr = {dist = "uniform", high = 1.0}\n')
    with pytest.raises(SpecError, match=r"f.toml: \[search\] lr: uniform needs both low"):
        search_space(load_estimator_spec(path))


def test_sampler_is_sklearns_with_a_fixed_random_state():
    spec = load_specs().estimator("lf_dnn")
    direct = list(ParameterSampler(search_space(spec), n_iter=5, random_state=3))
    ours = sample_configurations(spec, 5, random_state=3)
    assert ours == [{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
                    for d in direct]
    assert sample_configurations(spec, 5, random_state=3) == ours
    assert sample_configurations(spec, 5, random_state=4) != ours
    # A longer study starts with the shorter one's configurations.
    assert sample_configurations(spec, 50, random_state=3)[:5] == ours
    # The list-only space is sampled without replacement: no repeats.
    fifty = sample_configurations(spec, 50, random_state=0)
    assert len({json.dumps(c, sort_keys=True) for c in fifty}) == 50


def test_builtin_specs_carry_the_reference_ranges():
    specs = load_specs()
    for name in REQUIRED:
        assert specs.estimator(name).search, name
    lf = specs.estimator("lf_dnn").search
    # MMSA config_tune.json "lf_dnn".
    assert lf["learning_rate"] == [5e-4, 1e-3, 2e-3, 5e-3]
    assert lf["weight_decay"] == [0.0, 1e-3, 5e-3, 1e-2]
    assert len(lf["hidden_dims"]) == 5
    assert len(specs.estimator("mlf_dnn").search["loss_weights"]["elements"]) == 4


@pytest.mark.parametrize("name", sorted(
    p.stem for p in (BUILTIN / "estimators").glob("*.toml")
    if load_estimator_spec(p).search))
def test_every_builtin_search_samples_buildable_configurations(name):
    spec = load_specs().estimator(name)
    try:
        spec.estimator_class()
    except ImportError as exc:
        pytest.skip(f"{spec.class_name} not importable: {exc}")
    for kind in ("sims", "simsv2"):
        for params in sample_configurations(spec, 10, random_state=0):
            est = spec.build(kind, params)
            got = est.get_params(deep=False)
            assert all(got[k] == v for k, v in params.items())
            validate_params(est)  # every drawn value within the declared constraints


def test_rank_trials_follows_cv_results():
    scores = np.array([[0.5, 0.7], [0.4, 0.4], [0.3, np.nan], [0.6, 0.2], [0.45, 0.35]])
    low = rank_trials(scores, greater_is_better=False)
    np.testing.assert_allclose(low["mean"][[0, 1, 3, 4]], [0.6, 0.4, 0.4, 0.4])
    assert np.isnan(low["mean"][2]) and np.isnan(low["std"][2])
    assert low["rank"].tolist() == [4, 1, 5, 1, 1]  # ties share the lowest rank
    high = rank_trials(scores, greater_is_better=True)
    assert high["rank"].tolist() == [1, 2, 5, 2, 2]


def test_tuned_spec_toml_round_trips(tmp_path):
    spec = load_specs().estimator("mult")
    spec = dataclasses.replace(
        spec, name="m", params={"learning_rate": 1e-3, "kernel_sizes": (5, 3, 1)},
        per_kind={"sims": {"d_model": 30, "attn_mask": True}}, tables=("table2",),
        description='with "quotes"')
    text = estimator_spec_toml(spec, header="line one\n\nline three")
    assert text.startswith("# line one\n#\n# line three\n")
    back = load_estimator_spec(_write(tmp_path / "m.toml", text))
    for attr in ("label", "class_name", "params", "per_kind", "tables", "description",
                 "search"):
        assert getattr(back, attr) == getattr(spec, attr), attr


# ---------------------------------------------------------------------------
# the study

def _hide_test_labels(monkeypatch):
    real = sb_datasets.load_dataset

    def load(spec):
        ds = real(spec)
        splits = dict(ds.splits)
        test = splits["test"]
        splits["test"] = dataclasses.replace(
            test, labels={k: np.full_like(v, np.nan) for k, v in test.labels.items()})
        return MultimodalDataset(splits=splits, name=ds.name, kind=ds.kind,
                                 description=ds.description + " [test labels hidden]",
                                 label_range=ds.label_range)

    monkeypatch.setattr(sb_datasets, "load_dataset", load)


def test_selection_never_reads_test_labels(ridge, sims_file, tmp_path, monkeypatch):
    root, _ = ridge
    spec = load_estimator_spec(root / "estimators" / "ridge.toml")
    task = load_specs().task("sims_multimodal")
    kw = dict(n_trials=8, seeds=(1, 2), progress=False)
    seen = tune(spec, task, sims_file, results_dir=tmp_path / "seen", **kw)
    assert "Optimism of the selection on test" in seen.report
    _hide_test_labels(monkeypatch)
    hidden = tune(spec, task, sims_file, results_dir=tmp_path / "hidden", **kw)
    # Same trials, same validation scores, same choice: the test labels
    # played no part; the spec is written all the same.
    assert hidden.data_info["fingerprint"] != seen.data_info["fingerprint"]
    assert hidden.configurations == seen.configurations
    np.testing.assert_array_equal(hidden.valid, seen.valid)
    assert hidden.best == seen.best
    assert hidden.spec_path.is_file()
    assert load_estimator_spec(hidden.spec_path).per_kind["sims"] == \
        load_estimator_spec(seen.spec_path).per_kind["sims"]
    recs = read_records(tmp_path / "hidden")
    assert recs and all(r["test_labels"] == "missing" for r in recs)
    assert all(r["scores"]["mae"] is None and r["valid_scores"]["mae"] > 0 for r in recs)
    assert "The test split has no labels: the test rows are n/a." in hidden.report


def test_optimism_rows_measure_selection_on_test(ridge, sims_file, tmp_path):
    root, _ = ridge
    spec = load_estimator_spec(root / "estimators" / "ridge.toml")
    task = load_specs().task("sims_multimodal")
    res = tune(spec, task, sims_file, n_trials=8, seeds=(1, 2), progress=False,
               results_dir=tmp_path)
    test = np.array([[r["scores"]["mae"] for r in row] for row in res.records]).mean(axis=1)
    first = np.array([row[0]["scores"]["mae"] for row in res.records])
    table = res.report.split("## Selection on test")[1]

    def row(label):
        return next(ln for ln in table.splitlines() if ln.startswith(f"| {label}"))

    mae_col = 3 + list(res.metrics).index("mae")
    chosen_on_test = int(np.argmin(test))
    assert row("on validation").split("|")[3].strip() == str(res.best)
    assert row("on test, mean").split("|")[3].strip() == str(chosen_on_test)
    assert float(row("on test, mean").split("|")[mae_col + 1]) == pytest.approx(
        test.min(), abs=1e-4)
    assert float(row("on test, first").split("|")[mae_col + 1]) == pytest.approx(
        first.min(), abs=1e-4)
    assert float(row("on validation").split("|")[mae_col + 1]) == pytest.approx(
        test[res.best], abs=1e-4)
    # Selecting on test can only make the reported test MAE look better.
    gain = float(re.search(r"mean of seeds \(ch-sims-v2 repo\): .* by (\d\.\d+)",
                           table).group(1))
    assert gain == pytest.approx(test[res.best] - test.min(), abs=1e-4) and gain >= 0
    csv = (tmp_path / "tuned" / "sims_tiny" / "studies" / "ridge_tuned.csv").read_text()
    assert csv.splitlines()[0].startswith("trial,rank_valid_mae,mean_valid_mae,std_valid_mae,"
                                          "seed1_valid_mae,seed2_valid_mae,param_alpha")
    assert len(csv.splitlines()) == 9


def test_tune_lf_dnn_quick_writes_spec_then_trains_nothing(sims_file, tmp_path, capsys,
                                                          monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    results = tmp_path / "results"
    args = ["tune", "lf_dnn", "--trials", 4, "--quick", "--data", sims_file,
            "--results", results]
    rc, out1, err1 = _run(capsys, *args)
    assert rc == 0, err1
    assert "4 run(s) trained, 0 cached" in err1
    spec_path = results / "tuned" / "sims_tiny" / "estimators" / "lf_dnn_tuned.toml"
    spec = load_estimator_spec(spec_path)
    assert spec.class_name == "LFDNN" and spec.tables == ("table2",)
    assert spec.label == "LF-DNN (tuned)"
    recs = read_records(results, "sims_tiny")
    assert len(recs) == 4
    assert {r["task"] for r in recs} == {"sims_multimodal" + TUNE_TASK_SUFFIX}
    assert all(r["status"] == "ok" and set(r["valid_scores"]) == set(r["scores"])
               and r["n_valid"] == 16 for r in recs)
    # The winner's sampled values are in the spec.
    best = min(recs, key=lambda r: r["valid_scores"]["mae"])
    for key in ("learning_rate", "batch_size", "weight_decay"):
        assert spec.per_kind["sims"][key] == best["params"][key]
    text = spec_path.read_text()

    rc, out2, err2 = _run(capsys, *args)
    assert rc == 0 and "0 run(s) trained, 4 cached" in err2
    assert out2 == out1.replace("4 computed, 0 cached", "0 computed, 4 cached")
    assert spec_path.read_text() == text

    # The tuned spec is a row of table2, beside the default.
    rc, out, err = _run(capsys, "run", "table2", "--quick", "--data", sims_file,
                        "--specs", spec_path.parent.parent, "--estimators",
                        "lf_dnn,lf_dnn_tuned", "--results", results, "--no-paper")
    assert rc == 0, err
    for label in ("LF-DNN ", "LF-DNN (tuned)"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"| {label}"))
        assert re.search(r"\| \d+\.\d\d ", line), line
    # Without --specs, the error says where the tuned spec is.
    rc, _, err = _run(capsys, "run", "table2", "--data", sims_file, "--estimators",
                      "lf_dnn_tuned", "--results", results)
    assert rc == 2 and f"add --specs {spec_path.parent.parent}" in err


def test_estimators_adds_a_spec_without_tables_as_an_extra_row(ridge, sims_file, tmp_path,
                                                               capsys):
    root, _ = ridge
    rc, out, err = _run(capsys, "run", "table2", "--data", sims_file, "--seeds", "1",
                        "--specs", root, "--estimators", "svr,ridge",
                        "--results", tmp_path / "r", "--no-paper")
    assert rc == 0, err
    assert "2 runs for table2" in err
    line = next(ln for ln in out.splitlines() if ln.startswith("| Pooled ridge"))
    assert re.search(r"\| \d+\.\d\d ", line)


@pytest.mark.parametrize("args, message", [
    (["tune", "svr"], "no [search] table"),
    (["tune", "nope"], "unknown estimator spec 'nope'"),
    (["tune", "ridge", "--metric", "acc7"], "--metric: 'acc7' is not scored by task"),
    (["tune", "ridge", "--trials", "0"], "--trials must be >= 1"),
    (["tune", "ridge", "--seeds", "a"], "--seeds: comma-separated integers"),
    (["tune", "ridge", "--out", "x.txt"], "--out: a .toml file name expected"),
])
def test_bad_tune_input_is_one_line(ridge, sims_file, tmp_path, capsys, args, message):
    root, _ = ridge
    rc, _, err = _run(capsys, *args, "--data", sims_file, "--specs", root, "--results",
                      tmp_path / "r", "--quiet")
    assert rc == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("simsbench: error: ") and message in lines[-1], err
    assert "Traceback" not in err


def test_killed_tune_resumes_without_recomputing_finished_trials(ridge, sims_file, tmp_path,
                                                                 capsys):
    root, code = ridge
    _write(root / "estimators" / "ridge.toml", RIDGE_SPEC.format(delay=0.4))
    results = tmp_path / "results"
    args = ["tune", "ridge", "--trials", "6", "--seeds", "1", "--data", sims_file,
            "--specs", str(root), "--results", str(results)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(code)])}
    proc = subprocess.Popen([sys.executable, "-m", "simsbench", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = results / "runs" / "sims_tiny"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if runs.is_dir() and any(not p.name.startswith(("_", ".")) for p in runs.iterdir()):
                break
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    finished = {p.name: p.read_text() for p in runs.glob("*.json")
                if not p.name.startswith("_")}
    assert 1 <= len(finished) < 6, "the study was not killed mid-way"

    rc, _, err = _run(capsys, *args)
    assert rc == 0, err
    assert f"{6 - len(finished)} run(s) trained, {len(finished)} cached" in err
    for name, text in finished.items():
        assert (runs / name).read_text() == text  # not recomputed, not rewritten
    assert len([p for p in runs.glob("*.json") if not p.name.startswith("_")]) == 6


def test_runs_score_the_validation_split_too(tiny):
    from simsbench.estimators import PooledSVR
    from simsbench.metrics import mae
    from simsbench.protocols import get_protocol

    est = PooledSVR()
    info = get_protocol("unimodal_own_label", modalities="text").evaluate(
        est, tiny, ("acc2", "mae"))
    assert set(info["valid_scores"]) == {"acc2", "mae"} and info["n_valid"] == 16
    X_valid = tiny.X("valid", ("text",))
    assert info["valid_scores"]["mae"] == pytest.approx(
        mae(tiny.y("valid", "T"), est.predict(X_valid)))
    assert info["valid_scores"] != info["metrics"] and "test_labels" not in info
