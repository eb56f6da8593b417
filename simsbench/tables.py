"""The papers' tables, rendered from run records only.

Rounding happens here and nowhere else.  Every table can be printed beside
the published numbers (``simsbench/data/published.csv``), in Markdown,
LaTeX (booktabs) or CSV, under a header that names the data (the synthetic
generator's parameters, or the file's SHA-256), the seeds and the versions.
Rows of models that could not run say why.  Imports no torch.

Uncertainty is computed here too, from the per-seed records
(:mod:`simsbench.stats`): every Δ row carries a two-sided test over seeds
per metric (a paired t test when the two rows' runs of each seed share its
derived seed, Welch's t test otherwise; the test and ``n`` in the Note
column, ``*``/``**`` markers on the values, exact p-values in the CSV);
``ci=True`` shows 95 % t confidence intervals instead of ± std; on real data
each 'paper' row carries a Welch test of simsbench against the published
mean ± std, assuming the papers' five runs.

Tables
------
``table2``     CH-SIMS Table 2: every model of the paper + SVR baselines, with
               the Δ rows of each multi-task model over its single-task original
``table3``     CH-SIMS Table 3: splits × sentiment classes (from the data)
``table4``     CH-SIMS Table 4: MLF-DNN on one modality, own label vs M label
``table5``     CH-SIMS Table 5: MLF-DNN over the 8 task sets
``v2-table1``  CH-SIMS v2 Table 1: splits × classes (from the data)
``v2-table2``  CH-SIMS v2 Table 2: its model list (MAE unscaled, as printed)
``v2-table3``  CH-SIMS v2 Table 3: unimodal LSTM (EF-LSTM on one modality)
``v2-table4``  CH-SIMS v2 Table 4: the AV-MC ablation
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from simsbench.results import (
    RecordWarning,
    aggregate,
    check_record,
    read_data_record,
    read_records,
)
from simsbench.stats import PAPER_RUNS, TestResult, ci95, compare, welch_from_summary

__all__ = [
    "FORMATS",
    "TABLES",
    "Row",
    "TableDef",
    "RenderedTable",
    "build_table",
    "get_table",
    "published",
    "render",
    "table_grid",
    "table_pairs",
]

FORMATS = ("markdown", "latex", "csv")
EXTENSIONS = {"markdown": "md", "latex": "tex", "csv": "csv"}

SIMS_PAPER = "CH-SIMS (Yu et al., ACL 2020)"
V2_PAPER = "CH-SIMS v2.0 (Liu et al., ICMI 2022)"

METRIC_LABELS = {
    "acc2": "Acc-2", "acc3": "Acc-3", "acc5": "Acc-5", "f1": "F1", "mae": "MAE",
    "corr": "Corr", "acc2_weak": "Acc2_weak", "r2": "R²",
}
V2_METRIC_LABELS = {**METRIC_LABELS, "acc2": "Acc2", "f1": "F1_score", "r2": "R_squre"}


@dataclass(frozen=True)
class Row:
    """One row of a table layout.

    ``kind`` is ``"result"`` (mean ± std of ``estimator`` on ``task``),
    ``"delta"`` (difference of the means of two result rows, ``delta`` =
    (row key, row key)) or ``"paper"`` (published only; ``note`` says why we
    have no number).
    """

    labels: tuple[str, ...]
    estimator: str | None = None
    task: str | None = None
    kind: str = "result"
    delta: tuple[str, str] | None = None
    note: str = ""

    @property
    def key(self) -> str:
        return " / ".join(self.labels)


@dataclass(frozen=True)
class TableDef:
    """The layout of one paper table."""

    name: str
    title: str
    paper: str
    paper_table: str
    data_kind: str
    label_columns: tuple[str, ...]
    metrics: tuple[str, ...] = ()
    metric_labels: Mapping[str, str] = field(default_factory=lambda: METRIC_LABELS)
    mae_scaled: bool = True
    rows: tuple[Row, ...] = ()
    user_task: str | None = None
    source: str = "records"  # or "data"
    class_names: tuple[str, ...] = ()

    @property
    def default_data(self) -> str:
        return f"synthetic:{self.data_kind}"

    def scale(self, metric: str) -> float:
        if metric == "mae" and not self.mae_scaled:
            return 1.0
        return 100.0

    def decimals(self, metric: str) -> int:
        return 3 if (metric == "mae" and not self.mae_scaled) else 2


def _r(label, est, task):
    return Row((label,), est, task)


def _delta(multi, single):
    return Row((f"Δ {multi} vs {single}",), kind="delta", delta=(multi, single))


def _with_deltas(rows, pairs):
    """``rows`` with a Δ row after each ``(row, labels, (key_a, key_b))`` entry's row."""
    out = []
    for row in rows:
        out.append(row)
        for after, labels, keys in pairs:
            if after == row.key:
                out.append(Row(labels, kind="delta", delta=keys))
    return tuple(out)


def _unimodal_rows(rows):
    """Table 4 / v2 Table 3: a Δ (own label - M label) row after each modality's pair."""
    own = {r.labels[0]: r for r in rows if r.kind == "result" and r.labels[1] != "M"}
    m = {r.labels[0]: r for r in rows if r.kind == "result" and r.labels[1] == "M"}
    return _with_deltas(rows, [
        (m[k].key, (f"Δ {k}", f"{own[k].labels[1]} vs M"), (own[k].key, m[k].key))
        for k in own if k in m
    ])


_SIMS_ALL = ("acc2", "acc3", "acc5", "f1", "mae", "corr")
_T2 = "sims_multimodal"
_V2T2 = "simsv2_multimodal"

TABLES: dict[str, TableDef] = {
    "table2": TableDef(
        "table2", "Results for sentiment analysis (multimodal, label M)", SIMS_PAPER,
        "Table 2", "sims", ("Model",), _SIMS_ALL,
        rows=(
            _r("EF-LSTM", "ef_lstm", _T2), _r("MFN", "mfn", _T2), _r("MulT", "mult", _T2),
            _r("LF-DNN", "lf_dnn", _T2), _r("MLF-DNN*", "mlf_dnn", _T2),
            _delta("MLF-DNN*", "LF-DNN"),
            _r("LMF", "lmf", _T2), _r("MLMF*", "mlmf", _T2), _delta("MLMF*", "LMF"),
            _r("TFN", "tfn", _T2), _r("MTFN*", "mtfn", _T2), _delta("MTFN*", "TFN"),
            _r("SVR", "svr", _T2), _r("SVR (text)", "svr_text", _T2),
            _r("SVR (audio)", "svr_audio", _T2), _r("SVR (vision)", "svr_vision", _T2),
        ),
        user_task=_T2,
    ),
    "table3": TableDef(
        "table3", "Dataset splits (clips per five-class M label)", SIMS_PAPER, "Table 3",
        "sims", ("Split",), source="data",
        class_names=("Total", "NG", "WN", "NU", "WP", "PS"),
    ),
    "table4": TableDef(
        "table4", "Unimodal sentiment analysis with MLF-DNN", SIMS_PAPER, "Table 4", "sims",
        ("Task", "Label"), ("acc2", "f1", "mae", "corr"),
        rows=_unimodal_rows(tuple(
            Row((mod, lab), "mlf_dnn", f"sims_unimodal_{name}_{suffix}")
            for mod, name in (("A", "audio"), ("V", "vision"), ("T", "text"))
            for lab, suffix in ((mod, "own"), ("M", "m"))
        )),
    ),
    "table5": TableDef(
        "table5", "Multimodal sentiment analysis with different tasks (MLF-DNN)",
        SIMS_PAPER, "Table 5", "sims", ("Tasks",), ("acc2", "f1", "mae", "corr"),
        rows=_with_deltas(
            tuple(Row((", ".join(t.upper()),), "mlf_dnn", f"sims_tasks_{t}")
                  for t in ("m", "mt", "ma", "mv", "mta", "mtv", "mav", "mtav")),
            [(k, (f"Δ {k} vs M",), (k, "M"))
             for k in ("M, T", "M, A", "M, V", "M, T, A", "M, T, V", "M, A, V", "M, T, A, V")],
        ),
    ),
    "v2-table1": TableDef(
        "v2-table1", "Data splits (clips per five-class M label)", V2_PAPER, "Table 1",
        "simsv2", ("Split",), source="data",
        class_names=("Total", "NEG", "WNEG", "NEU", "WPOS", "POS"),
    ),
    "v2-table2": TableDef(
        "v2-table2", "Model performances (multimodal, label M)", V2_PAPER, "Table 2",
        "simsv2", ("Model",), ("acc2", "f1", "acc2_weak", "corr", "r2", "mae"),
        V2_METRIC_LABELS, mae_scaled=False,
        rows=tuple(_r(lab, est, _V2T2) for lab, est in (
            ("LF-DNN", "lf_dnn"), ("TFN", "tfn"), ("LMF", "lmf"), ("MFN", "mfn"),
            ("Graph-MFN", "graph_mfn"), ("MulT", "mult"), ("BERT-MAG", "bert_mag"),
            ("MISA", "misa"), ("MMIM", "mmim"), ("Self-MM", "self_mm"),
            ("MLF-DNN*", "mlf_dnn"), ("MTFN*", "mtfn"), ("MLMF*", "mlmf"),
            ("AV-MC*", "avmc"), ("AV-MC(Semi)*", "avmc_semi"),
        )),
        user_task=_V2T2,
    ),
    "v2-table3": TableDef(
        "v2-table3", "Unimodal sentiment analysis (unimodal LSTM = EF-LSTM on one modality)",
        V2_PAPER, "Table 3", "simsv2", ("Modality", "Label"),
        ("acc2", "acc2_weak", "corr", "mae"), V2_METRIC_LABELS, mae_scaled=False,
        rows=_unimodal_rows((
            Row(("Text", "T"), "ef_lstm", "simsv2_unimodal_text_own"),
            Row(("Text", "M"), "ef_lstm", "simsv2_unimodal_text_m"),
            Row(("Acoustic", "A"), "ef_lstm", "simsv2_unimodal_audio_own"),
            Row(("Acoustic", "M"), "ef_lstm", "simsv2_unimodal_audio_m"),
            Row(("Acoustic (wav2vec 2.0)", "A"), kind="paper",
                note="needs wav2vec 2.0 audio features, which the data does not have"),
            Row(("Acoustic (wav2vec 2.0)", "M"), kind="paper",
                note="needs wav2vec 2.0 audio features, which the data does not have"),
            Row(("Visual", "V"), "ef_lstm", "simsv2_unimodal_vision_own"),
            Row(("Visual", "M"), "ef_lstm", "simsv2_unimodal_vision_m"),
        )),
    ),
    "v2-table4": TableDef(
        "v2-table4", "Ablation study of AV-MC", V2_PAPER, "Table 4", "simsv2", ("Variant",),
        ("acc2", "f1", "acc2_weak", "corr", "r2", "mae"), V2_METRIC_LABELS,
        mae_scaled=False,
        rows=_with_deltas(
            tuple(
                Row((label,), "avmc", f"simsv2_avmc_{variant}")
                for variant, label in (
                    ("no_mixup_av_unimodal", "w/o Mixup-AV & Unimodal tasks"),
                    ("no_mixup_av", "w/o Mixup-AV"),
                    ("no_mixup_a", "w/o Mixup-A"),
                    ("no_mixup_v", "w/o Mixup-V"),
                    ("full", "AV-MC"),
                )
            ),
            [("AV-MC", (f"Δ {k} vs AV-MC",), (k, "AV-MC"))
             for k in ("w/o Mixup-AV & Unimodal tasks", "w/o Mixup-AV", "w/o Mixup-A",
                       "w/o Mixup-V")],
        ),
    ),
}
"""Every table layout by CLI name."""

SIMS_TABLES = ("table2", "table3", "table4", "table5")
V2_TABLES = ("v2-table1", "v2-table2", "v2-table3", "v2-table4")


def get_table(name: str) -> TableDef:
    """A table layout by name (``"table2"``, ``"v2-table4"``...)."""
    key = name.lower()
    if key in TABLES:
        return TABLES[key]
    raise ValueError(f"unknown table {name!r}; choose from {', '.join(TABLES)}")


def tables_for_kind(kind: str) -> tuple[str, ...]:
    """The tables of a dataset kind (v2 tables for ``simsv2``, else SIMS)."""
    return V2_TABLES if kind == "simsv2" else SIMS_TABLES


def table_pairs(
    table: TableDef, user_rows: Iterable[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """The (estimator spec, task) cells a table needs, in row order."""
    pairs = [(r.estimator, r.task) for r in table.rows
             if r.kind == "result" and r.estimator and r.task]
    if table.user_task:
        pairs += [(est, table.user_task) for est, _label in user_rows
                  if (est, table.user_task) not in pairs]
    return pairs


@cache
def published() -> dict[tuple[str, str, str], tuple[float, float | None, str]]:
    """The transcribed paper numbers: ``(table, row, column) -> (mean, std, note)``."""
    path = Path(__file__).resolve().parent / "data" / "published.csv"
    text = path.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    out = {}
    for row in csv.DictReader(lines):
        std = float(row["std"]) if row["std"] else None
        out[(row["table"], row["row"], row["column"])] = (float(row["mean"]), std, row["note"])
    return out


def _published_row(table: str, key: str) -> dict[str, tuple[float, float | None]]:
    return {col: (m, s) for (t, r, col), (m, s, _n) in published().items()
            if t == table and r == key}


# --------------------------------------------------------------------------
# the intermediate form: header lines + label columns + value cells

@dataclass
class Cell:
    mean: float | None = None
    std: float | None = None
    n: int = 0
    signed: bool = False
    n_nan: int = 0  # seeds whose score is NaN (e.g. Corr of a constant prediction)
    marker: str = ""  # significance marker of a Δ cell ("*", "**")
    pvalue: bool = False  # ``mean`` is a p-value: 3 significant digits, exact in CSV
    ci: tuple[float, float] | None = None
    test: TestResult | None = None


@dataclass
class TableRow:
    labels: tuple[str, ...]
    source: str
    cells: dict[str, Cell]
    note: str = ""
    kind: str = "result"


@dataclass
class RenderedTable:
    """A table ready to format: header lines, columns, rows."""

    table: TableDef
    header: list[str]
    rows: list[TableRow]
    compare: bool
    columns: tuple[str, ...]
    ci: bool = False
    per_seed: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    """Row key -> metric -> paper seed -> value (display scale), for the
    result rows with records: what the figures and rankings use."""
    data_info: dict = field(default_factory=dict)
    synthetic: bool = False
    records: list[dict] = field(default_factory=list)
    """The records the table was built from (one per estimator, task, seed)."""
    mode: str | None = None

    def to(self, fmt: str) -> str:
        return render(self, fmt)


def _well_formed(records: Iterable[Any]) -> list[dict]:
    """The records a table can use; malformed ones are left out with a
    :class:`~simsbench.results.RecordWarning` (never an AttributeError)."""
    out = []
    for r in records:
        problem = check_record(r)
        if problem:
            key = r.get("key", "?") if isinstance(r, Mapping) else "?"
            warnings.warn(f"record {key}: {problem}; left out of the table",
                          RecordWarning, stacklevel=3)
        else:
            out.append(r)
    return out


#: What each configuration means, for table headers.
VARIANT_TEXT = {
    "reference": "reference implementation (MMSA / ch-sims-v2 behaviour, defects included: "
                 "the paper's model under the paper's protocol)",
    "corrected": "corrected (every simsbench correction on; 'simsbench run corrections' "
                 "measures each against the reference)",
}


def record_variant(record: Mapping) -> str | None:
    """The configuration a run was asked for (None for records that predate
    configurations: they are shown in no table)."""
    return record.get("requested_variant", record.get("variant"))


def _select(records: Sequence[dict], fingerprint: str | None, mode: str | None,
            variant: str = "reference"):
    recs = [r for r in records if record_variant(r) == variant]
    if fingerprint is None and recs:
        fingerprint = max(recs, key=lambda r: r.get("created", ""))["data"]["fingerprint"]
    recs = [r for r in recs if r.get("data", {}).get("fingerprint") == fingerprint]
    if mode is None and recs:
        ok = [r for r in recs if r.get("status") == "ok"] or recs
        mode = max(ok, key=lambda r: r.get("created", "")).get("mode")
    recs = [r for r in recs if r.get("mode") == mode]
    latest: dict[tuple, dict] = {}
    for r in sorted(recs, key=lambda r: r.get("created", "")):
        latest[(r["estimator"], r["task"], r["seed"])] = r
    return list(latest.values()), fingerprint, mode


@dataclass
class _Summary:
    cells: dict[str, Cell]
    note: str
    values: dict[str, dict[int, float]]  # metric -> paper seed -> scaled value
    run_seeds: dict[int, Any]  # paper seed -> run seed (None when not recorded)


def _summarise(recs: list[dict], table: TableDef) -> _Summary:
    ok = [r for r in recs if r.get("status") == "ok"]
    bad = [r for r in recs if r.get("status") != "ok"]
    cells = {}
    values: dict[str, dict[int, float]] = {}
    for m in table.metrics:
        vals = {r["seed"]: r["scores"][m] * table.scale(m) for r in ok
                if isinstance(r["scores"].get(m), int | float)}
        # A score that is NaN (stored as null: e.g. Corr of a constant
        # prediction) is reported in the cell, not silently dropped.
        n_nan = sum(1 for v in vals.values() if not math.isfinite(v)) + sum(
            1 for r in ok if m in r["scores"] and r["scores"][m] is None)
        vals = {seed: v for seed, v in vals.items() if math.isfinite(v)}
        values[m] = vals
        mean, std, n = aggregate(vals.values())
        cells[m] = Cell(None if n == 0 else mean, None if n == 0 else std, n, n_nan=n_nan,
                        ci=ci95(vals.values()) if n > 1 else None)
    note = ""
    if not recs:
        note = "not run yet"
    elif bad:
        reasons = []
        for r in bad:
            text = f"{r.get('status')}: {r.get('reason') or 'no reason recorded'}"
            if text not in reasons:
                reasons.append(text)
        prefix = "" if not ok else f"{len(bad)} of {len(recs)} seeds failed; "
        note = prefix + "; ".join(reasons)
    return _Summary(cells, note, values, {r["seed"]: r.get("run_seed") for r in ok})


def _shares_seeds(a: _Summary, b: _Summary) -> bool:
    """Whether the runs of each common paper seed had the same run seed."""
    common = set(a.run_seeds) & set(b.run_seeds)
    return bool(common) and all(
        a.run_seeds[s] is not None and a.run_seeds[s] == b.run_seeds[s] for s in common
    )


def _test_note(tests: Sequence[TestResult]) -> str:
    """The Note text of a tested row: the tests' kind and n, or why none ran."""
    texts = []
    for t in tests:
        text = f"{t.test}, n={t.n_label}" if t.test else f"no test: {t.reason}"
        if text not in texts:
            texts.append(text)
    return "; ".join(texts)


def _delta_row(table: TableDef, a: _Summary | None, b: _Summary | None) -> tuple[dict, str]:
    cells: dict[str, Cell] = {}
    tests = []
    paired = a is not None and b is not None and _shares_seeds(a, b)
    for m in table.metrics:
        ca = a.cells.get(m) if a else None
        cb = b.cells.get(m) if b else None
        if ca and cb and ca.mean is not None and cb.mean is not None:
            test = compare(a.values[m], b.values[m], paired=paired)
            tests.append(test)
            cells[m] = Cell(ca.mean - cb.mean, None, test.n, signed=True, test=test)
        else:
            cells[m] = Cell(signed=True)
    if not all(c.mean is not None for c in cells.values()):
        return cells, "needs both rows"
    return cells, _test_note(tests)


def _paper_tests(table: TableDef, ours: _Summary, pub: Mapping) -> dict[str, TestResult]:
    """Welch tests of our per-seed values against the published mean ± std."""
    import numpy as np

    out = {}
    for m, (p_mean, p_std) in pub.items():
        vals = list(ours.values.get(m, {}).values())
        if m not in table.metrics or not vals:
            continue
        sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan
        if p_std is None:  # nothing to test against (the paper printed no std)
            continue
        out[m] = welch_from_summary(float(np.mean(vals)), sd, len(vals), p_mean, p_std,
                                    PAPER_RUNS)
    return out


def build_table(
    table: TableDef | str,
    records: Sequence[dict] = (),
    *,
    data_info: Mapping[str, Any] | None = None,
    compare: bool = True,
    fingerprint: str | None = None,
    mode: str | None = None,
    variant: str = "reference",
    ci: bool = False,
) -> RenderedTable:
    """Assemble a table from run records (or, for split tables, the data).

    Parameters
    ----------
    table : TableDef or str
    records : sequence of dict
        Run records; those of other tables are ignored, malformed ones are
        left out with a :class:`~simsbench.results.RecordWarning`.  When
        several data fingerprints or modes are present, the newest is used
        unless given.
    data_info : mapping, default=None
        The stored data record (description, split table); needed for the
        split tables and used in the header.
    compare : bool, default=True
        Add the paper's published numbers below each row (with, on real
        data, a Welch test of simsbench against them).
    ci : bool, default=False
        Show 95 % confidence intervals (t over seeds) instead of ± std.
    variant : str, default="reference"
        The configuration whose runs are shown (``"reference"``,
        ``"corrected"``); the header names it.
    """
    table = get_table(table) if isinstance(table, str) else table
    rows: list[TableRow] = []
    records = _well_formed(records)
    if table.source == "data":
        columns = table.class_names
        if not data_info or "split_table" not in data_info:
            raise ValueError(f"{table.name} is computed from the data: run "
                             f"'simsbench data describe' or any 'simsbench run' first")
        st = data_info["split_table"]
        for idx, vals in zip(st["index"], st["values"]):
            cells = {c: Cell(float(v), None, 1) for c, v in zip(columns, vals)}
            rows.append(TableRow((idx,), "simsbench", cells))
            if compare:
                pub = _published_row(table.name, idx)
                if pub:
                    rows.append(TableRow((idx,), "paper",
                                         {c: Cell(m, None, 1) for c, (m, _s) in pub.items()}))
        header = _header(table, data_info, [], compare)
        return RenderedTable(table, header, rows, compare, columns, data_info=dict(data_info),
                             synthetic=_is_synthetic(data_info))

    wanted = {(r.estimator, r.task) for r in table.rows if r.kind == "result"}
    relevant = [r for r in records if (r.get("estimator"), r.get("task")) in wanted
                or (table.user_task and r.get("task") == table.user_task)]
    selected, fingerprint, mode = _select(relevant, fingerprint, mode, variant)
    # Estimators run on the table's task that are not paper rows: user rows.
    user_est: dict[str, str] = {}
    for r in selected:
        if (r["estimator"], r["task"]) not in wanted:
            user_est.setdefault(r["estimator"], r.get("estimator_label", r["estimator"]))
    by_cell: dict[tuple, list[dict]] = {}
    for r in selected:
        by_cell.setdefault((r["estimator"], r["task"]), []).append(r)
    layout = list(table.rows)
    for est, label in user_est.items():
        layout.append(Row((label,), est, table.user_task))
    info = dict(data_info or {})
    if not info and selected:
        info = dict(selected[0].get("data", {}))
    synthetic = _is_synthetic(info)
    summaries = {row.key: _summarise(by_cell.get((row.estimator, row.task), []), table)
                 for row in layout if row.kind == "result"}
    for row in layout:
        summary = summaries.get(row.key)
        if row.kind == "result":
            cells, note = summary.cells, summary.note
        elif row.kind == "delta":
            cells, note = _delta_row(table, *(summaries.get(k) for k in row.delta))
        else:
            cells, note = {m: Cell() for m in table.metrics}, row.note
        rows.append(TableRow(row.labels, "simsbench", cells, note, row.kind))
        if compare:
            pub = _published_row(table.name, row.key)
            if pub:
                tests = {}
                if row.kind == "result" and not synthetic:
                    tests = _paper_tests(table, summary, pub)
                paper_cells = {
                    m: Cell(pub[m][0], pub[m][1], 0, signed=row.kind == "delta",
                            test=tests.get(m))
                    for m in table.metrics if m in pub
                }
                note = ""
                if tests:
                    note = f"vs simsbench: {_test_note(list(tests.values()))}"
                    if any(t.test for t in tests.values()):
                        note += f" (paper: {PAPER_RUNS} runs assumed)"
                rows.append(TableRow(row.labels, "paper", paper_cells, note, row.kind))
    seeds = sorted({r["seed"] for r in selected})
    header = _header(table, info, selected, compare, seeds=seeds, mode=mode, ci=ci,
                     variant=variant)
    per_seed = {k: {m: dict(v) for m, v in s.values.items() if v}
                for k, s in summaries.items()}
    return RenderedTable(table, header, rows, compare, table.metrics, ci=ci,
                         per_seed={k: v for k, v in per_seed.items() if v},
                         data_info=info, synthetic=synthetic, records=selected, mode=mode)


def _is_synthetic(info: Mapping) -> bool:
    return bool(info.get("synthetic")) or str(info.get("spec", "")).startswith("synthetic:")


def _header(table: TableDef, info: Mapping, records: Sequence[dict], compare: bool,
            seeds: Sequence[int] = (), mode: str | None = None, ci: bool = False,
            variant: str | None = None) -> list[str]:
    lines = [f"{table.paper} {table.paper_table} -- {table.title} [{table.name}]"]
    desc = info.get("description") or "unknown data"
    lines.append(f"Data: {desc}")
    if info.get("fingerprint"):
        lines.append(f"Data fingerprint: {info['fingerprint']}")
    synthetic = _is_synthetic(info)
    if table.source == "records":
        scale = ("x100, MAE included" if table.mae_scaled
                 else "x100 except MAE (unscaled, as in the v2 paper)")
        has_delta = any(r.kind == "delta" for r in table.rows)
        spread = ("mean [95 % confidence interval: t over seeds, sample std]" if ci
                  else "mean ± population std (ddof=0)")
        lines.append(
            f"Values: {spread} over seeds, " + scale
            + ("; Δ rows: difference of the means" if has_delta else "")
        )
        if has_delta:
            lines.append(
                "Δ tests (two-sided, per metric, over seeds): paired t where both rows' runs "
                "of each seed share its derived seed, Welch t otherwise; test and n in the "
                "Note column, exact p-values in the CSV; * p < 0.05, ** p < 0.01"
            )
        if compare and not synthetic:
            lines.append(
                f"'paper' rows: * p < 0.05, ** p < 0.01 mark a difference from simsbench by "
                f"Welch's t test from the published mean ± std, assuming the papers' "
                f"{PAPER_RUNS} runs per number (std read as a sample std)"
            )
        seed_text = ", ".join(str(s) for s in seeds) if seeds else "none yet"
        lines.append(
            f"Paper seeds: {seed_text} (run seeds derived per task); mode: {mode or 'n/a'}"
        )
        if variant:
            lines.append(f"Configuration: {VARIANT_TEXT.get(variant, variant)}")
            custom = sorted({r.get("estimator_label", r.get("estimator", "?")) for r in records
                             if r.get("variant") not in (None, variant)})
            if custom:
                lines.append("Rows whose spec overrides a correction parameter (custom "
                             "configuration): " + ", ".join(custom))
        if mode and "quick" in mode:
            lines.append(
                "QUICK SMOKE RUN: one seed, capped epochs and a subsampled training set; "
                "these numbers check that everything runs, they are not benchmark results"
            )
    vers: dict[str, str] = {}
    for r in records:
        for k, v in (r.get("versions") or {}).items():
            vers.setdefault(k, v)
    if not vers and info.get("versions"):
        vers = dict(info["versions"])
    if vers:
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(vers.items())))
    if synthetic:
        lines.append(
            "SIMULATED DATA: the simsbench rows are NOT CH-SIMS results and must not be "
            "presented as such" + ("; 'paper' rows are the published numbers" if compare else "")
        )
    elif compare:
        lines.append("'paper' rows are the published numbers")
    return lines


# --------------------------------------------------------------------------
# formatting

def _fmt(cell: Cell, decimals: int, with_std: bool = True, ci: bool = False) -> str:
    nan = f"NaN in {cell.n_nan} of {cell.n + cell.n_nan} seeds" if cell.n_nan else ""
    if cell.mean is None or (isinstance(cell.mean, float) and math.isnan(cell.mean)):
        return f"n/a ({nan})" if nan else "n/a"
    if cell.pvalue:
        return f"{cell.mean:.3g}"
    mark = cell.test.marker if cell.test is not None else cell.marker
    if cell.signed:
        return f"{cell.mean:+.{decimals}f}{mark}"
    text = f"{cell.mean:.{decimals}f}"
    if ci and cell.ci is not None and cell.n > 1:
        text += f" [{cell.ci[0]:.{decimals}f}, {cell.ci[1]:.{decimals}f}]"
    elif with_std and cell.std is not None and (cell.n > 1 or cell.n == 0):
        text += f" ± {cell.std:.{decimals}f}"
    if nan:  # the mean is over the other seeds: say so in the cell
        text += f" ({nan})"
    return text + mark


def _grid(rt: RenderedTable) -> tuple[list[str], list[list[str]]]:
    t = rt.table
    data_table = t.source == "data"
    head = list(t.label_columns)
    if rt.compare:
        head.append("Source")
    labels = t.metric_labels
    head += [labels.get(c, c) for c in rt.columns]
    has_note = any(r.note for r in rt.rows)
    if has_note:
        head.append("Note")
    body = []
    for r in rt.rows:
        line = list(r.labels)
        if rt.compare:
            line.append(r.source)
        for c in rt.columns:
            cell = r.cells.get(c, Cell())
            dec = 0 if data_table else t.decimals(c)
            line.append(_fmt(cell, dec, ci=rt.ci))
        if has_note:
            line.append(r.note)
        body.append(line)
    return head, body


def table_grid(rt: RenderedTable) -> tuple[list[str], list[list[str]]]:
    """The formatted header and body cells of a table (one body row per
    ``rt.rows`` entry), as the Markdown and LaTeX outputs print them."""
    return _grid(rt)


def _markdown(rt: RenderedTable) -> str:
    head, body = _grid(rt)
    esc = [[c.replace("|", "\\|") for c in row] for row in [head, *body]]
    widths = [max(len(row[i]) for row in esc) for i in range(len(head))]
    n_lab = len(rt.table.label_columns) + (1 if rt.compare else 0)
    note_col = len(head) - 1 if head[-1] == "Note" else None

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    aligns = []
    for i, w in enumerate(widths):
        left = i < n_lab or i == note_col
        aligns.append((":" + "-" * max(w - 1, 2)) if left else ("-" * max(w - 1, 2) + ":"))
    out = [*(f"> {h}" for h in rt.header), "", line(esc[0]),
           "| " + " | ".join(a.ljust(w) for a, w in zip(aligns, widths)) + " |"]
    out += [line(r) for r in esc[1:]]
    return "\n".join(out) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "²": r"$^2$", "−": "--", "×": r"$\times$",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (and the few Unicode signs we print)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(rt: RenderedTable) -> str:
    head, body = _grid(rt)
    n_lab = len(rt.table.label_columns) + (1 if rt.compare else 0)
    has_note = head[-1] == "Note"
    spec = "l" * n_lab + "r" * len(rt.columns) + ("l" if has_note else "")
    out = [f"% {latex_escape(h)}" for h in rt.header]
    out += ["% requires \\usepackage{booktabs}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
            " & ".join(latex_escape(h) for h in head) + r" \\", "\\midrule"]
    prev_source = None
    for row, cells in zip(rt.rows, body):
        if rt.compare and row.source == "simsbench" and prev_source == "paper":
            out.append("\\addlinespace")
        prev_source = row.source
        out.append(" & ".join(latex_escape(c) for c in cells) + r" \\")
    out += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(out) + "\n"


def _csv(rt: RenderedTable) -> str:
    t = rt.table
    buf = io.StringIO()
    for h in rt.header:
        buf.write(f"# {h}\n")
    w = csv.writer(buf, lineterminator="\n")
    head = [c.lower() for c in t.label_columns] + ["source"]
    data_table = t.source == "data"
    for c in rt.columns:
        head += [c] if data_table else [c, f"{c}_std"]
    head += ["n", "note"]
    if not data_table:  # appended, so the columns before keep their places
        head += ["test"] + [f"{c}_p" for c in rt.columns]
        if rt.ci:
            head += [f"{c}_{end}" for c in rt.columns for end in ("ci_low", "ci_high")]
    w.writerow(head)
    for r in rt.rows:
        line = [*r.labels, r.source]
        ns = []
        for c in rt.columns:
            cell = r.cells.get(c, Cell())
            dec = 0 if data_table else t.decimals(c)
            mean = ("" if cell.mean is None or math.isnan(cell.mean)
                    else repr(float(cell.mean)) if cell.pvalue else f"{cell.mean:.{dec}f}")
            line.append(mean)
            if not data_table:
                std = "" if cell.std is None or math.isnan(cell.std) else f"{cell.std:.{dec}f}"
                line.append(std)
            ns.append(cell.n)
        line += [max(ns) if ns else 0, r.note]
        if not data_table:
            cells = [r.cells.get(c, Cell()) for c in rt.columns]
            kinds = []
            for cell in cells:
                if cell.test is not None and cell.test.test and cell.test.test not in kinds:
                    kinds.append(cell.test.test)
            line.append("; ".join(kinds))
            line += ["" if cell.test is None or cell.test.p is None else repr(cell.test.p)
                     for cell in cells]
            if rt.ci:
                for c, cell in zip(rt.columns, cells):
                    if cell.ci is not None and cell.n > 1:
                        line += [f"{v:.{t.decimals(c)}f}" for v in cell.ci]
                    else:
                        line += ["", ""]
        w.writerow(line)
    return buf.getvalue()


def render(rt: RenderedTable, fmt: str = "markdown") -> str:
    """Format a built table as ``"markdown"``, ``"latex"`` or ``"csv"``."""
    fmt = {"md": "markdown", "tex": "latex"}.get(fmt, fmt)
    if fmt == "markdown":
        return _markdown(rt)
    if fmt == "latex":
        return _latex(rt)
    if fmt == "csv":
        return _csv(rt)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def table_from_results(
    name: str,
    results_dir: str | os.PathLike,
    slug: str,
    *,
    compare: bool = True,
    mode: str | None = None,
    variant: str = "reference",
    ci: bool = False,
) -> RenderedTable:
    """Build a table from the records stored under ``results_dir`` for ``slug``."""
    table = get_table(name)
    records = read_records(results_dir, slug)
    fp = None
    if table.source == "records":
        pairs = {(r.estimator, r.task) for r in table.rows}
        mine = [r for r in records if (r.get("estimator"), r.get("task")) in pairs
                or (table.user_task and r.get("task") == table.user_task)]
        if mine:
            fp = max(mine, key=lambda r: r.get("created", ""))["data"]["fingerprint"]
    info = read_data_record(results_dir, slug, fp)
    return build_table(table, records, data_info=info, compare=compare, fingerprint=fp,
                       mode=mode, variant=variant, ci=ci)
