"""Tables from hand-made records: golden LaTeX, rounding, Δ rows, reasons,
and the transcribed paper numbers.  Needs no torch."""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np
import pandas as pd
import pytest

from simsbench.tables import (
    TABLES,
    GridRows,
    build_table,
    latex_escape,
    published,
    render,
)

DATA = {
    "fingerprint": "abc",
    "description": "synthetic:sims (n_samples=(8, 4, 4)) -- simulated data, NOT CH-SIMS results",
    "synthetic": True, "spec": "synthetic:sims", "slug": "synthetic-sims",
}


def rec(est, task, seed, scores=None, status="ok", reason="", label=None, mode="full",
        created=None, data=None):
    return {
        "schema": 1, "key": f"{est}-{task}-{seed}-{mode}", "estimator": est,
        "estimator_label": label or est, "task": task, "seed": seed, "status": status,
        "reason": reason, "scores": scores or {}, "mode": mode, "variant": "reference",
        "created": created or f"2026-01-01T00:00:{seed:02d}", "data": data or DATA,
        "versions": {"simsbench": "0.1.0", "scikit-learn": "1.9.1"},
    }


def sims_scores(a, c):
    return dict(acc2=a, acc3=a - 0.1, acc5=a - 0.4, f1=a + 0.01, mae=1 - a, corr=c)


def table2_records():
    t = "sims_multimodal"
    return [
        rec("lf_dnn", t, 1, sims_scores(0.7, 0.5)), rec("lf_dnn", t, 12, sims_scores(0.8, 0.6)),
        rec("mlf_dnn", t, 1, sims_scores(0.75, 0.55)),
        rec("mlf_dnn", t, 12, sims_scores(0.85, 0.65)),
        rec("mfn", t, 1, status="unavailable", reason="ModuleNotFoundError: No module 'x_y'"),
    ]


GOLDEN_TABLE2_LATEX = "\n".join([
    '% CH-SIMS (Yu et al., ACL 2020) Table 2 -- Results for sentiment analysis (m'
    'ultimodal, label M) [table2]',
    '% Data: synthetic:sims (n\\_samples=(8, 4, 4)) -- simulated data, NOT CH-SIMS'
    ' results',
    '% Data fingerprint: abc',
    '% Values: mean $\\pm$ population std (ddof=0) over seeds, x100, MAE included;'
    ' $\\Delta$ rows: difference of the means',
    "% $\\Delta$ tests (two-sided, per metric, over seeds): paired t where both rows' runs"
    " of each seed share its derived seed, Welch t otherwise; test and n in the Note"
    " column, exact p-values in the CSV; * p < 0.05, ** p < 0.01",
    '% Paper seeds: 1, 12 (run seeds derived per task); mode: full',
    "% Configuration: reference implementation (MMSA / ch-sims-v2 behaviour, defects included: "
    "the paper's model under the paper's protocol)",
    '% Versions: scikit-learn 1.9.1, simsbench 0.1.0',
    '% SIMULATED DATA: the simsbench rows are NOT CH-SIMS results and must not be'
    ' presented as such',
    '% requires \\usepackage{booktabs}',
    '\\begin{tabular}{lrrrrrrl}',
    '\\toprule',
    'Model & Acc-2 & Acc-3 & Acc-5 & F1 & MAE & Corr & Note \\\\',
    '\\midrule',
    'EF-LSTM & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    'MFN & n/a & n/a & n/a & n/a & n/a & n/a & unavailable: ModuleNotFoundError: '
    "No module 'x\\_y' \\\\",
    'MulT & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    'LF-DNN & 75.00 $\\pm$ 5.00 & 65.00 $\\pm$ 5.00 & 35.00 $\\pm$ 5.00 & 76.00 $\\pm'
    '$ 5.00 & 25.00 $\\pm$ 5.00 & 55.00 $\\pm$ 5.00 &  \\\\',
    'MLF-DNN* & 80.00 $\\pm$ 5.00 & 70.00 $\\pm$ 5.00 & 40.00 $\\pm$ 5.00 & 81.00 $\\'
    'pm$ 5.00 & 20.00 $\\pm$ 5.00 & 60.00 $\\pm$ 5.00 &  \\\\',
    '$\\Delta$ MLF-DNN* vs LF-DNN & +5.00 & +5.00 & +5.00 & +5.00 & -5.00 & +5.00 '
    '& Welch t, n=2 \\\\',
    'LMF & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    'MLMF* & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    '$\\Delta$ MLMF* vs LMF & n/a & n/a & n/a & n/a & n/a & n/a & needs both rows '
    '\\\\',
    'TFN & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    'MTFN* & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    '$\\Delta$ MTFN* vs TFN & n/a & n/a & n/a & n/a & n/a & n/a & needs both rows '
    '\\\\',
    'SVR & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    'SVR (text) & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    'SVR (audio) & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    'SVR (vision) & n/a & n/a & n/a & n/a & n/a & n/a & not run yet \\\\',
    '\\bottomrule',
    '\\end{tabular}',
]) + "\n"


GOLDEN_TABLE2_MARKDOWN = "\n".join([
    '> CH-SIMS (Yu et al., ACL 2020) Table 2 -- Results for sentiment analysis (multimoda'
    'l, label M) [table2]',
    '> Data: synthetic:sims (n_samples=(8, 4, 4)) -- simulated data, NOT CH-SIMS results',
    '> Data fingerprint: abc',
    '> Values: mean ± population std (ddof=0) over seeds, x100, MAE included; Δ rows: dif'
    'ference of the means',
    "> Δ tests (two-sided, per metric, over seeds): paired t where both rows' runs of eac"
    'h seed share its derived seed, Welch t otherwise; test and n in the Note column, exa'
    'ct p-values in the CSV; * p < 0.05, ** p < 0.01',
    '> Paper seeds: 1, 12 (run seeds derived per task); mode: full',
    '> Configuration: reference implementation (MMSA / ch-sims-v2 behaviour, defects incl'
    "uded: the paper's model under the paper's protocol)",
    '> Versions: scikit-learn 1.9.1, simsbench 0.1.0',
    '> SIMULATED DATA: the simsbench rows are NOT CH-SIMS results and must not be present'
    'ed as such',
    '',
    '| Model                | Acc-2        | Acc-3        | Acc-5        | F1           |'
    ' MAE          | Corr         | Note                                              |',
    '| :------------------- | -----------: | -----------: | -----------: | -----------: |'
    ' -----------: | -----------: | :------------------------------------------------ |',
    '| EF-LSTM              | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| MFN                  | n/a          | n/a          | n/a          | n/a          |'
    " n/a          | n/a          | unavailable: ModuleNotFoundError: No module 'x_y' |",
    '| MulT                 | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| LF-DNN               | 75.00 ± 5.00 | 65.00 ± 5.00 | 35.00 ± 5.00 | 76.00 ± 5.00 |'
    ' 25.00 ± 5.00 | 55.00 ± 5.00 |                                                   |',
    '| MLF-DNN*             | 80.00 ± 5.00 | 70.00 ± 5.00 | 40.00 ± 5.00 | 81.00 ± 5.00 |'
    ' 20.00 ± 5.00 | 60.00 ± 5.00 |                                                   |',
    '| Δ MLF-DNN* vs LF-DNN | +5.00        | +5.00        | +5.00        | +5.00        |'
    ' -5.00        | +5.00        | Welch t, n=2                                      |',
    '| LMF                  | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| MLMF*                | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| Δ MLMF* vs LMF       | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | needs both rows                                   |',
    '| TFN                  | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| MTFN*                | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| Δ MTFN* vs TFN       | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | needs both rows                                   |',
    '| SVR                  | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| SVR (text)           | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| SVR (audio)          | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
    '| SVR (vision)         | n/a          | n/a          | n/a          | n/a          |'
    ' n/a          | n/a          | not run yet                                       |',
]) + "\n"

GOLDEN_TABLE2_CSV = "\n".join([
    '# CH-SIMS (Yu et al., ACL 2020) Table 2 -- Results for sentiment analysis (multimoda'
    'l, label M) [table2]',
    '# Data: synthetic:sims (n_samples=(8, 4, 4)) -- simulated data, NOT CH-SIMS results',
    '# Data fingerprint: abc',
    '# Values: mean ± population std (ddof=0) over seeds, x100, MAE included; Δ rows: dif'
    'ference of the means',
    "# Δ tests (two-sided, per metric, over seeds): paired t where both rows' runs of eac"
    'h seed share its derived seed, Welch t otherwise; test and n in the Note column, exa'
    'ct p-values in the CSV; * p < 0.05, ** p < 0.01',
    '# Paper seeds: 1, 12 (run seeds derived per task); mode: full',
    '# Configuration: reference implementation (MMSA / ch-sims-v2 behaviour, defects incl'
    "uded: the paper's model under the paper's protocol)",
    '# Versions: scikit-learn 1.9.1, simsbench 0.1.0',
    '# SIMULATED DATA: the simsbench rows are NOT CH-SIMS results and must not be present'
    'ed as such',
    'model,source,acc2,acc2_std,acc3,acc3_std,acc5,acc5_std,f1,f1_std,mae,mae_std,corr,co'
    'rr_std,n,note,test,acc2_p,acc3_p,acc5_p,f1_p,mae_p,corr_p',
    'EF-LSTM,simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    "MFN,simsbench,,,,,,,,,,,,,0,unavailable: ModuleNotFoundError: No module 'x_y',,,,,,,",
    'MulT,simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    'LF-DNN,simsbench,75.00,5.00,65.00,5.00,35.00,5.00,76.00,5.00,25.00,5.00,55.00,5.00,2'
    ',,,,,,,,',
    'MLF-DNN*,simsbench,80.00,5.00,70.00,5.00,40.00,5.00,81.00,5.00,20.00,5.00,60.00,5.00'
    ',2,,,,,,,,',
    'Δ MLF-DNN* vs LF-DNN,simsbench,5.00,,5.00,,5.00,,5.00,,-5.00,,5.00,,2,"Welch t, n=2"'
    ',Welch t,0.5527864045000421,0.5527864045000421,0.5527864045000421,0.5527864045000421'
    ',0.5527864045000422,0.5527864045000419',
    'LMF,simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    'MLMF*,simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    'Δ MLMF* vs LMF,simsbench,,,,,,,,,,,,,0,needs both rows,,,,,,,',
    'TFN,simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    'MTFN*,simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    'Δ MTFN* vs TFN,simsbench,,,,,,,,,,,,,0,needs both rows,,,,,,,',
    'SVR,simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    'SVR (text),simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    'SVR (audio),simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
    'SVR (vision),simsbench,,,,,,,,,,,,,0,not run yet,,,,,,,',
]) + "\n"


def test_table2_latex_matches_golden():
    rt = build_table("table2", table2_records(), compare=False)
    assert render(rt, "latex") == GOLDEN_TABLE2_LATEX


def test_table2_markdown_and_csv_match_golden():
    """The outputs of the hand-written writers tabulate and csv replaced."""
    rt = build_table("table2", table2_records(), compare=False)
    assert render(rt, "markdown") == GOLDEN_TABLE2_MARKDOWN
    assert render(rt, "md") == GOLDEN_TABLE2_MARKDOWN
    assert_csv_matches(render(rt, "csv"), GOLDEN_TABLE2_CSV)


def assert_csv_matches(text: str, golden: str) -> None:
    """Byte-identical but for the exact p-values (``*_p`` columns, written with
    ``repr``), whose last digits differ between scipy releases."""
    got, want = text.splitlines(), golden.splitlines()
    assert len(got) == len(want)
    header = None
    for g, w in zip(got, want):
        if w.startswith("#") or header is None:
            assert g == w
            header = None if w.startswith("#") else next(csv.reader([w]))
            continue
        for col, a, b in zip(header, next(csv.reader([g])), next(csv.reader([w])), strict=True):
            if col.endswith("_p") and a and b:
                assert math.isclose(float(a), float(b), rel_tol=1e-9), (col, a, b)
            else:
                assert a == b, (col, a, b)


def test_markdown_escapes_pipes_and_latex_spaces_paper_groups():
    recs = table2_records() + [rec("svr", "sims_multimodal", 1, status="error",
                                   reason="a | b & c")]
    md = render(build_table("table2", recs, compare=False), "markdown")
    assert "| error: a \\| b & c " in md
    tex = render(build_table("table2", recs, compare=True), "latex")
    lines = tex.splitlines()
    # a spacer before each simsbench row that follows a 'paper' row, nowhere else
    for i, line in enumerate(lines):
        if line == r"\addlinespace":
            assert " & paper & " in lines[i - 1] and " & simsbench & " in lines[i + 1]
    rows = [ln for ln in lines if ln != r"\addlinespace"]
    assert lines.count(r"\addlinespace") == sum(
        1 for a, b in zip(rows, rows[1:]) if " & paper & " in a and " & simsbench & " in b) > 0
    assert "error: a | b \\& c" in tex


def _check_tabular(text: str) -> int:
    """Structure of a booktabs tabular: rules in order, equal column counts,
    no unescaped special characters outside math.  Returns the row count."""
    body = [ln for ln in text.splitlines() if not ln.startswith("%")]
    spec = re.fullmatch(r"\\begin\{tabular\}\{([lrc]+)\}", body[0])
    assert spec, body[0]
    n_cols = len(spec.group(1))
    assert body[1] == r"\toprule" and body[3] == r"\midrule"
    assert body[-2] == r"\bottomrule" and body[-1] == r"\end{tabular}"
    rows = [body[2]] + [ln for ln in body[4:-2] if ln != r"\addlinespace"]
    for ln in rows:
        assert ln.endswith(r" \\"), ln
        cells = re.split(r"(?<!\\)&", ln[:-3])
        assert len(cells) == n_cols, ln
        outside_math = re.sub(r"\$[^$]*\$", "", ln[:-3])
        for ch in "%#_{}~^":
            assert not re.search(rf"(?<!\\){re.escape(ch)}", outside_math.replace(
                r"\textbackslash{}", "").replace(r"\textasciitilde{}", "").replace(
                r"\textasciicircum{}", "")), (ch, ln)
        assert "±" not in ln and "Δ" not in ln and "²" not in ln
    return len(rows) - 1


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if t.source == "records"])
@pytest.mark.parametrize("compare", [False, True])
def test_every_results_table_is_a_valid_tabular(name, compare):
    table = TABLES[name]
    records = [rec(r.estimator, r.task, 1, {m: 0.5 for m in table.metrics})
               for r in table.rows if r.kind == "result"]
    text = render(build_table(name, records, compare=compare), "latex")
    n_rows = _check_tabular(text)
    assert n_rows >= len(table.rows)


def test_latex_escapes_specials():
    assert latex_escape("w/o Mixup-AV & Unimodal tasks") == r"w/o Mixup-AV \& Unimodal tasks"
    assert latex_escape("Acc2_weak 50% #1 {x} ~ ^") == (
        r"Acc2\_weak 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{}")
    text = render(build_table("v2-table4", [], compare=False), "latex")
    assert r"w/o Mixup-AV \& Unimodal tasks" in text and r"Acc2\_weak" in text


def test_population_std_and_mae_scaling_in_v2():
    t = "simsv2_multimodal"
    recs = [rec("avmc", t, s, {"acc2": a, "f1": a, "acc2_weak": a, "corr": a, "r2": a,
                                "mae": m}) for s, a, m in ((1, 0.80, 0.30), (12, 0.90, 0.32))]
    md = render(build_table("v2-table2", recs, compare=False), "markdown")
    row = next(ln for ln in md.splitlines() if ln.startswith("| AV-MC* "))
    # ddof=0: std of (80, 90) is 5, not 7.07; MAE stays unscaled with 3 decimals.
    assert "85.00 ± 5.00" in row and "0.310 ± 0.010" in row
    assert np.isclose(np.std([80, 90]), 5.0)


def test_partial_failures_and_skips_say_why():
    t = "sims_unimodal_text_own"
    recs = [rec("mlf_dnn", t, 1, {"acc2": 0.6, "f1": 0.6, "mae": 0.4, "corr": 0.3}),
            rec("mlf_dnn", t, 12, status="error", reason="RuntimeError: boom"),
            rec("mlf_dnn", "sims_unimodal_audio_own", 1, status="skipped",
                reason="unimodal_own_label needs label(s) A")]
    md = render(build_table("table4", recs, compare=False), "markdown")
    lines = md.splitlines()
    t_row = next(ln for ln in lines if ln.startswith("| T    | T "))
    assert "60.00" in t_row and "1 of 2 seeds failed; error: RuntimeError: boom" in t_row
    a_row = next(ln for ln in lines if ln.startswith("| A    | A "))
    assert "skipped: unimodal_own_label needs label(s) A" in a_row


def test_newest_fingerprint_and_mode_are_selected():
    t = "sims_multimodal"
    other = {**DATA, "fingerprint": "old"}
    recs = [rec("svr", t, 1, sims_scores(0.1, 0.1), data=other, created="2025-01-01"),
            rec("svr", t, 1, sims_scores(0.6, 0.2), mode="quick", created="2026-02-01"),
            rec("svr", t, 1, sims_scores(0.7, 0.3), created="2026-01-01")]
    rows = build_table("table2", recs, compare=False).rows
    svr = next(r for r in rows if r.labels == ("SVR",))
    assert svr.cells["acc2"].mean == pytest.approx(60.0)  # newest: the quick run
    rows = build_table("table2", recs, compare=False, mode="full").rows
    svr = next(r for r in rows if r.labels == ("SVR",))
    assert svr.cells["acc2"].mean == pytest.approx(70.0)


def test_user_rows_from_records_and_paper_rows():
    recs = [rec("mine", "sims_multimodal", 1, sims_scores(0.9, 0.8), label="My model")]
    md = render(build_table("table2", recs, compare=True), "markdown")
    assert re.search(r"\| My model +\| simsbench \| 90\.00", md)
    assert re.search(r"\| LF-DNN +\| paper +\| 79\.87 ± 0\.60", md)
    assert "'paper' rows are the published numbers" in md


def test_csv_is_machine_readable():
    text = render(build_table("table2", table2_records(), compare=True), "csv")
    df = pd.read_csv(io.StringIO(text), comment="#")
    ours = df[(df["model"] == "LF-DNN") & (df["source"] == "simsbench")].iloc[0]
    assert ours["acc2"] == pytest.approx(75.0) and ours["acc2_std"] == pytest.approx(5.0)
    assert ours["n"] == 2
    paper = df[(df["model"] == "LF-DNN") & (df["source"] == "paper")].iloc[0]
    assert paper["acc2"] == pytest.approx(79.87)


def test_split_table_from_data_record():
    info = {**DATA, "split_table": {"columns": ["Total", "NG", "WN", "NU", "WP", "PS"],
                                    "index": ["Train", "Valid", "Test"],
                                    "values": [[8, 3, 2, 1, 1, 1], [4, 1, 1, 1, 1, 0],
                                               [4, 1, 1, 0, 1, 1]]}}
    md = render(build_table("table3", data_info=info, compare=True), "markdown")
    assert re.search(r"\| Train \| simsbench \| 8 +\| 3 ", md)
    assert re.search(r"\| Train \| paper +\| 1368 +\| 452 ", md)
    with pytest.raises(ValueError, match="computed from the data"):
        build_table("table3", data_info=None)


# -- the transcribed numbers ---------------------------------------------------

def _pub(table):
    out = {}
    for (t, row, col), (mean, _std, _note) in published().items():
        if t == table:
            out.setdefault(row, {})[col] = mean
    return out


def test_published_rows_match_the_layouts():
    for name, table in TABLES.items():
        rows = _pub(name)
        assert rows, name
        keys = {r.key for r in table.rows} if table.source == "records" else {
            "Train", "Valid", "Test"}
        # Every published row has a layout row (SVR rows are ours alone, and so
        # are the Δ rows the papers do not print: all but Table 2's).
        assert set(rows) <= keys, name
        ours_alone = {r.key for r in table.rows if r.kind == "delta" and name != "table2"}
        assert {k for k in keys if not k.startswith("SVR")} - ours_alone == set(rows), name
        cols = set(table.metrics) if table.source == "records" else set(table.class_names)
        for row, vals in rows.items():
            assert set(vals) == cols, (name, row)


def test_published_delta_rows_are_differences_of_published_rows():
    rows = _pub("table2")
    for multi, single in (("MLF-DNN*", "LF-DNN"), ("MLMF*", "LMF"), ("MTFN*", "TFN")):
        for m, d in rows[f"Δ {multi} vs {single}"].items():
            assert d == pytest.approx(rows[multi][m] - rows[single][m], abs=0.006), (multi, m)


@pytest.mark.parametrize("name", ["table3", "v2-table1"])
def test_published_split_tables_add_up(name):
    rows = _pub(name)
    for row, vals in rows.items():
        assert vals["Total"] == sum(v for k, v in vals.items() if k != "Total"), row
    totals = {"table3": 2281, "v2-table1": 4403}[name]
    assert sum(v["Total"] for v in rows.values()) == totals


def test_published_spot_checks_against_the_paper_text():
    t2 = _pub("table2")
    assert t2["EF-LSTM"]["corr"] == -4.39 and t2["MTFN*"]["acc3"] == 69.02
    assert _pub("table5")["M, T, A, V"] == {"acc2": 82.28, "f1": 82.52, "mae": 40.64,
                                            "corr": 64.74}
    assert _pub("v2-table2")["AV-MC(Semi)*"]["mae"] == 0.286
    assert _pub("v2-table3")["Visual / M"]["acc2_weak"] == 68.79
    assert _pub("v2-table4")["w/o Mixup-A"]["r2"] == 49.96


def test_a_nan_score_is_reported_in_the_cell():
    # Corr is NaN for a constant prediction; records store NaN as null.
    t = "sims_multimodal"
    recs = [rec("lf_dnn", t, 1, sims_scores(0.7, 0.5)),
            rec("lf_dnn", t, 12, {**sims_scores(0.8, 0.6), "corr": None})]
    md = render(build_table("table2", recs, compare=False), "markdown")
    row = next(ln for ln in md.splitlines() if ln.startswith("| LF-DNN "))
    assert "50.00 (NaN in 1 of 2 seeds)" in row
    assert "75.00 ± 5.00" in row  # the other metrics over both seeds


def _row_tuples(rows):
    return [(r.labels, r.estimator, r.task, r.kind, r.delta) for r in rows]


def test_grid_tables_read_their_rows_from_the_task_grids():
    """Table 5 and v2 Table 4: the rows the hand-written layouts had, now read
    from tasks/sims_tasks.toml and tasks/simsv2_avmc.toml."""
    t5 = _row_tuples(TABLES["table5"].rows)
    sets = ("M", "M, T", "M, A", "M, V", "M, T, A", "M, T, V", "M, A, V", "M, T, A, V")
    assert [r for r in t5 if r[3] == "result"] == [
        ((k,), "mlf_dnn", "sims_tasks_" + k.replace(", ", "").lower(), "result", None)
        for k in sets]
    assert [r[0][0] for r in t5] == ["M"] + [x for k in sets[1:] for x in (k, f"Δ {k} vs M")]
    v24 = _row_tuples(TABLES["v2-table4"].rows)
    assert v24[4] == (("AV-MC",), "avmc", "simsv2_avmc_full", "result", None)
    assert v24[5] == (("Δ w/o Mixup-AV & Unimodal tasks vs AV-MC",), None, None, "delta",
                      ("w/o Mixup-AV & Unimodal tasks", "AV-MC"))
    assert [r[0][0] for r in v24[:4]] == [
        "w/o Mixup-AV & Unimodal tasks", "w/o Mixup-AV", "w/o Mixup-A", "w/o Mixup-V"]


def test_grid_rows_follow_the_task_file(tmp_path, monkeypatch):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "mine.toml").write_text(
        'protocol = "task_combination"\nmetrics = ["acc2"]\n'
        '[grid]\nlabels = [["M", "V"], ["M"], ["M", "A"]]\n')
    monkeypatch.setenv("SIMSBENCH_SPECS", str(tmp_path))
    rows = GridRows("mine", "mlf_dnn", baseline="mine_m").rows()
    assert [(r.labels[0], r.task, r.delta) for r in rows] == [
        ("M, V", "mine_mv", None), ("M", "mine_m", None),
        ("Δ M, V vs M", None, ("M, V", "M")),
        ("M, A", "mine_ma", None), ("Δ M, A vs M", None, ("M, A", "M")),
    ]
    with pytest.raises(ValueError, match="no cell 'mine_t'"):
        GridRows("mine", "mlf_dnn", baseline="mine_t").rows()
