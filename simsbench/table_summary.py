"""From run records to a built table's cells: record selection, per-cell
summaries over seeds (mean ± std, confidence intervals), Δ rows with their
tests, the paper-row tests and the header.  Imports no torch."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simsbench._data_record import is_synthetic
from simsbench.results import RecordWarning, aggregate, check_record
from simsbench.stats import PAPER_RUNS, TestResult, ci95, compare, welch_from_summary
from simsbench.table_layouts import TableDef

__all__ = [
    "VARIANT_TEXT",
    "Cell",
    "RenderedTable",
    "TableContent",
    "TableRow",
    "record_frame",
    "record_variant",
    "run_settings",
]

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
class TableContent:
    """A built table, not yet rendered: header lines, columns, rows of
    :class:`Cell` values (:func:`simsbench.table_render.render` formats it)."""

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


RenderedTable = TableContent
"""The former name of :class:`TableContent`."""


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


def run_settings(records: Sequence[Mapping]) -> list[str]:
    """Header lines for runs made off the reference's float32 CPU arithmetic
    (``--precision bfloat16``, ``--device cuda``): which rows, and how."""
    found: dict[tuple[str, str], set[str]] = {}
    for r in records:
        params = r.get("params")
        if not isinstance(params, Mapping):
            continue
        label = str(r.get("estimator_label", r.get("estimator", "?")))
        precision = params.get("precision", "float32")
        if precision != "float32":
            found.setdefault(("precision", str(precision)), set()).add(label)
        device = params.get("device", "cpu")
        if device != "cpu":
            found.setdefault(("device", str(device)), set()).add(label)
    lines = []
    for (what, value), rows in sorted(found.items()):
        if what == "precision":
            lines.append(f"Arithmetic: {value} autocast (--precision {value}), not the "
                         f"reference's float32, in: " + ", ".join(sorted(rows)))
        else:
            lines.append(f"Device: {value} (--device {value}) in: " + ", ".join(sorted(rows)))
    return lines


def record_variant(record: Mapping) -> str | None:
    """The configuration a run was asked for (None for records that predate
    configurations: they are shown in no table)."""
    return record.get("requested_variant", record.get("variant"))


def _select(records: Sequence[dict], fingerprint: str | None, mode: str | None,
            variant: str = "reference"):
    """The records of one configuration, data fingerprint and mode (the newest
    when not given): the latest record of each (estimator, task, seed), in
    the order each of them first appears by creation time."""
    recs = [r for r in records if record_variant(r) == variant]
    if fingerprint is None and recs:
        fingerprint = max(recs, key=lambda r: r.get("created", ""))["data"]["fingerprint"]
    recs = [r for r in recs if r.get("data", {}).get("fingerprint") == fingerprint]
    if mode is None and recs:
        ok = [r for r in recs if r.get("status") == "ok"] or recs
        mode = max(ok, key=lambda r: r.get("created", "")).get("mode")
    recs = [r for r in recs if r.get("mode") == mode]
    frame = record_frame(recs).sort_values("created", kind="stable")
    latest = frame.groupby(list(_RUN), sort=False, dropna=False)["position"].last()
    return [recs[i] for i in latest], fingerprint, mode


_RUN = ("estimator", "task", "seed")


def record_frame(records: Sequence[Mapping]):
    """One row per record: its estimator, task, seed, creation time and position."""
    import pandas as pd

    return pd.DataFrame({
        "estimator": [r.get("estimator") for r in records],
        "task": [r.get("task") for r in records],
        "seed": [r.get("seed") for r in records],
        "created": [r.get("created", "") for r in records],
        "position": range(len(records)),
    }, columns=[*_RUN, "created", "position"])


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
            assert a is not None and b is not None  # they have cells
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


def _header(table: TableDef, info: Mapping, records: Sequence[dict], compare: bool,
            seeds: Sequence[int] = (), mode: str | None = None, ci: bool = False,
            variant: str | None = None) -> list[str]:
    lines = [f"{table.paper} {table.paper_table} -- {table.title} [{table.name}]"]
    desc = info.get("description") or "unknown data"
    lines.append(f"Data: {desc}")
    if info.get("fingerprint"):
        lines.append(f"Data fingerprint: {info['fingerprint']}")
    synthetic = is_synthetic(info)
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
        lines += run_settings(records)
        if mode and "quick" in mode:
            lines.append(
                "QUICK SMOKE RUN: one seed, capped epochs, subsampled training, validation "
                "and test sets; these numbers check that everything runs, they are not "
                "benchmark results"
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
