"""simsbench report: one self-contained HTML page from cached records, opened
in a real headless Chromium (loads without console messages, every table is
in the DOM, the screenshot is not blank).  The browser tests skip, saying
why, when Chromium is absent (.ci/install-chromium installs it)."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

from simsbench.cli import main
from simsbench.results import data_slug, new_record, write_record
from simsbench.runner import derive_seed, store_data_record
from simsbench.utils.estimator_checks import tiny_dataset

SEEDS = (1, 12, 123, 1234, 12345)


def _write_synthetic_records(results: Path) -> dict:
    """Table 2 records on (tiny) synthetic data: five rows, five seeds, with
    per-epoch histories; the data record is the real one of that data."""
    info = store_data_record(results, tiny_dataset(), "synthetic:sims")
    data = {k: info[k] for k in ("spec", "slug", "name", "kind", "fingerprint",
                                 "description", "synthetic")}
    rng = np.random.default_rng(0)
    for i, est in enumerate(("lf_dnn", "mlf_dnn", "lmf", "mlmf", "svr")):
        for seed in SEEDS:
            a = 0.7 + 0.02 * i + rng.normal(0, 0.004)
            rec = new_record(
                key=f"{est}-{seed}", estimator=est, estimator_label=est, task="sims_multimodal",
                seed=seed, run_seed=derive_seed(seed, "sims_multimodal"), mode="full",
                variant="reference", data=data,
                scores=dict(acc2=a, acc3=a - 0.1, acc5=a - 0.3, f1=a, mae=1 - a, corr=a - 0.2),
                versions={"simsbench": "0.1.0", "torch": "2.13.0"},
            )
            if est != "svr":
                rec["history"] = {"train_loss": [1.0, 0.6, 0.4], "valid_loss": [1.1, 0.8, 0.7]}
            write_record(results, rec)
            if est == "lf_dnn":  # and its corrected configuration: the corrections table
                rec = dict(rec, key=f"{est}-{seed}-corrected", variant="corrected",
                           requested_variant="corrected",
                           scores={k: v + 0.01 for k, v in rec["scores"].items()})
                write_record(results, rec)
    return info


@pytest.fixture(scope="module")
def report(quick_results, tmp_path_factory):
    """A results folder with the quick table5 records (a data file) and hand-made
    synthetic table2 records; the report written by the CLI."""
    src, data = quick_results
    results = tmp_path_factory.mktemp("report") / "results"
    shutil.copytree(src, results)
    info = _write_synthetic_records(results)
    out = results / "report.html"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["report", "--results", str(results), "--ci", "--out", str(out)])
    assert rc == 0, stderr.getvalue()
    assert stdout.getvalue() == f"{out}\n"
    assert re.search(r"\[\d+/\d+ +\d+% elapsed \S+ ETA \S+\] figure table2-cd-acc2",
                     stderr.getvalue())  # the progress lines
    return out, data, info


def test_report_holds_every_table_notes_tests_and_provenance(report):
    out, data, info = report
    page = out.read_text(encoding="utf-8")
    sections = re.split(r'<section id="', page)[1:]
    assert len(sections) == 2
    by_slug = {s.split('"', 1)[0]: s for s in sections}
    real = by_slug[f"data-{re.sub(r'[^A-Za-z0-9_-]', '-', data_slug(data))}"]
    synth = by_slug["data-synthetic-sims"]
    for sec, tables in ((real, ("table3", "table5")),
                        (synth, ("table3", "table2", "corrections"))):
        for name in tables:
            assert f'data-table="{name}"' in sec, name
    assert "Tables with no run yet: table2, table4" in real
    # the banner and provenance where they belong
    assert "SIMULATED DATA" in synth and "SIMULATED DATA" not in real
    assert "real feature file(s): " + data in real
    assert info["fingerprint"] in synth
    # tests and intervals from the records: Δ rows with their test, CI notes
    assert "paired t, n=5" in synth and "95 % confidence interval" in synth
    # figures inline, with their ids scoped per figure
    for fig in ("table2-dist", "table2-cd-acc2", "table2-curves", "labels", "table5-dist"):
        assert f'data-figure="{fig}"' in page, fig
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert "torch" in page and "2.13.0" in page  # versions
    # self-contained: nothing to fetch
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_quiet_report_prints_only_its_path(capsys, tmp_path):
    results = tmp_path / "results"  # a data record alone: its split table and Fig. 2
    store_data_record(results, tiny_dataset(), "synthetic:sims")
    rc = main(["report", "--results", str(results), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == "" and captured.out == f"{results / 'report.html'}\n"
    page = (results / "report.html").read_text(encoding="utf-8")
    assert 'data-table="table3"' in page and 'data-figure="labels"' in page
    assert "Tables with no run yet: table2, table4, table5" in page


def test_report_without_records_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path)]) == 2
    assert "no run records under" in capsys.readouterr().err


# --- in a real browser ------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium on PATH: run .ci/install-chromium (apt-get install chromium)")


def _browse(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr",
           "--v=0", *extra, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console(stderr: str) -> list[str]:
    """The page's console messages (errors, CSP violations...) in Chromium's log."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


def test_report_in_headless_chromium(report, tmp_path):
    out, _, _ = report
    # the console scan sees a broken page (control) ...
    bad = tmp_path / "bad.html"
    bad.write_text(out.read_text(encoding="utf-8").replace(
        "</body>", '<img src="http://192.0.2.1/x.png"></body>'))
    assert any("Content Security Policy" in ln
               for ln in _console(_browse(bad, tmp_path, "--dump-dom").stderr))
    # ... and the report loads without a console message, every table in the DOM
    dom = _browse(out, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    page = out.read_text(encoding="utf-8")
    tables = re.findall(r'<table class="results" id="(table-[\w-]+)"', page)
    assert len(tables) == 5  # data file: table3, table5; synthetic: table2, table3, corrections
    for tid in tables:
        assert f'id="{tid}"' in dom.stdout, tid
    assert dom.stdout.count("<svg") >= 7  # the inline figures were parsed as SVG
    # a screenshot of the top of the page is not blank, and shows the red banner
    shot = tmp_path / "shot.png"
    res = _browse(out, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600",
                  "--hide-scrollbars")
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    import matplotlib.image

    img = (matplotlib.image.imread(str(shot))[..., :3] * 255).round().astype(int)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # not one colour
    red = (np.abs(img - [176, 0, 32]).max(axis=-1) <= 8).sum()
    assert red > 2000  # the SIMULATED DATA banner (#b00020)
