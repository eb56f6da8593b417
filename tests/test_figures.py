"""simsbench figure: each figure command writes PNG + SVG from quick records
(or the data), with the expected axes and labels; the SIMULATED DATA banner
appears exactly on synthetic data."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from simsbench import figures
from simsbench.cli import main
from simsbench.results import data_slug
from simsbench.tables import build_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _svg_texts(path) -> str:
    """The text of an SVG written with svg.fonttype 'none' (text stays text)."""
    return " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text(encoding="utf-8")))


def _check_files(paths, *expected_texts):
    png, svg = sorted(paths, key=lambda p: p.suffix)
    assert png.suffix == ".png" and svg.suffix == ".svg"
    for p in (png, svg):
        assert p.is_file() and p.stat().st_size > 1000, p
    assert png.read_bytes()[:8] == PNG_MAGIC
    text = _svg_texts(svg)
    for t in expected_texts:
        assert t in text, (t, text[:500])
    return text


def _figure(capsys, *args):
    rc = main(["figure", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return [p for p in (__import__("pathlib").Path(line) for line in out.split()) if p], err


@pytest.mark.parametrize(("kind", "stem", "texts"), [
    ("curves", "table5-curves", ("epoch", "loss", "M, T, A, V", "train", "valid", "seed 1")),
    ("dist", "table5-dist", ("Acc-2 (x100)", "MAE (x100)", "M, T, A, V", "M, A")),
    ("cd", "table5-cd-acc2", ("mean rank over seeds (Acc-2; 1 = best)", "no test",
                              "M, T, A, V")),
])
def test_table_figures_from_quick_records(quick_results, capsys, kind, stem, texts):
    results, data = quick_results
    paths, err = _figure(capsys, kind, "table5", "--data", data, "--results", str(results))
    assert {p.name for p in paths} == {f"{stem}.png", f"{stem}.svg"}
    assert all(p.parent == results / "figures" / data_slug(data) for p in paths)
    text = _check_files(paths, *texts, "sims_tiny.pkl")  # the footer names the data
    assert "SIMULATED DATA" not in text  # a data file is treated as real data
    assert "ETA" in err  # the progress line


def test_labels_figure_from_the_data_record(quick_results, capsys, tmp_path):
    results, data = quick_results
    paths, _ = _figure(capsys, "labels", "--data", data, "--results", str(results),
                       "--out", str(tmp_path), "--quiet")
    assert {p.name for p in paths} == {"labels.png", "labels.svg"}
    _check_files(paths, "label M", "label T", "label A", "label V", "label value", "clips",
                 "D_ij = mean((y_i - y_j)^2)", "label i", "label j")


def test_labels_figure_of_the_synthetic_default_carries_the_banner(capsys, tmp_path):
    # The embedded default data, as a fresh machine has it: the figure names
    # the data and says it is simulated.
    paths, _ = _figure(capsys, "labels", "--results", str(tmp_path / "results"),
                       "--out", str(tmp_path), "--quiet")
    _check_files(paths, "label M", "D_ij = mean((y_i - y_j)^2)", "SIMULATED DATA",
                 "synthetic:sims")


def test_quiet_figure_prints_only_the_paths(quick_results, capsys, tmp_path):
    results, data = quick_results
    rc = main(["figure", "dist", "table5", "--data", data, "--results", str(results),
               "--out", str(tmp_path), "--formats", "svg", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert out.splitlines() == [str(tmp_path / "table5-dist.svg")]


def test_tsne_figure_fits_a_quick_multitask_model(quick_results, capsys, tmp_path):
    results, data = quick_results
    paths, _ = _figure(capsys, "tsne", "--data", data, "--tiny", "--quick", "--results",
                       str(results), "--out", str(tmp_path), "--quiet")
    _check_files(paths, "text representation", "audio representation",
                 "vision representation", "t-SNE 1", "t-SNE 2", "negative", "positive",
                 "MLF-DNN*")
    payload = json.loads((results / "figures" / data_slug(data) / "tsne.json").read_text())
    assert set(payload["embeddings"]) == {"text", "audio", "vision"}
    assert len(payload["labels"]) == 16 == len(payload["embeddings"]["text"])


def test_multitask_transform_concatenates_the_representations(tiny):
    pytest.importorskip("torch")
    from simsbench.estimators import MLFDNN

    est = MLFDNN(**{**MLFDNN._tiny_params, "max_epochs": 1}, random_state=0)
    est.fit(tiny.X("train"), tiny.y("train", ["M", "T", "A", "V"]))
    reps = est.get_representations(tiny.X("test"))
    Z = est.transform(tiny.X("test"))
    assert Z.shape == (16, sum(r.shape[1] for r in reps.values())) and Z.dtype == np.float64
    np.testing.assert_array_equal(Z, np.concatenate([reps[m] for m in est.modalities], axis=1))


def test_figure_errors_are_one_line(quick_results, capsys):
    results, data = quick_results
    assert main(["figure", "cd", "--data", data, "--results", str(results)]) == 2
    assert "needs a TABLE" in capsys.readouterr().err
    assert main(["figure", "cd", "table5", "--metric", "r2", "--data", data,
                 "--results", str(results)]) == 2
    assert "--metric 'r2' is not a column of table5" in capsys.readouterr().err
    assert main(["figure", "curves", "table2", "--data", data, "--results",
                 str(results)]) == 2
    assert "no run of table2 has a per-epoch history" in capsys.readouterr().err


# --- from hand-made records: several seeds, synthetic data -----------------

SYNTH = {"fingerprint": "f" * 64, "slug": "synthetic-sims", "spec": "synthetic:sims",
         "synthetic": True,
         "description": "synthetic:sims (tiny) -- simulated data, NOT CH-SIMS results"}


def _records(data, n_seeds=5):
    rng = np.random.default_rng(0)
    out = []
    for i, est in enumerate(("lf_dnn", "mlf_dnn", "tfn", "mtfn", "svr")):
        for seed in (1, 12, 123, 1234, 12345)[:n_seeds]:
            a = 0.70 + 0.03 * i + rng.normal(0, 0.003)
            out.append({
                "schema": 1, "key": f"{est}-{seed}",
                "estimator": est, "task": "sims_multimodal", "seed": seed,
                "run_seed": seed * 3, "status": "ok", "mode": "full",
                "variant": "reference", "created": "2026",
                "data": data, "scores": dict(acc2=a, acc3=a, acc5=a, f1=a, mae=1 - a, corr=a),
            })
    return out


def test_cd_diagram_with_seeds_shows_the_test_and_the_banner(tmp_path):
    rt = build_table("table2", _records(SYNTH), compare=False)
    res = figures.table_ranking(rt, "mae")
    assert res.names[res.order()[0]] == "SVR" and res.p < 0.01  # lowest MAE ranks first
    paths = figures.save_figure(figures.cd_figure(rt, "mae"), tmp_path / "cd")
    text = _check_files(paths, "SIMULATED DATA", "CD = ", "Friedman chi2", "over 5 seeds",
                        "SVR (1.00)", "(5.00) LF-DNN")
    assert "no test" not in text


def test_banner_only_on_synthetic_data(tmp_path):
    real = {**SYNTH, "spec": "/data/unaligned_39.pkl", "synthetic": False,
            "description": "unaligned_39.pkl (sha256 abc)"}
    for info, banner in ((SYNTH, True), (real, False)):
        rt = build_table("table2", _records(info, 2), compare=False)
        fig = figures.distribution_figure(rt, ["acc2"])
        path = figures.save_figure(fig, tmp_path / f"d{banner}", ["svg"])[0]
        assert ("SIMULATED DATA" in _svg_texts(path)) is banner
        assert info["description"] in _svg_texts(path)


def test_matplotlib_is_not_imported_by_the_module():
    import subprocess
    import sys

    code = ("import sys, simsbench.figures, simsbench.report, simsbench.cli; "
            "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_table_figures_from_quick_records_of_the_synthetic_default(capsys, tmp_path,
                                                                    monkeypatch):
    # `simsbench run table5 --quick` on the embedded default, as a fresh
    # machine runs it, then every per-table figure: each names its data and
    # carries the SIMULATED DATA banner.
    pytest.importorskip("torch")
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SIMSBENCH_SPECS", raising=False)
    results = tmp_path / "results"
    assert main(["run", "table5", "--quick", "--quiet", "--results", str(results)]) == 0
    capsys.readouterr()
    for kind, texts in (("curves", ("epoch", "loss")), ("dist", ("Acc-2",)),
                        ("cd", ("mean rank",))):
        paths, _ = _figure(capsys, kind, "table5", "--results", str(results), "--quiet")
        _check_files(paths, "SIMULATED DATA", "synthetic:sims", *texts)


@pytest.mark.slow
def test_tsne_figure_on_the_synthetic_default(capsys, tmp_path, monkeypatch):
    # `simsbench figure tsne --quick` on the embedded default: a quick MLF-DNN,
    # then t-SNE of its unimodal representations, under the banner.
    pytest.importorskip("torch")
    monkeypatch.setenv("SIMSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SIMSBENCH_SPECS", raising=False)
    paths, _ = _figure(capsys, "tsne", "--quick", "--results", str(tmp_path / "results"),
                       "--out", str(tmp_path), "--quiet")
    _check_files(paths, "text representation", "audio representation", "t-SNE 1",
                 "SIMULATED DATA", "synthetic:sims")
