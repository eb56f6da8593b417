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

The pieces: :mod:`simsbench.table_layouts` (what each table holds),
:mod:`simsbench.table_summary` (records to cells), :mod:`simsbench.table_render`
(cells to Markdown, LaTeX, CSV); this module assembles them.

Tables
------
``table2``     CH-SIMS Table 2: every model of the paper + SVR baselines, with
               the Δ rows of each multi-task model over its single-task original
``table3``     CH-SIMS Table 3: splits × sentiment classes (from the data)
``table4``     CH-SIMS Table 4: MLF-DNN on one modality, own label vs M label
``table5``     CH-SIMS Table 5: MLF-DNN over the 8 task sets (the cells of
               the ``tasks/sims_tasks.toml`` grid)
``v2-table1``  CH-SIMS v2 Table 1: splits × classes (from the data)
``v2-table2``  CH-SIMS v2 Table 2: its model list (MAE unscaled, as printed)
``v2-table3``  CH-SIMS v2 Table 3: unimodal LSTM (EF-LSTM on one modality)
``v2-table4``  CH-SIMS v2 Table 4: the AV-MC ablation (``tasks/simsv2_avmc.toml``)
"""


from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from simsbench._data_record import is_synthetic
from simsbench.results import read_data_record, read_records
from simsbench.stats import PAPER_RUNS
from simsbench.table_layouts import (
    METRIC_LABELS,
    SIMS_TABLES,
    TABLES,
    V2_METRIC_LABELS,
    V2_TABLES,
    GridRows,
    Row,
    TableDef,
    get_table,
    published,
    published_row,
    table_pairs,
    tables_for_kind,
)
from simsbench.table_render import EXTENSIONS, FORMATS, latex_escape, render, table_grid
from simsbench.table_summary import (
    VARIANT_TEXT,
    Cell,
    RenderedTable,
    TableContent,
    TableRow,
    _delta_row,
    _header,
    _paper_tests,
    _select,
    _summarise,
    _test_note,
    _well_formed,
    record_frame,
    record_variant,
)

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "METRIC_LABELS",
    "SIMS_TABLES",
    "TABLES",
    "V2_METRIC_LABELS",
    "V2_TABLES",
    "VARIANT_TEXT",
    "Cell",
    "GridRows",
    "RenderedTable",
    "Row",
    "TableContent",
    "TableDef",
    "TableRow",
    "build_table",
    "get_table",
    "latex_escape",
    "published",
    "published_row",
    "record_variant",
    "render",
    "table_from_results",
    "table_grid",
    "table_pairs",
    "tables_for_kind",
]


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
) -> TableContent:
    """Assemble a table from run records (or, for split tables, the data);
    :func:`render` formats it.

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
                pub = published_row(table.name, idx)
                if pub:
                    rows.append(TableRow((idx,), "paper",
                                         {c: Cell(m, None, 1) for c, (m, _s) in pub.items()}))
        header = _header(table, data_info, [], compare)
        return TableContent(table, header, rows, compare, columns, data_info=dict(data_info),
                             synthetic=is_synthetic(data_info))

    wanted = {(r.estimator, r.task) for r in table.rows if r.kind == "result"}
    relevant = [r for r in records if (r.get("estimator"), r.get("task")) in wanted
                or (table.user_task and r.get("task") == table.user_task)]
    selected, fingerprint, mode = _select(relevant, fingerprint, mode, variant)
    frame = record_frame(selected)
    cells_of = frame.groupby(["estimator", "task"], sort=False).indices
    # Estimators run on the table's task that are not paper rows: user rows.
    users = frame.loc[[pair not in wanted for pair in zip(frame.estimator, frame.task)]]
    layout = list(table.rows) + [
        Row((selected[i].get("estimator_label", est),), est, table.user_task)
        for est, i in users.drop_duplicates("estimator")[["estimator", "position"]].itertuples(
            index=False)
    ]
    info = dict(data_info or {})
    if not info and selected:
        info = dict(selected[0].get("data", {}))
    synthetic = is_synthetic(info)
    summaries = {
        row.key: _summarise([selected[i] for i in cells_of.get((row.estimator, row.task), ())],
                            table)
        for row in layout if row.kind == "result"}
    for row in layout:
        summary = summaries.get(row.key)
        if row.kind == "result":
            assert summary is not None  # every result row is summarised above
            cells, note = summary.cells, summary.note
        elif row.kind == "delta":
            cells, note = _delta_row(table, *(summaries.get(k) for k in row.delta or ()))
        else:
            cells, note = {m: Cell() for m in table.metrics}, row.note
        rows.append(TableRow(row.labels, "simsbench", cells, note, row.kind))
        if compare:
            pub = published_row(table.name, row.key)
            if pub:
                tests = {}
                if row.kind == "result" and not synthetic and summary is not None:
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
    return TableContent(table, header, rows, compare, table.metrics, ci=ci,
                         per_seed={k: v for k, v in per_seed.items() if v},
                         data_info=info, synthetic=synthetic, records=selected, mode=mode)


def table_from_results(
    name: str,
    results_dir: str | os.PathLike,
    slug: str,
    *,
    compare: bool = True,
    mode: str | None = None,
    variant: str = "reference",
    ci: bool = False,
) -> TableContent:
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
