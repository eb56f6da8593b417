"""The benchmark scripts' arithmetic floor and suite projection, on tiny inputs."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def training():
    return _module("bench_training")


@pytest.fixture(scope="module")
def suite():
    return _module("bench_suite")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_lstm_flops_equal_the_decomposed_count(training, bidirectional):
    # torch runs an unpacked CPU LSTM as one oneDNN kernel that the stock
    # counter misses; a packed one decomposes into counted matrix products.
    # With every sequence at full length both do the same arithmetic.
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence

    lstm = torch.nn.LSTM(6, 5, num_layers=2, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(3, 7, 6, requires_grad=True)
    counts = []
    for packed in (False, True):
        inp = pack_padded_sequence(x, torch.full((3,), 7), batch_first=True) if packed else x
        with training.flop_counter() as fc:
            out, _ = lstm(inp)
            (out.data if packed else out).sum().backward()
        counts.append(fc.get_total_flops())
    assert counts[0] > 0
    assert counts[0] == counts[1]


def test_matmul_rate_and_floor(training):
    pytest.importorskip("torch")
    rate = training.matmul_rate(1, sizes=(32, 64), seconds=0.01)
    assert set(rate["per_size"]) == {32, 64}
    assert rate["flops_per_s"] == max(rate["per_size"].values()) > 0
    row = training.floor_row(3.0, 2e9, 1e9)
    assert row == {"floor_s": 2.0, "x_floor": 1.5}


def test_worker_counts_one_epoch_and_times_the_others(training, mmsa_pickle, tmp_path):
    # the whole measuring path, in process, on a tiny MMSA file
    pytest.importorskip("torch")
    from skorch import NeuralNet

    path, _ = mmsa_pickle
    begin = NeuralNet.on_epoch_begin
    res = training.worker("LFDNN", "sims", str(path), None, str(tmp_path / "cache"),
                          2, 1, True, False)
    assert NeuralNet.on_epoch_begin is begin  # the counting hooks are gone
    assert res["epochs"] == 3 and res["timed_epochs"] == 2
    assert len(res["s_per_epoch"]) == 2 and res["mean_s_per_epoch"] > 0
    assert res["flops_per_epoch"] > 0 and res["matmul"]["flops_per_s"] > 0
    assert res["peak_mb"] >= res["data_mb"] > 0
    text = training.row_text({**res, **training.floor_row(res["mean_s_per_epoch"],
                                                           res["flops_per_epoch"], 1e9)},
                             None, 2.0)
    assert "quoted, not measured here" in text and "load" in text


def test_plan_suite_comes_from_the_table_layouts(suite):
    from simsbench.runner import correction_variants
    from simsbench.specs import load_specs
    from simsbench.tables import get_table, table_pairs

    runs = suite.plan_suite()
    idents = [(r["data"], r["estimator"], r["task"], r["seed"], r["variant"]) for r in runs]
    assert len(idents) == len(set(idents))
    specs = load_specs()
    seeds = Counter((r["estimator"], r["task"], r["variant"]) for r in runs
                    if r["kind"] == "sims")
    for est, task in table_pairs(get_table("table2")):
        assert seeds[(est, task, "reference")] == len(specs.task(task).seeds)
    # the corrections table adds the corrected configurations, on its task only
    # (read from the model classes: without torch the deep ones do not import)
    corrected = {(r["estimator"], r["task"]) for r in runs if r["variant"] != "reference"}
    if importlib.util.find_spec("torch") is None:
        assert not corrected
        return
    assert corrected
    assert {t for _e, t in corrected} <= {"sims_multimodal", "simsv2_multimodal"}
    for est, _task in corrected:
        assert "corrected" in correction_variants(specs.estimator(est))
    # a run two tables show is planned once, under both
    shared = [r for r in runs if len(r["tables"]) > 1]
    assert all(r["table"] == r["tables"][0] for r in shared)


def test_list_schedule_follows_the_order(suite):
    assert suite.list_schedule([5, 1, 1, 1, 1, 1], 2) == 5
    assert suite.list_schedule([1, 1, 1, 1, 1, 5], 2) == 7
    assert suite.list_schedule([5, 1], 1) == 6
    assert suite.list_schedule([], 2) == 0.0
    with pytest.raises(ValueError, match="jobs"):
        suite.list_schedule([1], 0)


def test_project_runs_uses_measured_counts_and_labels_assumptions(suite):
    runs = [
        {"kind": "sims", "estimator": "lf_dnn", "class_name": "LFDNN",
         "task": "sims_multimodal", "variant": "reference", "table": "t"},
        {"kind": "sims", "estimator": "lf_dnn", "class_name": "LFDNN",
         "task": "sims_tasks_m", "variant": "corrected", "table": "t"},
        {"kind": "sims", "estimator": "tfn", "class_name": "TFN",
         "task": "sims_multimodal", "variant": "reference", "table": "t"},
        {"kind": "sims", "estimator": "svr", "class_name": "PooledSVR",
         "task": "sims_multimodal", "variant": "reference", "table": "t"},
        {"kind": "simsv2", "estimator": "bert_mag", "class_name": "BertMAG",
         "task": "simsv2_multimodal", "variant": "reference", "table": "u"},
        {"kind": "sims", "estimator": "mfn", "class_name": "MFN",
         "task": "sims_multimodal", "variant": "reference", "table": "t"},
        {"kind": "simsv2", "estimator": "lf_dnn", "class_name": "LFDNN",
         "task": "simsv2_multimodal", "variant": "reference", "table": "u"},
    ]
    per_epoch = {("LFDNN", "sims"): {"s_per_epoch": 2.0, "overhead_s": 1.0, "floor_s": 0.5},
                 ("TFN", "sims"): {"s_per_epoch": 10.0, "overhead_s": 0.0},
                 ("LFDNN", "simsv2"): {"s_per_epoch": 3.0, "overhead_s": 0.0}}
    measured = [
        {"kind": "sims", "estimator": "lf_dnn", "task": "sims_multimodal",
         "variant": "reference", "epochs": 10, "wall_time": 30.0},
        {"kind": "sims", "estimator": "lf_dnn", "task": "sims_multimodal",
         "variant": "reference", "epochs": 20, "wall_time": 50.0},
        {"kind": "sims", "estimator": "svr", "task": "sims_multimodal",
         "variant": "reference", "epochs": None, "wall_time": 4.0},
    ]
    out = suite.project_runs(runs, per_epoch, measured, None,
                             {("BertMAG", "simsv2"): "not trained: no checkpoint"})
    lf, lf_other, tfn, svr, bert, mfn, lf_v2 = out
    # no v2 record of LF-DNN: its CH-SIMS counts stand in, and say so
    assert lf_v2["epochs"] == 15 and lf_v2["epochs_source"] == "measured on sims (n=2)"
    assert lf_v2["s_per_run"] == 45.0
    assert lf["epochs"] == 15 and lf["s_per_run"] == 31.0
    assert lf["epochs_source"].startswith("measured (n=2)") and lf["note"] == ""
    assert lf_other["epochs_source"] == "measured, on other tasks and configurations (n=2)"
    assert "multimodal" in lf_other["note"] and "reference configuration" in lf_other["note"]
    # no record of TFN: the median measured count, labelled ASSUMED
    assert tfn["epochs"] == 15 and tfn["epochs_source"] == "ASSUMED 15"
    assert svr["s_per_run"] == 4.0 and svr["epochs"] is None
    assert bert["s_per_run"] == 0.0 and "no checkpoint" in bert["note"]
    assert mfn["s_per_run"] is None and mfn["note"].startswith("NOT MEASURED")
    text, doc = suite.projection_report(out, 2)
    assert text.startswith("PROJECTION")
    assert doc["tables"]["t"]["runs"] == 5
    assert doc["tables"]["t"]["total_s"] == 31.0 + 31.0 + 150.0 + 4.0
    assert doc["tables"]["t"]["wall_s"] == 31.0 + 150.0  # in order, on 2 workers
    assert doc["not_projected"] == 1 and "NOT PROJECTED" in text
    # at the floor: LF-DNN's runs at 15 epochs x 0.5 s, the others (no floor)
    # at their projected time: 7.5 | 7.5, then TFN's 150 and SVR's 4
    assert lf["floor_s_per_run"] == 7.5 and tfn["floor_s_per_run"] is None
    assert doc["floor_wall_s_by_kind"]["sims"] == 7.5 + 150.0
    assert doc["runs_without_floor"] == 2 and "AT THE ARITHMETIC FLOOR" in text


def test_project_command(suite, tmp_path, capsys):
    times = tmp_path / "bt.json"
    times.write_text(json.dumps({"results": [
        {"model": "LFDNN", "shape": "sims", "threads": 1, "mean_s_per_epoch": 1.5,
         "overhead_s": 2.0, "load": 1.0},
        {"model": "TFN", "shape": "sims", "threads": 1, "mean_s_per_epoch": 3.0,
         "overhead_s": 0.0, "load": 1.0},
        # a whole fit: its epoch count is a measured one; its s/epoch yields
        # to the short measurement's
        {"model": "LFDNN", "shape": "sims", "spec": "lf_dnn", "threads": 1,
         "mean_s_per_epoch": 9.0, "epochs": 7, "full_fit": True, "fit_predict_s": 70.0,
         "overhead_s": 7.0, "load": 1.0}]}))
    assert suite.main(["--project", "--epoch-times", str(times), "--records",
                       str(tmp_path), "--assume-epochs", "12", "--jobs", "2",
                       "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "PROJECTION total" in out and "ASSUMED 12" in out
    doc = json.loads((tmp_path / "o" / "projection.json").read_text())
    lf = next(m for m in doc["models"] if m["table"] == "table2" and m["estimator"] == "lf_dnn")
    assert lf["epochs"] == 7 and lf["epochs_source"].startswith("measured")
    assert lf["s_per_run"] == 7 * 1.5 + 2.0
    # a corrections table is credited with the runs no paper table has: its
    # corrected configurations (read from the classes, so only with torch)
    expected = {"table2", "v2-table2", "corrections"}
    if importlib.util.find_spec("torch") is not None:
        expected.add("v2-corrections")
    assert set(doc["tables"]) >= expected
    with pytest.raises(SystemExit):
        suite.main(["--project", "--epoch-times", str(tmp_path / "missing.json")])
    assert "no file" in capsys.readouterr().err


def test_bench_tune_prints_time_paired_test_and_optimism(tmp_path, monkeypatch, capsys):
    """A tiny study end to end: the figures the closing note quotes, and a
    second invocation that trains nothing."""
    pytest.importorskip("torch")
    from simsbench.datasets import make_synthetic_mmsa, write_mmsa

    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    sup, _ = make_synthetic_mmsa("sims", n_samples=(48, 16, 16), seq_lens=(6, 10, 8),
                                 feature_dims=(16, 5, 7), random_state=3)
    data = str(write_mmsa(sup, tmp_path / "sims_tiny.pkl"))
    bench = _module("bench_tune")
    argv = ["lf_dnn", "--data", data, "--trials", "2", "--jobs", "1", "--quick", "--tiny",
            "--results", str(tmp_path / "res")]
    assert bench.main(argv) == 0
    out = capsys.readouterr()
    assert "study: 2 runs, elapsed" in out.out
    assert "tuned - default:" in out.out and "paired t over" in out.out
    assert "selection on test" in out.out and "optimism" in out.out
    assert bench.main(argv) == 0
    again = capsys.readouterr()
    assert " ok in " not in again.err, again.err  # every run read back from the cache
    assert "tuned - default:" in again.out


def test_study_time_leaves_out_the_pause_of_a_resumed_study():
    bench = _module("bench_tune")
    recs = [  # two overlapping runs, then one after an hour's pause
        {"created": "2026-01-01T10:01:00+00:00", "wall_time": 60.0},
        {"created": "2026-01-01T10:01:30+00:00", "wall_time": 60.0},
        {"created": "2026-01-01T11:05:00+00:00", "wall_time": 120.0},
        None,
    ]
    t = bench.study_time(recs)
    assert t["runs"] == 3 and t["run_s"] == 240.0
    assert t["elapsed_s"] == 90.0 + 120.0
