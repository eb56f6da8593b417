"""The command line end to end on tiny data: every table, cached reruns,
LaTeX output, a user's estimator by import path, one-line errors, and no
torch import outside ``run``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simsbench.cli import main
from simsbench.datasets import make_synthetic_mmsa, write_mmsa
from simsbench.specs import default_spec_roots
from simsbench.tables import TABLES

BUILTIN = default_spec_roots()[0]
# Built-in specs used as they are in the end-to-end run (LF-DNN is the one
# deep model, when torch is installed); MLF-DNN, EF-LSTM and AV-MC rows are
# played by fast stand-ins below, every other row stays empty ("not run
# yet"), so this test checks the pipeline, not the models' speed.
FAST = ("svr", "svr_text", "svr_audio", "svr_vision", "lf_dnn")

STAND_INS = '''
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

from simsbench.estimators import ModalityPooler


class FastSingle(RegressorMixin, BaseEstimator):
    def __init__(self, modalities=("text", "audio", "vision"), random_state=None):
        self.modalities = modalities
        self.random_state = random_state

    def fit(self, X, y, X_valid=None, y_valid=None):
        y = np.asarray(y, dtype=float)
        y = y if y.ndim == 1 else y[:, 0]
        keep = ~np.isnan(y)
        self.pool_ = ModalityPooler(self.modalities).fit(X)
        self.ridge_ = Ridge(alpha=10.0).fit(self.pool_.transform(X)[keep], y[keep])
        return self

    def predict(self, X):
        return self.ridge_.predict(self.pool_.transform(X))


class FastMultiTask(FastSingle):
    def __init__(self, modalities=("text", "audio", "vision"), random_state=None,
                 tasks=("T", "A", "V"), mixup_audio=True, mixup_vision=True):
        super().__init__(modalities, random_state)
        self.tasks = tasks
        self.mixup_audio = mixup_audio
        self.mixup_vision = mixup_vision

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
'''


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_data")
    sup, _ = make_synthetic_mmsa("sims", n_samples=(48, 16, 16), seq_lens=(6, 10, 8),
                                 feature_dims=(16, 5, 7), random_state=2)
    sims = write_mmsa(sup, d / "sims_tiny.pkl")
    sup, unl = make_synthetic_mmsa("simsv2", n_samples=(48, 16, 16), seq_lens=(6, 10, 8),
                                   feature_dims=(16, 5, 7), n_unlabelled=16, random_state=2)
    v2 = write_mmsa(sup, d / "v2_tiny.pkl")
    v2u = write_mmsa(unl, d / "v2_tiny_u.pkl")
    return str(sims), f"{v2}+{v2u}"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Fast spec root, private caches; returns the results directory."""
    root = tmp_path / "specs"
    shutil.copytree(BUILTIN / "tasks", root / "tasks")
    (root / "estimators").mkdir()
    for name in FAST:
        shutil.copy(BUILTIN / "estimators" / f"{name}.toml", root / "estimators")
    code = tmp_path / "stand_ins"
    code.mkdir()
    (code / "sb_cli_stand_ins.py").write_text(STAND_INS)
    monkeypatch.syspath_prepend(str(code))
    for name, cls in (("mlf_dnn", "FastMultiTask"), ("avmc", "FastMultiTask"),
                      ("ef_lstm", "FastSingle")):
        (root / "estimators" / f"{name}.toml").write_text(
            f'name = "{name} stand-in"\nclass = "sb_cli_stand_ins:{cls}"\n')
    monkeypatch.setenv("SIMSBENCH_SPECS", str(root))
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "results"


def _run(capsys, *args) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_run_tables_quick_renders_every_table_then_trains_nothing(env, data_files, capsys):
    sims, v2 = data_files
    args = ["run", "tables", "--quick", "--tiny", "--data", sims, "--data", v2,
            "--results", str(env)]
    rc, out1, err1 = _run(capsys, *args)
    assert rc == 0, err1
    for table in TABLES.values():
        assert f"[{table.name}]" in out1
    assert re.search(r"\| SVR +\| simsbench \| \d+\.\d\d ", out1)
    assert re.search(r"\| M, T, A, V +\| simsbench \| \d+\.\d\d", out1)
    assert "not run yet" in out1  # rows whose spec is absent say so
    assert " trained, 0 cached" in err1

    rc, out2, err2 = _run(capsys, *args)
    assert rc == 0
    assert out2 == out1
    assert len(re.findall(r": 0 trained, [1-9]\d* cached", err2)) == 2
    for slug in ("sims_tiny", "v2_tiny+v2_tiny_u"):
        files = {p.name for p in (env / "tables" / slug).iterdir()}
        assert {"table2.md", "table2.tex", "table2.csv"} <= files or {
            "v2-table2.md", "v2-table2.tex"} <= files

    rc, tex, _ = _run(capsys, "table", "table2", "--data", sims, "--format", "latex",
                      "--results", str(env))
    assert rc == 0
    assert "\\begin{tabular}" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    rc, md, _ = _run(capsys, "table", "v2-table4", "--data", v2, "--results", str(env))
    assert rc == 0 and "w/o Mixup-AV & Unimodal tasks" in md


USER_MODEL = '''
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

from simsbench.estimators import ModalityPooler


class PooledRidge(RegressorMixin, BaseEstimator):
    """A user's own model: ridge regression on pooled features."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, X, y):
        y = np.asarray(y)
        self.pool_ = ModalityPooler().fit(X)
        self.ridge_ = Ridge(alpha=self.alpha).fit(self.pool_.transform(X),
                                                  y if y.ndim == 1 else y[:, 0])
        return self

    def predict(self, X):
        return self.ridge_.predict(self.pool_.transform(X))
'''


def test_user_estimator_by_import_path_is_a_row_of_table2(env, data_files, tmp_path,
                                                          monkeypatch, capsys):
    sims, _ = data_files
    mods = tmp_path / "user_code"
    mods.mkdir()
    (mods / "my_sentiment_models.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(mods))
    user_specs = tmp_path / "user_specs" / "estimators"
    user_specs.mkdir(parents=True)
    (user_specs / "pooled_ridge.toml").write_text(textwrap.dedent('''
        name = "Pooled ridge (mine)"
        class = "my_sentiment_models:PooledRidge"
        tables = ["table2"]
        [params]
        alpha = 10.0
    '''))
    rc, out, err = _run(capsys, "run", "table2", "--quick", "--data", sims, "--specs",
                        str(user_specs.parent), "--results", str(env), "--no-paper")
    assert rc == 0, err
    row = next(ln for ln in out.splitlines() if ln.startswith("| Pooled ridge (mine)"))
    assert re.search(r"\| \d+\.\d\d ", row) and "n/a" not in row
    # ... and it stays there when rendering from the cache.
    rc, out, _ = _run(capsys, "table", "table2", "--data", sims, "--results", str(env))
    assert "Pooled ridge (mine)" in out


def test_run_only_some_estimators_and_seeds(env, data_files, capsys, tmp_path):
    sims, _ = data_files
    results = tmp_path / "results"
    rc, out, err = _run(capsys, "run", "table2", "--tiny", "--data", sims, "--estimators",
                        "svr,svr_text", "--seeds", "7,8", "--results", str(results),
                        "--no-paper")
    assert rc == 0, err
    assert "4 runs for table2" in err and "4 trained" in err
    from simsbench.results import read_records

    recs = read_records(results)
    assert sorted((r["estimator"], r["seed"]) for r in recs) == [
        ("svr", 7), ("svr", 8), ("svr_text", 7), ("svr_text", 8)]
    row = next(ln for ln in out.splitlines() if ln.startswith("| SVR"))
    assert re.search(r"\| \d+\.\d\d ", row)


def test_data_describe(env, data_files, capsys):
    sims, v2 = data_files
    rc, out, _ = _run(capsys, "data", "describe", sims, "--results", str(env))
    assert rc == 0
    assert "[table3]" in out and re.search(r"\| Train \| simsbench \| 48 ", out)
    assert "D_ij" in out and "Label histograms" in out
    rc, out, _ = _run(capsys, "data", "describe", v2, "--results", str(env))
    assert rc == 0 and "[v2-table1]" in out and "WNEG" in out


@pytest.mark.parametrize("args, message", [
    (["run", "table9"], "unknown table 'table9'"),
    (["run", "table2", "--data", "/nonexistent/x.pkl"], "no such feature file"),
    (["run", "table2", "--data", "synthetic:mosi"], "unknown synthetic dataset"),
    (["run", "table2", "--jobs", "0"], "--jobs must be >= 1"),
    (["run", "table2", "--threads", "0"], "--threads must be >= 1"),
    (["run", "table2", "--backend", "lokyy"], "--backend: unknown backend 'lokyy'"),
    (["run", "table2", "--estimators", "lf_dnn,nope"], "unknown estimator spec 'nope'"),
    (["run", "table2", "--seeds", "1,x"], "--seeds: comma-separated integers"),
    (["table", "table2"], "no records for synthetic:sims"),
    (["table", "nope"], "unknown table 'nope'"),
])
def test_bad_input_is_one_line(env, capsys, args, message):
    rc, out, err = _run(capsys, *args, "--results", str(env))
    assert rc == 2
    errors = [ln for ln in err.splitlines() if ln.startswith("simsbench: error: ")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0]
    assert message in errors[0] and "Traceback" not in err


def test_unknown_spec_key_is_one_line_naming_file_and_key(env, tmp_path, capsys):
    bad = tmp_path / "bad_specs" / "estimators"
    bad.mkdir(parents=True)
    (bad / "typo.toml").write_text('class = "PooledSVR"\nparms = 1\n')
    rc, _, err = _run(capsys, "list", "--specs", str(bad.parent))
    assert rc == 2 and err.count("\n") == 1
    assert "typo.toml: unknown key 'parms'" in err


def _fresh(code: str, env_vars: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env_vars}, timeout=120)


def test_list_table_and_describe_do_not_import_torch(env, data_files, capsys):
    sims, _ = data_files
    assert _run(capsys, "run", "table3", "--data", sims, "--results", str(env))[0] == 0
    code = textwrap.dedent(f"""
        import sys
        from simsbench.cli import main
        assert main(["list"]) == 0
        assert main(["data", "describe", {sims!r}, "--results", {str(env)!r}]) == 0
        assert main(["table", "table3", "--data", {sims!r}, "--results", {str(env)!r}]) == 0
        assert main(["table", "table2", "--data", {sims!r}, "--results", {str(env)!r}]) == 0
        try:
            main(["--help"])
        except SystemExit:
            pass
        assert "torch" not in sys.modules, "torch was imported"
    """)
    proc = _fresh(code, {"SIMSBENCH_SPECS": os.environ["SIMSBENCH_SPECS"],
                         "SIMSBENCH_CACHE_DIR": os.environ["SIMSBENCH_CACHE_DIR"]})
    assert proc.returncode == 0, proc.stderr
    assert "[table3]" in proc.stdout and "usage: simsbench" in proc.stdout


def test_python_m_simsbench():
    proc = subprocess.run([sys.executable, "-m", "simsbench", "--version"],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0 and proc.stdout.startswith("simsbench ")


def test_variants_and_the_corrections_table(env, data_files, capsys):
    """Paper tables name their configuration; --variant corrected renders the
    corrected one; 'run corrections' renders the corrections table (LF-DNN,
    the one deep model of the fast spec set)."""
    pytest.importorskip("torch")
    sims, _ = data_files
    common = ["--quick", "--tiny", "--data", sims, "--results", str(env),
              "--estimators", "lf_dnn"]
    rc, out, err = _run(capsys, "run", "table2", *common)
    assert rc == 0, err
    assert "> Configuration: reference implementation" in out
    rc, out, err = _run(capsys, "run", "table2", "--variant", "corrected", *common)
    assert rc == 0, err
    assert "> Configuration: corrected" in out
    assert re.search(r"\| LF-DNN +\| simsbench \| \d+\.\d\d", out)
    files = {p.name for p in (env / "tables" / "sims_tiny").iterdir()}
    assert {"table2.md", "table2-corrected.md"} <= files
    rc, out, err = _run(capsys, "run", "corrections", *common)
    assert rc == 0, err
    assert "[corrections]" in out and "> LF-DNN / selection:" in out
    assert "> LF-DNN / pooling:" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("| LF-DNN")]
    labels = [ln.split("|")[2].strip() for ln in lines]
    assert labels[:4] == ["reference", "corrected", "Δ corrected - reference",
                          "p (paired t, n=1)"]
    assert "Δ pooling - reference" in labels and "Δ text_dropout - reference" in labels
    assert "corrections.md" in {p.name for p in (env / "tables" / "sims_tiny").iterdir()}
    rc, md, _ = _run(capsys, "table", "corrections", "--data", sims, "--results", str(env))
    assert rc == 0 and "Δ corrected - reference" in md
    assert "> LF-DNN / pooling:" in md  # the corrections' documentation, from the records
