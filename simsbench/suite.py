"""The papers' tables as Python calls: what ``simsbench run`` and
``simsbench table`` do.

:func:`run_tables` works out the runs the named tables need on each data set
(:func:`plan_tables`, :func:`table_requests`), runs them through
:func:`simsbench.runner.run_grid` (cached, resumable), and builds, writes and
returns the tables; :func:`table_from_cache` renders a table from the records
already stored, without training::

    from simsbench import run_tables
    from simsbench.tables import render

    result = run_tables("table2", quick=True, results="results")
    print(render(result.tables[0]))

Nothing here imports torch; the runs do, inside the runner's workers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from simsbench._data_record import check_data, data_record, store_data_record
from simsbench._plan import (
    SuiteWarning,
    TableGrid,
    check_names,
    check_rows,
    plan_tables,
    table_requests,
)
from simsbench.corrections import CorrectionTable
from simsbench.datasets import dataset_kind
from simsbench.results import atomic_write_text, data_slug, read_data_record, read_records
from simsbench.runner import (
    GridResult,
    RunnerError,
    RunRequest,
    check_backend,
    check_device,
    run_grid,
)
from simsbench.specs import SpecSet, load_specs
from simsbench.tables import (
    EXTENSIONS,
    RenderedTable,
    build_table,
    get_table,
    render,
    table_from_results,
    tables_for_kind,
)

__all__ = [
    "DataRun",
    "SuiteResult",
    "SuiteWarning",
    "TableGrid",
    "data_record",
    "default_data",
    "describe_data",
    "plan_tables",
    "run_tables",
    "save_table",
    "table_from_cache",
    "table_requests",
]

_CORRECTIONS = ("corrections", "v2-corrections")


@dataclass
class DataRun:
    """The runs and tables of one data set."""

    data: str
    requests: list[RunRequest]
    grid: GridResult
    data_record: dict
    tables: list[RenderedTable]

    @property
    def failed(self) -> int:
        """How many runs ended with an error."""
        return sum(1 for r in self.grid.records if r["status"] == "error")


@dataclass
class SuiteResult:
    """What :func:`run_tables` ran and built, per data set."""

    runs: list[DataRun]

    @property
    def tables(self) -> list[RenderedTable]:
        return [t for run in self.runs for t in run.tables]

    @property
    def records(self) -> list[dict]:
        return [r for run in self.runs for r in run.grid.records]

    @property
    def failed(self) -> int:
        return sum(run.failed for run in self.runs)

    @property
    def total(self) -> int:
        return sum(len(run.requests) for run in self.runs)


def _correction_docs(specs: SpecSet, table: CorrectionTable) -> dict[str, list[tuple[str, str]]]:
    """Per estimator spec of a corrections table: its (name, summary) list."""
    from simsbench.estimators._fidelity import corrections

    out = {}
    for est, _label in table.estimators:
        try:
            out[est] = [(c.name, c.summary)
                        for c in corrections(specs.estimator(est).estimator_class())]
        except Exception:  # noqa: BLE001 - an unimportable class: no list
            continue
    return out


def save_table(rt: RenderedTable, results="results", data: str = "synthetic:sims", *,
               variant: str = "reference", formats: Sequence[str] = tuple(EXTENSIONS)
               ) -> list[Path]:
    """Write a table under ``<results>/tables/<data>/``, one file per format;
    a variant other than the reference is in the file name (the corrections
    table holds every variant)."""
    name = rt.table.name
    if variant != "reference" and not name.endswith("corrections"):
        name = f"{name}-{variant}"
    folder = Path(results) / "tables" / data_slug(data)
    return [atomic_write_text(folder / f"{name}.{EXTENSIONS[fmt]}", render(rt, fmt))
            for fmt in formats]


def run_tables(
    tables: str | Sequence[str] = "tables",
    data: Sequence[str] = (),
    *,
    estimators: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    variant: str = "reference",
    ablations: bool | None = None,
    quick: bool = False,
    tiny: bool = False,
    jobs: int = 1,
    threads: int = 1,
    device: str = "cpu",
    precision: str = "float32",
    backend: str = "loky",
    scheduler: str | None = None,
    force: bool = False,
    results: str | Path = "results",
    specs: Sequence[str | Path] = (),
    compare: bool = True,
    ci: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    on_table: Callable[[RenderedTable], Any] | None = None,
) -> SuiteResult:
    """Train and evaluate what tables need, then build and write them.

    Everything is checked before any run; runs with a finished record are
    read back, not recomputed (``force`` recomputes).  Each data set's
    tables are written to ``<results>/tables/<data>/`` in every format.

    Parameters
    ----------
    tables, data, ablations
        As in :func:`plan_tables`.
    estimators : sequence of str, default=None
        Run only these rows (the others render from cached records or stay
        empty).
    seeds : sequence of int, default=None
        Paper seeds in place of each task's own.
    variant : {"reference", "corrected"}, default="reference"
        Configuration of the paper tables' models.
    quick, tiny : bool, default=False
        Smoke runs (first seed only, capped epochs and training clips).
    jobs, threads, backend, scheduler, force
        As in :func:`simsbench.runner.run_grid`.
    device : str, default="cpu"
        Torch device of every deep estimator's runs (``"cuda"``,
        ``"cuda:1"``...); part of each run's key.
    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of every deep estimator's forward passes (``"bfloat16"``:
        autocast, an opt-in for speed that is not the reference
        configuration; the tables say so).
    results : path, default="results"
    specs : sequence of path, default=()
        Extra spec folders (see :func:`~simsbench.specs.load_specs`).
    compare, ci : bool
        Published numbers beside ours; 95% intervals instead of ± std.
    progress : bool, default=True
        Progress lines on ``stream`` (default: stderr).
    on_table : callable, default=None
        Called with each table as soon as it is built.

    Returns
    -------
    SuiteResult
        Per data set: the requests, the grid's records, the data record and
        the tables; ``failed`` counts the runs that ended with an error.
    """
    if jobs < 1:
        raise RunnerError(f"--jobs must be >= 1, got {jobs}")
    if threads < 1:
        raise RunnerError(f"--threads must be >= 1, got {threads}")
    check_backend(backend)
    check_device(device, precision)
    spec_set = load_specs(list(specs))
    for d in data:
        check_data(d)
    only = list(estimators or ())
    check_names(only, spec_set, results)
    grids = plan_tables(tables, data, specs=spec_set, ablations=ablations)
    if only:
        check_rows(only, grids)
    stream = sys.stderr if stream is None else stream
    runs = []
    for grid in grids:
        requests = table_requests(grid, spec_set, estimators=only, seeds=seeds,
                                  variant=variant, quick=quick, tiny=tiny,
                                  device=device, precision=precision)
        if progress:
            print(f"simsbench: {grid.data}: {len(requests)} runs for "
                  f"{', '.join(grid.names)}", file=stream)
        result = run_grid(requests, results, jobs=jobs, threads=threads, backend=backend,
                          force=force, progress=progress, stream=stream, scheduler=scheduler)
        if progress:
            n_other = len(result.computed) - len(result.trained)
            print(f"simsbench: {grid.data}: {len(result.trained)} trained, "
                  f"{len(result.cached)} cached, {n_other} skipped or not runnable",
                  file=stream)
        info = result.data_record or data_record(grid.data, results)
        mode = requests[0].mode if requests else None
        built = []
        for t in grid.tables:
            built.append(build_table(t, result.records, data_info=info, compare=compare,
                                     fingerprint=info["fingerprint"], mode=mode,
                                     variant=variant, ci=ci))
            _deliver(built[-1], results, grid.data, variant, on_table)
        if grid.corrections is not None:
            from simsbench.corrections import build_corrections_table

            built.append(build_corrections_table(
                grid.corrections.kind, result.records, data_info=info,
                corrections=_correction_docs(spec_set, grid.corrections),
                fingerprint=info["fingerprint"], mode=mode))
            _deliver(built[-1], results, grid.data, variant, on_table)
        runs.append(DataRun(grid.data, requests, result, info, built))
        from simsbench.datasets import load_dataset

        load_dataset.cache_clear()  # free this dataset before the next one
    return SuiteResult(runs)


def _deliver(rt, results, data, variant, on_table) -> None:
    save_table(rt, results, data, variant=variant)
    if on_table is not None:
        on_table(rt)


def default_data(table: str) -> str:
    """The synthetic data a table is computed on by default.

    >>> default_data("table2"), default_data("v2-corrections")
    ('synthetic:sims', 'synthetic:simsv2')
    """
    name = table.lower()
    if name in _CORRECTIONS:
        return "synthetic:simsv2" if name.startswith("v2") else "synthetic:sims"
    return get_table(name).default_data


def table_from_cache(
    table: str,
    data: str | None = None,
    *,
    results: str | Path = "results",
    mode: str | None = None,
    variant: str = "reference",
    compare: bool = True,
    ci: bool = False,
) -> RenderedTable:
    """Build a table from the records stored under ``results`` (no training).

    ``table`` is a table name or ``"corrections"``/``"v2-corrections"``;
    ``data`` defaults to the table's synthetic data.

    Raises
    ------
    FileNotFoundError
        When ``results`` holds no records of ``data``.
    """
    name = table.lower()
    data = data or default_data(name)
    slug = data_slug(data)
    if not (Path(results) / "runs" / slug).is_dir():
        raise FileNotFoundError(f"no records for {data} under {Path(results) / 'runs'}; "
                                f"run 'simsbench run {name}' first")
    if name not in _CORRECTIONS:
        return table_from_results(name, results, slug, compare=compare, mode=mode,
                                  variant=variant, ci=ci)
    from simsbench.corrections import build_corrections_table

    records = read_records(results, slug)
    kind = "simsv2" if dataset_kind(data) == "simsv2" else "sims"
    fps = [r["data"]["fingerprint"] for r in records if isinstance(r.get("data"), dict)
           and "fingerprint" in r["data"]]
    info = read_data_record(results, slug, fps[-1] if fps else None)
    return build_corrections_table(kind, records, data_info=info, mode=mode)


def describe_data(data: str = "synthetic:sims", *, results: str | Path = "results",
                  fmt: str = "markdown") -> str:
    """The splits × classes table of ``data`` (CH-SIMS Table 3, CH-SIMS v2
    Table 1) and, in Markdown, its summary and the label statistics of
    CH-SIMS Figure 2; stores the data record under ``results``."""
    from simsbench.datasets import label_statistics, load_dataset

    ds = load_dataset(data)
    info = store_data_record(results, ds, data)
    name = tables_for_kind(ds.kind)[0] if ds.kind == "simsv2" else "table3"
    text = render(build_table(name, data_info=info, compare=ds.kind in ("sims", "simsv2")),
                  fmt)
    if fmt == "markdown":
        stats = label_statistics(ds)
        text += (f"\n{ds.summary()}\n\n"
                 "Label histograms (clips per label value; CH-SIMS Figure 2):\n\n"
                 + stats["histograms"].to_markdown() + "\n"
                 "\nD_ij = mean((y_i - y_j)^2) between labels (CH-SIMS Figure 2):\n\n"
                 + stats["difference"].to_markdown(floatfmt=".4f") + "\n")
    return text
