"""The Python API of the tables (:mod:`simsbench.suite`), the cheap dataset
kind, and a command line whose parser imports none of the library."""

from __future__ import annotations

import importlib.util

import subprocess
import sys
import textwrap

import pytest

from simsbench.cli import main
from simsbench.datasets import dataset_kind, make_synthetic_mmsa, write_mmsa
from simsbench.results import data_slug, read_data_record


def test_cli_import_and_every_help_import_neither_pandas_nor_sklearn():
    code = textwrap.dedent("""
        import contextlib, io, sys
        import simsbench.cli as cli
        commands = ([], ["list"], ["data"], ["data", "describe"], ["run"], ["table"],
                    ["figure"], ["report"], ["tune"])
        for argv in commands:
            with contextlib.redirect_stdout(io.StringIO()) as out:
                try:
                    cli.main([*argv, "--help"])
                except SystemExit as exc:
                    assert exc.code == 0, (argv, exc.code)
            assert "usage: simsbench" in out.getvalue(), argv
        heavy = ("pandas", "sklearn", "torch", "simsbench.runner", "simsbench.specs",
                 "simsbench.tables")
        loaded = [m for m in heavy if m in sys.modules]
        assert not loaded, loaded
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_run_tables_returns_what_the_cli_prints_and_writes(sims_file, tmp_path, capsys):
    from simsbench.suite import run_tables, table_from_cache
    from simsbench.tables import render

    results = tmp_path / "results"
    seen = []
    result = run_tables("table2", [sims_file], estimators=["svr"], quick=True, tiny=True,
                        results=results, progress=False, on_table=seen.append)
    assert [rt.table.name for rt in result.tables] == ["table2"] == [
        rt.table.name for rt in seen]
    assert (result.failed, result.total) == (0, 1)
    [run] = result.runs
    assert [r["estimator"] for r in run.grid.records] == ["svr"]
    slug = data_slug(sims_file)
    # the data record the grid stored, not a second one
    assert run.data_record == read_data_record(results, slug)
    assert len(list((results / "runs" / slug).glob("_data-*.json"))) == 1
    text = render(result.tables[0])
    assert (results / "tables" / slug / "table2.md").read_text() == text
    assert render(table_from_cache("table2", sims_file, results=results)) == text

    rc = main(["run", "table2", "--data", sims_file, "--estimators", "svr", "--quick",
               "--tiny", "--results", str(results)])
    out, err = capsys.readouterr()
    assert rc == 0 and out == text + "\n"
    assert "1 runs for table2" in err and "0 trained, 1 cached" in err


def test_plan_tables_works_out_each_tables_cells_without_data(monkeypatch):
    from simsbench import suite
    from simsbench.tables import get_table, table_pairs

    def no_loading(spec):
        raise AssertionError(f"{spec} was loaded")

    monkeypatch.setattr("simsbench.datasets._loading.load_dataset", no_loading)
    [grid] = suite.plan_tables("table2")
    assert grid.data == "synthetic:sims" and grid.names == ["table2"]
    assert set(table_pairs(get_table("table2"))) <= set(grid.pairs)
    sims, v2 = suite.plan_tables("tables", ablations=False)
    assert v2.data == "synthetic:simsv2"
    assert v2.names == ["v2-table1", "v2-table2", "v2-table3", "v2-table4", "corrections"]
    assert v2.corrections.kind == "simsv2" and sims.corrections.kind == "sims"
    # a task of the corrections table runs each of its models' configurations
    # (read from the classes: without torch the deep ones cannot be imported,
    # and their cells have no configuration to run)
    if importlib.util.find_spec("torch") is not None:
        assert all("corrected" in v for v in v2.variants.values()) and v2.variants
    else:
        assert all(v == () for v in v2.variants.values())


def test_dataset_kind_of_a_file_is_read_from_the_feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    sup, unl = make_synthetic_mmsa("simsv2", n_samples=(24, 8, 8), seq_lens=(4, 6, 5),
                                   feature_dims=(6, 3, 4), n_unlabelled=8, random_state=0)
    spec = f"{write_mmsa(sup, tmp_path / 'v2.pkl')}+{write_mmsa(unl, tmp_path / 'v2u.pkl')}"
    assert dataset_kind("synthetic:simsv2") == "simsv2"
    assert dataset_kind(spec) == "simsv2"  # loaded (and cached) once

    def no_loading(spec):
        raise AssertionError(f"{spec} was loaded")

    monkeypatch.setattr("simsbench.datasets._loading.load_dataset", no_loading)
    assert dataset_kind(spec) == "simsv2"
    # another cache: nothing recorded, so the data would have to be loaded
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "other"))
    with pytest.raises(AssertionError, match="was loaded"):
        dataset_kind(spec)


def test_package_exposes_run_tables_lazily():
    code = ("import sys, simsbench; assert 'simsbench.suite' not in sys.modules; "
            "from simsbench import run_tables; "
            "assert run_tables.__module__ == 'simsbench.suite'")
    subprocess.run([sys.executable, "-c", code], check=True)
