"""The corrections table: what each reference defect costs, measured.

The paper tables run every model in its reference configuration (the
reference implementation's behaviour, defects included).  Each deliberate
difference simsbench knows of is a named correction of the estimator
(:mod:`simsbench.estimators._fidelity`).  This table shows, per paper model,
the reference and the corrected configuration on the same seeds, their
difference per metric and a paired t-test over seeds (both runs of a seed
share its derived ``random_state``), and, for the cheap models, one ablation
row per correction (the reference with that correction alone).

No published toolkit reports these numbers.  Like every table, it names its
data; numbers from synthetic data are not CH-SIMS results.

Imports no torch: the runner resolves the estimators' corrections when it
plans the runs (:func:`correction_requests` takes them as input).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from simsbench.results import aggregate
from simsbench.stats import compare
from simsbench.tables import (
    METRIC_LABELS,
    V2_METRIC_LABELS,
    Cell,
    RenderedTable,
    TableDef,
    TableRow,
    _header,
    _select,
    _well_formed,
    record_variant,
)

__all__ = [
    "ABLATED",
    "CORRECTION_TABLES",
    "CorrectionTable",
    "build_corrections_table",
]


@dataclass(frozen=True)
class CorrectionTable:
    """Which models a dataset kind's corrections table covers."""

    kind: str
    task: str
    estimators: tuple[tuple[str, str], ...]  # (spec name, row label)
    definition: TableDef


_SIMS_METRICS = ("acc2", "acc3", "acc5", "f1", "mae", "corr")
_V2_METRICS = ("acc2", "f1", "acc2_weak", "corr", "r2", "mae")

CORRECTION_TABLES: dict[str, CorrectionTable] = {
    "sims": CorrectionTable(
        "sims", "sims_multimodal",
        (("ef_lstm", "EF-LSTM"), ("lf_dnn", "LF-DNN"), ("tfn", "TFN"), ("lmf", "LMF"),
         ("mfn", "MFN"), ("graph_mfn", "Graph-MFN"), ("mult", "MulT"),
         ("mlf_dnn", "MLF-DNN*"), ("mtfn", "MTFN*"), ("mlmf", "MLMF*")),
        TableDef("corrections", "Corrections: corrected - reference configuration, "
                 "multimodal label M", "simsbench", "corrections table", "sims",
                 ("Model", "Configuration"), _SIMS_METRICS, METRIC_LABELS),
    ),
    "simsv2": CorrectionTable(
        "simsv2", "simsv2_multimodal",
        (("avmc", "AV-MC*"), ("avmc_semi", "AV-MC (Semi)*"), ("mult", "MulT"),
         ("misa", "MISA"), ("mmim", "MMIM"), ("self_mm", "Self-MM")),
        TableDef("v2-corrections", "Corrections: corrected - reference configuration, "
                 "multimodal label M", "simsbench", "corrections table", "simsv2",
                 ("Model", "Configuration"), _V2_METRICS, V2_METRIC_LABELS,
                 mae_scaled=False),
    ),
}
"""The corrections table of each dataset kind."""

ABLATED = ("ef_lstm", "lf_dnn", "tfn", "lmf")
"""Models cheap enough for one ablation row per correction."""


def _scores(recs: Iterable[Mapping], metric: str, scale: float) -> dict[int, float]:
    out = {}
    for r in recs:
        if r.get("status") != "ok" or not isinstance(r.get("scores"), Mapping):
            continue
        v = r["scores"].get(metric)
        if isinstance(v, int | float):
            out[int(r["seed"])] = float(v) * scale
    return out


def build_corrections_table(
    kind: str,
    records: Sequence[dict],
    *,
    data_info: Mapping | None = None,
    corrections: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    fingerprint: str | None = None,
    mode: str | None = None,
) -> RenderedTable:
    """Assemble the corrections table of a dataset kind from run records.

    Parameters
    ----------
    kind : {"sims", "simsv2"}
    records : sequence of dict
        Run records of the table's task (other records are ignored).
    data_info : mapping, default=None
        The stored data record, for the header.
    corrections : mapping, default=None
        Per estimator spec name, its ``(name, summary)`` corrections (the
        header lists them); without it, what the runs' records list.
    fingerprint, mode : str, default=None
        Which data and mode (default: the newest).
    """
    ct = CORRECTION_TABLES[kind]
    t = ct.definition
    mine = [r for r in _well_formed(records) if r.get("task") == ct.task
            and r.get("estimator") in dict(ct.estimators)]
    # One data fingerprint and mode for the whole table, then per variant.
    ref_sel, fingerprint, mode = _select(mine, fingerprint, mode, "reference")
    by_variant: dict[str, list[dict]] = {}
    for variant in sorted({record_variant(r) or "" for r in mine}):
        if variant:
            by_variant[variant], _, _ = _select(mine, fingerprint, mode, variant)
    rows: list[TableRow] = []
    used: list[dict] = []
    if corrections is None:  # what the runs' records say they had
        corrections = {}
        for r in sorted(mine, key=lambda r: r.get("created", "")):
            if isinstance(r.get("corrections"), list):
                corrections[r["estimator"]] = [
                    tuple(c) for c in r["corrections"] if isinstance(c, list)
                    and len(c) == 2 and all(isinstance(x, str) for x in c)]
    corrections = dict(corrections)
    for est, label in ct.estimators:
        def recs_of(variant, est=est):
            return [r for r in by_variant.get(variant, []) if r.get("estimator") == est]

        ref, cor = recs_of("reference"), recs_of("corrected")
        used += ref + cor
        ablations = sorted(v for v in by_variant if v.startswith("reference+")
                           and recs_of(v))
        for variant, recs in (("reference", ref), ("corrected", cor)):
            cells = {}
            for m in t.metrics:
                vals = _scores(recs, m, t.scale(m))
                mean, std, n = aggregate(vals.values())
                cells[m] = Cell(None if n == 0 else mean, None if n == 0 else std, n)
            names = [c for c, _ in corrections.get(est, ())]
            note = ("not run yet" if not recs else
                    ", ".join(names) if variant == "corrected" and names else "")
            rows.append(TableRow((label, variant), "simsbench", cells, note))
        for variant in ["corrected", *ablations]:
            recs = recs_of(variant)
            used += recs
            delta, pvals, ns, reasons = {}, {}, [], []
            for m in t.metrics:
                a, b = _scores(recs, m, t.scale(m)), _scores(ref, m, t.scale(m))
                test = compare(a, b, paired=True)  # paired on the shared seeds
                ns.append(test.n)
                if not set(a) & set(b):
                    delta[m] = Cell(signed=True)
                    pvals[m] = Cell(pvalue=True)
                    continue
                if test.p is None and test.reason not in reasons:
                    reasons.append(test.reason)
                delta[m] = Cell(test.diff_mean, None, test.n, signed=True, test=test)
                pvals[m] = Cell(test.p, None, test.n, pvalue=True)
            name = "corrected" if variant == "corrected" else variant.split("+", 1)[1]
            n_max = max(ns) if ns else 0
            rows.append(TableRow((label, f"Δ {name} - reference"), "simsbench", delta,
                                 "" if n_max else "needs both configurations"))
            rows.append(TableRow((label, f"p (paired t, n={n_max})"), "simsbench", pvals,
                                 "no test: fewer than 2 paired seeds" if n_max < 2 else
                                 "; ".join(f"no test: {r}" for r in reasons)))
    info = dict(data_info or {})
    if not info and ref_sel:
        info = dict(ref_sel[0].get("data", {}))
    seeds = sorted({r["seed"] for r in used})
    header = _header(t, info, used, compare=False, seeds=seeds, mode=mode, variant=None)
    header.insert(1, "Rows: each model's reference and corrected configuration on the same "
                     "seeds; Δ = mean over seeds of (corrected - reference), * p < 0.05, "
                     "** p < 0.01 (two-sided paired t over seeds); Δ NAME rows: the "
                     "reference with that correction alone")
    lists = [list(corrections[est]) for est, _ in ct.estimators if corrections.get(est)]
    shared = ([c for c in lists[0] if all(c in other for other in lists[1:])]
              if len(lists) > 1 else [])
    for name, summary in shared:
        header.append(f"every model / {name}: {summary}")
    for est, label in ct.estimators:
        for name, summary in corrections.get(est, ()):
            if (name, summary) not in shared:
                header.append(f"{label} / {name}: {summary}")
    return RenderedTable(t, header, rows, False, t.metrics)
