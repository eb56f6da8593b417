"""The layouts of the papers' tables: columns, rows, and the (estimator, task)
cells each needs.  Rows of a task grid's cells are read from the grid's task
file (:class:`GridRows`).  Imports no torch."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

__all__ = [
    "METRIC_LABELS",
    "SIMS_TABLES",
    "TABLES",
    "V2_METRIC_LABELS",
    "V2_TABLES",
    "GridRows",
    "Row",
    "TableDef",
    "get_table",
    "published",
    "published_row",
    "table_pairs",
    "tables_for_kind",
]

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
class GridRows:
    """Rows read from a task grid (``tasks/<grid>.toml``), not from file names.

    One result row of ``estimator`` per cell, labelled by the cell's protocol
    (:attr:`simsbench.protocols.Protocol.label`: the task set, the AV-MC
    variant), and a Δ row of every other cell against the ``baseline`` cell,
    placed after the later of the two rows.
    """

    grid: str
    estimator: str
    baseline: str
    """The task name of the cell every other cell is compared with."""

    def rows(self) -> tuple[Row, ...]:
        from simsbench.specs import builtin_task_grid

        cells = [Row((t.make_protocol().label,), self.estimator, t.name)
                 for t in builtin_task_grid(self.grid)]
        at = {r.task: i for i, r in enumerate(cells)}
        if self.baseline not in at:
            raise ValueError(f"task grid {self.grid!r} has no cell {self.baseline!r}")
        base = cells[at[self.baseline]]
        return _with_deltas(tuple(cells), [
            (cells[max(i, at[base.task])].key, (f"Δ {r.key} vs {base.key}",), (r.key, base.key))
            for i, r in enumerate(cells) if r is not base
        ])


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
    layout: tuple[Row, ...] | GridRows = ()
    """The rows, or the task grid they are read from."""
    user_task: str | None = None
    source: str = "records"  # or "data"
    class_names: tuple[str, ...] = ()

    @cached_property
    def rows(self) -> tuple[Row, ...]:
        """The rows of the table (a grid's read from its task file when first asked for)."""
        return self.layout.rows() if isinstance(self.layout, GridRows) else self.layout

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
        layout=(
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
        layout=_unimodal_rows(tuple(
            Row((mod, lab), "mlf_dnn", f"sims_unimodal_{name}_{suffix}")
            for mod, name in (("A", "audio"), ("V", "vision"), ("T", "text"))
            for lab, suffix in ((mod, "own"), ("M", "m"))
        )),
    ),
    "table5": TableDef(
        "table5", "Multimodal sentiment analysis with different tasks (MLF-DNN)",
        SIMS_PAPER, "Table 5", "sims", ("Tasks",), ("acc2", "f1", "mae", "corr"),
        layout=GridRows("sims_tasks", "mlf_dnn", baseline="sims_tasks_m"),
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
        layout=tuple(_r(lab, est, _V2T2) for lab, est in (
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
        layout=_unimodal_rows((
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
        layout=GridRows("simsv2_avmc", "avmc", baseline="simsv2_avmc_full"),
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


def published_row(table: str, key: str) -> dict[str, tuple[float, float | None]]:
    return {col: (m, s) for (t, r, col), (m, s, _n) in published().items()
            if t == table and r == key}
