"""Which runs each table needs: the (estimator spec, task) cells of the
named tables on each data set, and their requests.

Used by :func:`simsbench.suite.run_tables`; reads specs and table layouts,
never data (a feature file's kind is read from its cache metadata).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simsbench.corrections import ABLATED, CORRECTION_TABLES, CorrectionTable
from simsbench.datasets import dataset_kind
from simsbench.results import RecordWarning
from simsbench.runner import RunRequest, correction_variants, requests_for
from simsbench.specs import SpecSet, load_specs
from simsbench.tables import TABLES, TableDef, get_table, table_pairs, tables_for_kind

__all__ = [
    "SuiteWarning",
    "TableGrid",
    "check_names",
    "check_rows",
    "plan_tables",
    "table_requests",
]

_DEFAULT_DATA = (("synthetic:sims", "sims"), ("synthetic:simsv2", "simsv2"))


class SuiteWarning(RecordWarning):
    """A table row whose runs cannot be made (no estimator spec of its name):
    its records stay empty, the other rows run."""


@dataclass
class TableGrid:
    """What the tables of one data set need: their (estimator spec, task)
    cells and, for the corrections table, each model's configurations."""

    data: str
    tables: list[TableDef]
    corrections: CorrectionTable | None = None
    pairs: list[tuple[str, str]] = field(default_factory=list)
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The tables' names (``"corrections"`` for the corrections table)."""
        return [t.name for t in self.tables] + (["corrections"] if self.corrections else [])


def _paper_rows() -> set[str]:
    return {r.estimator for t in TABLES.values() for r in t.rows if r.estimator}


def plan_tables(
    tables: str | Sequence[str] = "tables",
    data: Sequence[str] = (),
    *,
    specs: SpecSet | None = None,
    ablations: bool | None = None,
) -> list[TableGrid]:
    """The cells each data set's tables need (no data is loaded).

    Parameters
    ----------
    tables : str or sequence of str, default="tables"
        ``"tables"`` (every table of each data set's kind, with the
        corrections table), ``"corrections"``, or table names.
    data : sequence of str, default=()
        Data specs; default: each table's synthetic data (``"tables"`` and
        ``"corrections"``: ``synthetic:sims`` and ``synthetic:simsv2``).  The
        kind of a feature file is read cheaply
        (:func:`~simsbench.datasets.dataset_kind`).
    specs : SpecSet, default=None
        The estimator and task specs (default: the built-in ones).
    ablations : bool, default=None
        Corrections table: one row per correction for the cheap models
        (default: on when ``tables`` is ``"corrections"``).

    Examples
    --------
    >>> [grid] = plan_tables("table5")
    >>> grid.data, grid.names, sorted({estimator for estimator, _task in grid.pairs})
    ('synthetic:sims', ['table5'], ['mlf_dnn'])
    """
    specs = load_specs() if specs is None else specs
    targets = [t.lower() for t in ((tables,) if isinstance(tables, str) else tables)]
    if ablations is None:
        ablations = targets == ["corrections"]
    plan: dict[str, list[str]] = {}  # data -> table names, in order
    kinds: dict[str, str] = {}
    for target in targets:
        if target in ("tables", "corrections"):
            found = [(d, dataset_kind(d)) for d in data] if data else list(_DEFAULT_DATA)
            for d, kind in found:
                kinds[d] = kind
                plan.setdefault(d, []).extend(
                    (tables_for_kind(kind) if target == "tables" else ()) + ("corrections",))
        else:
            table = get_table(target)
            for d in data or [table.default_data]:
                plan.setdefault(d, []).append(table.name)
    grids = []
    for d, names in plan.items():
        names = list(dict.fromkeys(names))
        data_kind = kinds.get(d)
        grid = TableGrid(d, [get_table(n) for n in names if n != "corrections"])
        for t in grid.tables:
            user = [(s.name, s.label) for s in specs.estimators.values() if t.name in s.tables]
            grid.pairs += [p for p in table_pairs(t, user) if p not in grid.pairs]
        if "corrections" in names:
            grid.corrections = CORRECTION_TABLES["simsv2" if data_kind == "simsv2" else "sims"]
            for est, _label in grid.corrections.estimators:
                if est in specs.estimators:
                    grid.variants[est] = correction_variants(
                        specs.estimator(est), ablate=ablations and est in ABLATED)
                    if (est, grid.corrections.task) not in grid.pairs:
                        grid.pairs.append((est, grid.corrections.task))
        grids.append(grid)
    return grids


def check_names(only: Sequence[str], specs: SpecSet, results) -> None:
    """Fail (one line) on a name that is no estimator spec."""
    unknown = [n for n in only if n not in specs.estimators]
    if unknown:
        tuned = sorted(Path(results).glob(f"tuned/*/estimators/{unknown[0]}.toml"))
        hint = f"; {tuned[0]} is a tuned spec: add --specs {tuned[0].parent.parent}" \
            if tuned else ""
        raise ValueError(f"--estimators: unknown estimator spec {unknown[0]!r} "
                         f"(`simsbench list estimators` shows them{hint})")


def check_rows(only: Sequence[str], grids: Sequence[TableGrid]) -> None:
    """Fail (one line) on a name that is no row of the tables."""
    rows = list(dict.fromkeys(e for g in grids for e, _task in g.pairs))
    # a spec that is no paper row (a tuned or user spec) may join the tables
    # that take extra rows
    takes_extra = any(t.user_task for g in grids for t in g.tables)
    missing = [n for n in only if n not in rows
               and not (takes_extra and n not in _paper_rows())]
    if missing:
        names = list(dict.fromkeys(
            [t.name for g in grids for t in g.tables]
            + [g.corrections.definition.name for g in grids if g.corrections is not None]))
        raise ValueError(f"--estimators: {missing[0]!r} is not a row of "
                         f"{', '.join(names)} (its rows: {', '.join(rows) or 'none'})")


def table_requests(
    grid: TableGrid,
    specs: SpecSet,
    *,
    estimators: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    variant: str = "reference",
    quick: bool = False,
    tiny: bool = False,
    device: str = "cpu",
    precision: str = "float32",
) -> list[RunRequest]:
    """The runs of one :class:`TableGrid`, deduplicated in order.

    ``estimators`` keeps only these rows (a named spec that is no paper row,
    a tuned or user spec, joins the tables that take extra rows); a cell
    whose estimator has no spec is left out with a :class:`SuiteWarning`.
    The corrections table's task gets every configuration it needs (its
    reference runs are the paper table's, shared by key).  Deep estimators
    run on ``device`` with ``precision``.
    """
    pairs = grid.pairs
    if estimators:
        pairs = [(e, t) for e, t in pairs if e in estimators]
        extra = [e for e in estimators if e not in _paper_rows()]
        pairs += [(e, t.user_task) for t in grid.tables for e in extra
                  if t.user_task and (e, t.user_task) not in pairs]
    requests: list[RunRequest] = []
    for e, t in pairs:
        if e not in specs.estimators:
            warnings.warn(f"no estimator spec {e!r}; its rows stay empty", SuiteWarning,
                          stacklevel=2)
            continue
        task = specs.task(t)
        vmap = ({e: tuple(dict.fromkeys((variant, *grid.variants.get(e, ()))))}
                if grid.corrections is not None and t == grid.corrections.task else None)
        for req in requests_for([(specs.estimator(e), task)], grid.data, quick=quick,
                                tiny=tiny, seeds=seeds, variant=variant, variants=vmap,
                                device=device, precision=precision):
            if req not in requests:
                requests.append(req)
    return requests
