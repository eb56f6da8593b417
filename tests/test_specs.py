"""Every spec file loads and builds; malformed specs fail naming file and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from simsbench.specs import (
    SpecError,
    canonical,
    default_spec_roots,
    load_estimator_spec,
    load_specs,
    load_task_spec,
    load_task_specs,
    spec_hash,
)
from simsbench.tables import TABLES

ROOT = default_spec_roots()[0]
ESTIMATOR_FILES = sorted((ROOT / "estimators").glob("*.toml"))
TASK_FILES = sorted((ROOT / "tasks").glob("*.toml"))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_spec_folders_are_not_empty():
    assert len(ESTIMATOR_FILES) >= 19
    assert len(TASK_FILES) >= 16


@pytest.mark.parametrize("path", ESTIMATOR_FILES, ids=lambda p: p.stem)
def test_every_estimator_spec_builds(path):
    spec = load_estimator_spec(path)
    try:
        cls = spec.estimator_class()
    except ImportError as exc:  # the model (or torch) is not installed here
        pytest.skip(f"{spec.class_name} not importable: {exc}")
    for kind in ("sims", "simsv2"):
        est = spec.build(kind)
        assert isinstance(est, cls)
        params = est.get_params(deep=False)
        for key, value in spec.overrides(kind).items():
            assert params[key] == value, (path, kind, key)


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: p.stem)
def test_every_task_spec_builds(path):
    for task in load_task_specs(path):
        proto = task.make_protocol()
        assert proto.name == task.protocol
        assert task.seeds == (1, 12, 123, 1234, 12345)
        assert task.metrics


def test_tables_reference_existing_specs():
    specs = load_specs()
    for table in TABLES.values():
        for row in table.rows:
            if row.kind == "result":
                assert row.estimator in specs.estimators, (table.name, row.estimator)
                assert row.task in specs.tasks, (table.name, row.task)
        if table.user_task:
            assert table.user_task in specs.tasks


def test_unknown_top_level_key_names_file_and_key(tmp_path):
    path = _write(tmp_path / "bad.toml", """
        class = "PooledSVR"
        paramz = 3
    """)
    with pytest.raises(SpecError, match=r"bad\.toml: unknown key 'paramz'"):
        load_estimator_spec(path)


def test_unknown_task_key_names_file_and_key(tmp_path):
    path = _write(tmp_path / "t.toml", """
        protocol = "multimodal"
        seed = [1]
    """)
    with pytest.raises(SpecError, match=r"t\.toml: unknown key 'seed'"):
        load_task_spec(path)


def test_nested_table_in_params_is_rejected(tmp_path):
    path = _write(tmp_path / "n.toml", """
        class = "PooledSVR"
        [params.inner]
        C = 1.0
    """)
    with pytest.raises(SpecError, match=r"n\.toml: unknown key 'inner' in \[params\]"):
        load_estimator_spec(path)


def test_unknown_parameter_fails_at_build_naming_file_and_key(tmp_path):
    path = _write(tmp_path / "svr_typo.toml", """
        class = "PooledSVR"
        [simsv2]
        epsilonn = 0.2
    """)
    spec = load_estimator_spec(path)
    spec.build("sims")  # the typo only applies to v2 data
    with pytest.raises(SpecError, match=r"svr_typo\.toml: unknown parameter 'epsilonn'"):
        spec.build("simsv2")


@pytest.mark.parametrize("text, match", [
    ('protocol = "unimodal_own_label"\nmodalities = ["text"]\nlabels = ["M"]', "uses label 'T'"),
    ('protocol = "multimodal"\nmetrics = ["acc9"]', "unknown value"),
    ('protocol = "avmc_ablation"\nvariant = "nope"', "unknown avmc_ablation variant"),
    ('protocol = "multimodal"\nseeds = []', "seeds"),
    ('protocol = "teleport"', "unknown protocol"),
    ('protocol = "multimodal"\nmodalities = ["smell"]', "unknown value"),
])
def test_invalid_task_values(tmp_path, text, match):
    path = _write(tmp_path / "bad_task.toml", text)
    with pytest.raises(SpecError, match=match) as info:
        load_task_spec(path)
    assert "bad_task.toml" in str(info.value)


def test_lists_become_tuples_and_overrides_merge(tmp_path):
    path = _write(tmp_path / "svr_v.toml", """
        name = "SVR (v)"
        class = "PooledSVR"
        [params]
        modalities = ["vision"]
        [simsv2]
        C = 2.0
    """)
    spec = load_estimator_spec(path)
    assert spec.label == "SVR (v)"
    assert spec.overrides("sims") == {"modalities": ("vision",)}
    assert spec.overrides("simsv2") == {"modalities": ("vision",), "C": 2.0}
    assert spec.build("simsv2").get_params()["C"] == 2.0


def test_class_by_import_path(tmp_path):
    path = _write(tmp_path / "ridge.toml", """
        class = "sklearn.linear_model:Ridge"
        [params]
        alpha = 3.0
    """)
    est = load_estimator_spec(path).build()
    assert type(est).__name__ == "Ridge" and est.alpha == 3.0
    bad = _write(tmp_path / "missing.toml", 'class = "no_such_pkg.mod:Thing"\n')
    with pytest.raises(SpecError, match="cannot import estimator module 'no_such_pkg.mod'"):
        load_estimator_spec(bad).build()


def test_canonical_form_is_order_and_container_independent():
    a = {"b": (1, 2), "a": {"y": 1.0, "x": [3]}}
    b = {"a": {"x": (3,), "y": 1}, "b": [1, 2]}
    assert canonical(a) == canonical(b)
    assert spec_hash(a) == spec_hash(b)
    assert spec_hash(a) != spec_hash({**a, "b": (2, 1)})


def test_extra_root_replaces_builtin_spec(tmp_path):
    _write(tmp_path / "estimators" / "svr.toml", """
        name = "My SVR"
        class = "PooledSVR"
        [params]
        C = 10.0
    """)
    specs = load_specs([tmp_path])
    assert specs.estimator("svr").label == "My SVR"
    with pytest.raises(SpecError, match="no such spec directory"):
        load_specs([tmp_path / "absent"])


def test_task_grid_cells_are_the_one_file_tasks(tmp_path):
    """A grid file declares the tasks one file per cell declared before: same
    names, descriptions, cache-key content and run-seed group."""
    grid = _write(tmp_path / "tasks" / "combo.toml", """
        description = "trained on tasks {labels}"
        protocol = "task_combination"
        metrics = ["acc2", "mae"]
        [grid]
        labels = [["M"], ["M", "T", "A"]]
    """)
    single = _write(tmp_path / "one" / "combo_mta.toml", """
        description = "trained on tasks M, T, A"
        protocol = "task_combination"
        labels = ["M", "T", "A"]
        metrics = ["acc2", "mae"]
        seed_group = "combo"
    """)
    cells = load_task_specs(grid)
    assert [t.name for t in cells] == ["combo_m", "combo_mta"]
    assert [t.labels for t in cells] == [("M",), ("M", "T", "A")]
    assert {t.seed_key for t in cells} == {"combo"}
    one = load_task_spec(single)
    assert (cells[1].description, cells[1].canonical(), cells[1].seed_key) == (
        one.description, one.canonical(), one.seed_key)
    specs = load_specs([tmp_path], builtin=False)
    assert specs.grid("combo") == cells
    with pytest.raises(SpecError, match="declares a grid of 2 tasks"):
        load_task_spec(grid)


def test_builtin_grids_keep_the_run_names():
    specs = load_specs()
    assert [t.name for t in specs.grid("sims_tasks")] == [
        f"sims_tasks_{s}" for s in ("m", "mt", "ma", "mv", "mta", "mtv", "mav", "mtav")]
    assert specs.task("simsv2_avmc_no_mixup_a").make_protocol().variant == "no_mixup_a"
    assert specs.task("sims_tasks_mta").description == (
        "CH-SIMS Table 5: MLF-DNN trained on tasks M, T, A, scored on M")


@pytest.mark.parametrize("text, match", [
    ('protocol = "task_combination"\nlabels = ["M"]\n[grid]\nlabels = [["M"]]',
     r"\[grid\] labels: also set outside"),
    ('protocol = "task_combination"\n[grid]\nseeds = [[1]]', r"unknown key 'seeds' in \[grid\]"),
    ('protocol = "task_combination"\n[grid]\nlabels = []', "non-empty list"),
    ('protocol = "task_combination"\ndescription = "{nope}"\n[grid]\nlabels = [["M"]]',
     "'nope'.* is not a \\[grid\\] key"),
    ('protocol = "task_combination"\n[grid]\nlabels = [["T"]]',
     "cell bad_grid_t: .*start with 'M'"),
])
def test_invalid_grid(tmp_path, text, match):
    path = _write(tmp_path / "bad_grid.toml", text)
    with pytest.raises(SpecError, match=match) as info:
        load_task_specs(path)
    assert "bad_grid.toml" in str(info.value)
