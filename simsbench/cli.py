"""The ``simsbench`` command line.

::

    simsbench list [estimators|protocols|tasks|tables]
    simsbench data describe [DATA]
    simsbench run tables [--data DATA ...] [--quick] [--jobs N] [--threads N] [--backend NAME]
                         [--force]
    simsbench run TABLE  [--data DATA ...] [--variant reference|corrected] [...]
    simsbench run corrections [--data DATA ...] [--no-ablations] [...]
    simsbench table TABLE [--data DATA] [--variant ...] [--format markdown|latex|csv] [--ci]
    simsbench figure labels|tsne [--data DATA] [...]
    simsbench figure curves|dist|cd TABLE [--data DATA] [--metric M] [...]
    simsbench report [--data DATA ...] [--out FILE] [--ci]
    simsbench tune ESTIMATOR [--data DATA] [--trials 50] [--seeds 1111,1112,1113]
                   [--metric mae] [--jobs N] [--backend NAME] [--quick] [--out FILE.toml]

The paper tables run every model in its **reference configuration** (the
reference implementation's behaviour, defects included); ``--variant
corrected`` runs and renders them with every simsbench correction on, and
``run corrections`` measures each correction against the reference (paired
over seeds).

``DATA`` is ``synthetic:sims`` (the default for the CH-SIMS tables),
``synthetic:simsv2`` (the default for the v2 tables) or the path of an
MMSA-format pickle (``PATH+UNLABELLED_PATH`` for CH-SIMS v2 with its
unlabelled part).  Records go to ``results/runs/``, logs to
``results/logs/``, rendered tables to ``results/tables/<data>/``, figures to
``results/figures/<data>/``, the report to ``results/report.html``;
``--results`` moves all of it.  Only ``run`` imports torch (inside the runs); the other
commands never do.  Errors from bad input are one line (exit status 2), and
no finished run is ever lost; ``run`` exits with status 1 when a run failed
(the table's Note column and ``results/logs/`` say why).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from simsbench._version import __version__

__all__ = ["main"]

_TABLE_NAMES = ("table2", "table3", "table4", "table5",
                "v2-table1", "v2-table2", "v2-table3", "v2-table4")
_VARIANTS = ("reference", "corrected")  # simsbench.estimators._fidelity.VARIANTS


class CLIError(Exception):
    """A one-line user error."""


def _add_common(p: argparse.ArgumentParser, specs: bool = True) -> None:
    p.add_argument("--results", metavar="DIR",
                   default=os.environ.get("SIMSBENCH_RESULTS", "results"),
                   help="results directory (default: ./results or $SIMSBENCH_RESULTS)")
    if specs:
        p.add_argument("--specs", metavar="DIR", action="append", default=[],
                       help="extra spec folder holding estimators/*.toml and tasks/*.toml "
                            "(repeatable; a spec there replaces a built-in one of the same name)")


def _add_parallel(p: argparse.ArgumentParser) -> None:
    """--jobs, --threads, --backend and --scheduler (run and tune)."""
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="runs executed at once (results do not depend on it)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch and BLAS threads of each run (default 1; results depend "
                        "on it, so it is part of each run's key)")
    p.add_argument("--backend", default="loky", metavar="NAME",
                   help="loky (default), threading or multiprocessing (joblib), or dask: "
                        "a Dask cluster (--scheduler), else a LocalCluster of --jobs "
                        "worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="Dask scheduler address for --backend dask (default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local cluster)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simsbench",
        description="Benchmark suite for multimodal sentiment analysis on CH-SIMS and "
                    "CH-SIMS v2.0: run the papers' tables on synthetic data or your "
                    "MMSA-format feature files.",
        epilog="Numbers computed on the built-in synthetic data are not CH-SIMS results.",
    )
    parser.add_argument("--version", action="version", version=f"simsbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list estimators, protocols, tasks or tables")
    p.add_argument("what", nargs="?", default="all",
                   choices=("all", "estimators", "protocols", "tasks", "tables"))
    _add_common(p)

    p = sub.add_parser("data", help="dataset utilities")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    d = dsub.add_parser("describe", help="splits × classes (CH-SIMS Table 3) and the "
                                          "Figure 2 label statistics")
    d.add_argument("data", nargs="?", default="synthetic:sims", metavar="DATA")
    d.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown")
    _add_common(d, specs=False)

    p = sub.add_parser("run", help="train and evaluate what a table needs, then print it")
    p.add_argument("target", metavar="TABLE", help="'tables' (all, with the corrections "
                   "tables), 'corrections' or one of: " + ", ".join(_TABLE_NAMES))
    p.add_argument("--variant", choices=_VARIANTS, default="reference",
                   help="configuration of the paper tables' models: the reference "
                        "implementation's (default) or with every correction on")
    p.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=None,
                   help="corrections table: one row per correction for the cheap models "
                        "(default: on for 'run corrections', off within 'run tables')")
    p.add_argument("--data", action="append", default=[], metavar="DATA",
                   help="data spec (repeatable); default: synthetic:sims for the CH-SIMS "
                        "tables and synthetic:simsv2 for the v2 tables")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: first seed only, at most {_quick_epochs()} training "
                        f"epoch(s) and at most {_quick_train()} training clips")
    _add_parallel(p)
    p.add_argument("--estimators", metavar="NAMES", default=None,
                   help="comma-separated estimator spec names: run only these rows "
                        "(the others render from cached records or stay empty)")
    p.add_argument("--seeds", metavar="SEEDS", default=None,
                   help="comma-separated seeds in place of each task's own")
    p.add_argument("--force", action="store_true", help="recompute finished runs")
    p.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown",
                   help="format printed to stdout (all three are written to files)")
    p.add_argument("--no-paper", dest="compare", action="store_false",
                   help="omit the published numbers")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    _add_ci(p)
    _add_common(p)

    p = sub.add_parser("table", help="render a table from cached records (no training)")
    p.add_argument("table", metavar="TABLE", help=", ".join(_TABLE_NAMES))
    p.add_argument("--data", default=None, metavar="DATA",
                   help="which data's records (default: the table's synthetic data)")
    p.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown")
    p.add_argument("--no-paper", dest="compare", action="store_false",
                   help="omit the published numbers")
    p.add_argument("--mode", default=None,
                   help="which runs: full, quick, ... (default: the newest)")
    p.add_argument("--variant", choices=_VARIANTS, default="reference",
                   help="which configuration's runs (default: reference)")
    _add_ci(p)
    _add_common(p, specs=False)

    p = sub.add_parser(
        "figure", help="draw a figure (PNG and SVG) from cached records or the data",
        description="labels: CH-SIMS Fig. 2 (label distributions, D_ij) from the data; "
                    "tsne: CH-SIMS Fig. 4 / v2 Fig. 7 (fits a multi-task model, quick); "
                    "curves, dist, cd TABLE: learning curves, per-seed distributions and "
                    "the critical-difference diagram of a table's cached runs.")
    p.add_argument("kind", choices=("labels", "tsne", "curves", "dist", "cd"),
                   metavar="FIGURE", help="labels, tsne, curves, dist or cd")
    p.add_argument("table", nargs="?", default=None, metavar="TABLE",
                   help="the table (curves, dist, cd): " + ", ".join(_TABLE_NAMES))
    p.add_argument("--data", default=None, metavar="DATA",
                   help="data spec (default: the table's synthetic data, or synthetic:sims)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: RESULTS/figures/<data>)")
    p.add_argument("--formats", default="png,svg", metavar="LIST",
                   help="comma-separated: png, svg (default: both)")
    p.add_argument("--mode", default=None,
                   help="which runs: full, quick, ... (default: the newest)")
    p.add_argument("--metric", default=None,
                   help="cd: the metric to rank on (default: the table's first); dist: "
                        "only this metric")
    p.add_argument("--estimator", default="mlf_dnn", metavar="NAME",
                   help="tsne: the multi-task estimator spec to fit (default: mlf_dnn)")
    p.add_argument("--seed", type=int, default=1, help="tsne: random_state (default: 1)")
    p.add_argument("--quick", action="store_true",
                   help=f"tsne: at most {_quick_epochs()} epoch(s) and {_quick_train()} "
                        f"training clips")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but the written paths")
    _add_common(p)

    p = sub.add_parser("report", help="one self-contained HTML page: every table with its "
                                      "tests, the figures, provenance and versions")
    p.add_argument("--data", action="append", default=[], metavar="DATA",
                   help="data spec to include (repeatable; default: every data set with "
                        "records)")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="output file (default: RESULTS/report.html)")
    p.add_argument("--mode", default=None,
                   help="which runs: full, quick, ... (default: the newest)")
    p.add_argument("--no-paper", dest="compare", action="store_false",
                   help="omit the published numbers")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but the written path")
    _add_ci(p)
    _add_common(p, specs=False)

    p = sub.add_parser(
        "tune", help="random search over an estimator spec's [search] ranges, selected on "
                     "the validation split; writes the winner as an estimator spec")
    p.add_argument("estimator", metavar="ESTIMATOR", help="estimator spec name (e.g. lf_dnn)")
    p.add_argument("--data", default=None, metavar="DATA",
                   help="data spec (default: the task's, synthetic:sims)")
    p.add_argument("--task", default=None, metavar="TASK",
                   help="task to tune on (default: the multimodal task of the data's kind, "
                        "sims_multimodal or simsv2_multimodal)")
    p.add_argument("--trials", type=int, default=None, metavar="N",
                   help="random configurations (default: 50, as the reference)")
    p.add_argument("--seeds", metavar="SEEDS", default=None,
                   help="comma-separated tuning seeds; a configuration scores the mean over "
                        "them (default: 1111,1112,1113, as the reference)")
    p.add_argument("--metric", default=None, metavar="NAME",
                   help="validation metric to select on (default: mae, the reference's "
                        "KeyEval loss)")
    p.add_argument("--random-state", type=int, default=0, metavar="N",
                   help="seed of the configuration sampler (default: 0)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: first seed only, the run command's --quick sizes")
    _add_parallel(p)
    p.add_argument("--force", action="store_true", help="recompute finished trials")
    p.add_argument("--name", default=None, metavar="NAME",
                   help="name of the tuned spec (default: ESTIMATOR_tuned)")
    p.add_argument("--out", default=None, metavar="FILE.toml",
                   help="where to write the tuned spec; its file name is the spec's name "
                        "(default: RESULTS/tuned/<data>/estimators/NAME.toml)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    _add_common(p)
    return parser


def _add_ci(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ci", action="store_true",
                   help="95%% confidence intervals (t over seeds) instead of ± std")


def _quick_epochs() -> int:
    from simsbench.runner import QUICK_MAX_EPOCHS

    return QUICK_MAX_EPOCHS


def _quick_train() -> int:
    from simsbench.runner import QUICK_MAX_TRAIN

    return QUICK_MAX_TRAIN


# ---------------------------------------------------------------------------
# commands

def _cmd_list(args) -> int:
    from simsbench.protocols import PROTOCOLS
    from simsbench.specs import load_specs
    from simsbench.tables import TABLES

    specs = load_specs(args.specs)
    out = []
    if args.what in ("all", "estimators"):
        from simsbench.utils.discovery import estimator_names

        out.append("Estimator specs (estimators/*.toml):")
        for name, s in sorted(specs.estimators.items()):
            out.append(f"  {name:<12} {s.label:<14} class {s.class_name}")
        names = estimator_names()
        out.append("Estimator classes: " + ", ".join(names)
                   + "  (or any 'package.module:Class' import path)")
    if args.what in ("all", "protocols"):
        out.append("Protocols:")
        for name, cls in PROTOCOLS.items():
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            out.append(f"  {name:<20} {doc}")
    if args.what in ("all", "tasks"):
        out.append("Tasks (tasks/*.toml):")
        for name, t in sorted(specs.tasks.items()):
            out.append(f"  {name:<34} {t.description}")
    if args.what in ("all", "tables"):
        out.append("Tables:")
        for name, t in TABLES.items():
            out.append(f"  {name:<10} {t.paper} {t.paper_table}: {t.title}")
    print("\n".join(out))
    return 0


def _cmd_data(args) -> int:
    if args.data_command != "describe":
        raise CLIError("usage: simsbench data describe [DATA]")
    from simsbench.datasets import label_statistics, load_dataset
    from simsbench.runner import store_data_record
    from simsbench.tables import build_table, render, tables_for_kind

    ds = load_dataset(args.data)
    info = store_data_record(args.results, ds, args.data)
    name = tables_for_kind(ds.kind)[0] if ds.kind == "simsv2" else "table3"
    rt = build_table(name, data_info=info, compare=ds.kind in ("sims", "simsv2"))
    print(render(rt, args.format), end="")
    if args.format == "markdown":
        print(f"\n{ds.summary()}\n")
        stats = label_statistics(ds)
        print("Label histograms (clips per label value; CH-SIMS Figure 2):\n")
        print(stats["histograms"].to_markdown())
        print("\nD_ij = mean((y_i - y_j)^2) between labels (CH-SIMS Figure 2):\n")
        print(stats["difference"].to_markdown(floatfmt=".4f"))
    return 0


def _check_data(data: str) -> None:
    """Fail early (one line) on a data spec that cannot be loaded."""
    from simsbench.datasets import parse_data_spec

    kind, opts = parse_data_spec(data)
    if kind == "file":
        for path in (opts["path"], opts["unlabelled"]):
            if path and not Path(path).is_file():
                raise CLIError(f"{path}: no such feature file")


def _data_kind(data: str) -> str:
    from simsbench.datasets import load_dataset, parse_data_spec

    kind, opts = parse_data_spec(data)
    if kind == "synthetic":
        return opts["kind"]
    return load_dataset(data).kind


def _names(value: str | None, option: str) -> list[str]:
    if value is None:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise CLIError(f"{option}: give at least one name, got {value!r}")
    return names


def _seeds(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        seeds = [int(s) for s in _names(value, "--seeds")]
    except ValueError:
        raise CLIError(f"--seeds: comma-separated integers expected, got {value!r}") from None
    return seeds


def _paper_rows() -> set[str]:
    from simsbench.tables import TABLES

    return {r.estimator for t in TABLES.values() for r in t.rows if r.estimator}


def _cmd_run(args) -> int:
    from simsbench.corrections import ABLATED, CORRECTION_TABLES, build_corrections_table
    from simsbench.datasets import load_dataset
    from simsbench.results import atomic_write_text, data_slug, read_data_record
    from simsbench.runner import (
        check_backend,
        correction_variants,
        requests_for,
        run_grid,
        store_data_record,
    )
    from simsbench.specs import load_specs
    from simsbench.tables import (
        EXTENSIONS,
        build_table,
        get_table,
        render,
        table_pairs,
        tables_for_kind,
    )

    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    check_backend(args.backend)
    specs = load_specs(args.specs)
    for d in args.data:
        _check_data(d)
    only = _names(args.estimators, "--estimators")
    unknown = [n for n in only if n not in specs.estimators]
    if unknown:
        tuned = sorted(Path(args.results).glob(f"tuned/*/estimators/{unknown[0]}.toml"))
        hint = f"; {tuned[0]} is a tuned spec: add --specs {tuned[0].parent.parent}" \
            if tuned else ""
        raise CLIError(f"--estimators: unknown estimator spec {unknown[0]!r} "
                       f"(`simsbench list estimators` shows them{hint})")
    seeds = _seeds(args.seeds)
    target = args.target.lower()
    if target in ("tables", "corrections"):
        if args.data:
            plan = [(d, _data_kind(d)) for d in args.data]
        else:
            plan = [("synthetic:sims", "sims"), ("synthetic:simsv2", "simsv2")]
        plan = [(d, (tables_for_kind(k) if target == "tables" else ()) + ("corrections",), k)
                for d, k in plan]
    else:
        table = get_table(target)
        plan = [(d, (table.name,), None) for d in (args.data or [table.default_data])]
    ablate = args.ablations if args.ablations is not None else target == "corrections"

    # (data, tables, corrections table, (estimator, task) pairs, variants),
    # all checked before any run
    grids = []
    for data, names, kind in plan:
        tables = [get_table(n) for n in names if n != "corrections"]
        pairs = []
        for t in tables:
            user = [(s.name, s.label) for s in specs.estimators.values() if t.name in s.tables]
            for est, task in table_pairs(t, user):
                if (est, task) not in pairs:
                    pairs.append((est, task))
        variants: dict[str, tuple[str, ...]] = {}
        corr_table = None
        if "corrections" in names:
            corr_table = CORRECTION_TABLES["simsv2" if kind == "simsv2" else "sims"]
            for est, _label in corr_table.estimators:
                if est in specs.estimators:
                    variants[est] = correction_variants(
                        specs.estimator(est), ablate=ablate and est in ABLATED)
                    if (est, corr_table.task) not in pairs:
                        pairs.append((est, corr_table.task))
        grids.append((data, tables, corr_table, pairs, variants))
    if only:
        rows = list(dict.fromkeys(e for *_x, pairs, _v in grids for e, _task in pairs))
        # a spec that is no paper row (a tuned or user spec) may join the
        # tables that take extra rows
        takes_extra = any(t.user_task for _d, tables, *_x in grids for t in tables)
        missing = [n for n in only if n not in rows
                   and not (takes_extra and n not in _paper_rows())]
        if missing:
            names = list(dict.fromkeys(
                [t.name for _d, tables, *_x in grids for t in tables]
                + [c.definition.name for _d, _t, c, *_x in grids if c is not None]))
            raise CLIError(f"--estimators: {missing[0]!r} is not a row of "
                           f"{', '.join(names)} (its rows: {', '.join(rows) or 'none'})")

    failed = total = 0
    for data, tables, corr_table, pairs, variants in grids:
        names = [t.name for t in tables] + (["corrections"] if corr_table else [])
        if only:
            pairs = [(e, t) for e, t in pairs if e in only]
            # A named spec that is no paper row (a tuned or user spec) joins
            # the tables that take extra rows.
            extra = [e for e in only if e not in _paper_rows()]
            pairs += [(e, t.user_task) for t in tables for e in extra
                      if t.user_task and (e, t.user_task) not in pairs]
        spec_pairs = []
        for e, t in pairs:
            if e not in specs.estimators:
                print(f"simsbench: warning: no estimator spec {e!r}; its rows stay empty",
                      file=sys.stderr)
                continue
            spec_pairs.append((specs.estimator(e), specs.task(t)))
        requests = []
        for e, t in spec_pairs:
            # The corrections table's task gets every configuration it needs
            # (its reference runs are the paper table's, shared by key).
            vmap = ({e.name: tuple(dict.fromkeys((args.variant, *variants.get(e.name, ()))))}
                    if corr_table is not None and t.name == corr_table.task else None)
            for req in requests_for([(e, t)], data, quick=args.quick, tiny=args.tiny,
                                    seeds=seeds, variant=args.variant, variants=vmap):
                if req not in requests:
                    requests.append(req)
        if not args.quiet:
            print(f"simsbench: {data}: {len(requests)} runs for {', '.join(names)}",
                  file=sys.stderr)
        result = run_grid(requests, args.results, jobs=args.jobs, threads=args.threads,
                          backend=args.backend, force=args.force, progress=not args.quiet,
                          scheduler=args.scheduler)
        if not args.quiet:
            n_other = len(result.computed) - len(result.trained)
            print(f"simsbench: {data}: {len(result.trained)} trained, "
                  f"{len(result.cached)} cached, {n_other} skipped or not runnable",
                  file=sys.stderr)
        failed += sum(1 for r in result.records if r["status"] == "error")
        total += len(requests)
        slug = data_slug(data)
        info = read_data_record(args.results, slug, result.data_info.get("fingerprint"))
        if info is None:
            info = store_data_record(args.results, load_dataset(data), data)
        mode = requests[0].mode if requests else None
        built = [build_table(t, result.records, data_info=info, compare=args.compare,
                             fingerprint=info["fingerprint"], mode=mode, variant=args.variant,
                             ci=args.ci)
                 for t in tables]
        if corr_table is not None:
            built.append(build_corrections_table(
                corr_table.kind, result.records, data_info=info,
                corrections=_correction_docs(specs, corr_table),
                fingerprint=info["fingerprint"], mode=mode))
        for rt in built:
            name = rt.table.name + ("" if args.variant == "reference" or
                                    rt.table.name.endswith("corrections") else
                                    f"-{args.variant}")
            for fmt, ext in EXTENSIONS.items():
                atomic_write_text(Path(args.results) / "tables" / slug / f"{name}.{ext}",
                                  render(rt, fmt))
            print(render(rt, args.format))
        load_dataset.cache_clear()  # free this dataset before the next one
    if failed:
        print(f"simsbench: {failed} of {total} runs failed; see the Note column and "
              f"{Path(args.results) / 'logs'}", file=sys.stderr)
        return 1
    return 0


def _correction_docs(specs, corr_table) -> dict[str, list[tuple[str, str]]]:
    """Per estimator spec of a corrections table: its (name, summary) list."""
    from simsbench.estimators._fidelity import corrections

    out = {}
    for est, _label in corr_table.estimators:
        try:
            out[est] = [(c.name, c.summary)
                        for c in corrections(specs.estimator(est).estimator_class())]
        except Exception:  # noqa: BLE001 - an unimportable class: no list
            continue
    return out


def _cmd_table(args) -> int:
    from simsbench.results import atomic_write_text, data_slug
    from simsbench.tables import EXTENSIONS, get_table, render, table_from_results

    name = args.table.lower()
    if name in ("corrections", "v2-corrections"):
        data = args.data or ("synthetic:simsv2" if name.startswith("v2") else "synthetic:sims")
    else:
        data = args.data or get_table(name).default_data
    slug = data_slug(data)
    runs = Path(args.results) / "runs" / slug
    if not runs.is_dir():
        raise CLIError(f"no records for {data} under {Path(args.results) / 'runs'}; run "
                       f"'simsbench run {name}' first")
    if name in ("corrections", "v2-corrections"):
        from simsbench.corrections import build_corrections_table
        from simsbench.results import read_data_record, read_records

        records = read_records(args.results, slug)
        kind = "simsv2" if _data_kind(data) == "simsv2" else "sims"
        fps = [r["data"]["fingerprint"] for r in records if isinstance(r.get("data"), dict)
               and "fingerprint" in r["data"]]
        info = read_data_record(args.results, slug, fps[-1] if fps else None)
        rt = build_corrections_table(kind, records, data_info=info, mode=args.mode)
        out_name = rt.table.name
    else:
        rt = table_from_results(name, args.results, slug, compare=args.compare,
                                mode=args.mode, variant=args.variant, ci=args.ci)
        out_name = name if args.variant == "reference" else f"{name}-{args.variant}"
    text = render(rt, args.format)
    atomic_write_text(Path(args.results) / "tables" / slug
                      / f"{out_name}.{EXTENSIONS[args.format]}", text)
    print(text, end="")
    return 0


def _formats(value: str) -> list[str]:
    fmts = _names(value, "--formats")
    bad = [f for f in fmts if f not in ("png", "svg")]
    if bad:
        raise CLIError(f"--formats: unknown format {bad[0]!r}; choose from png, svg")
    return fmts


def _cmd_figure(args) -> int:
    from simsbench import figures
    from simsbench.results import atomic_write_text, data_slug, read_data_record
    from simsbench.tables import get_table, table_from_results

    fmts = _formats(args.formats)
    per_table = args.kind in ("curves", "dist", "cd")
    if per_table and not args.table:
        raise CLIError(f"figure {args.kind} needs a TABLE: " + ", ".join(_TABLE_NAMES))
    if not per_table and args.table:
        raise CLIError(f"figure {args.kind} takes no TABLE (it uses --data)")
    table = get_table(args.table) if per_table else None
    data = args.data or (table.default_data if table else "synthetic:sims")
    slug = data_slug(data)
    out_dir = Path(args.out) if args.out else Path(args.results) / "figures" / slug
    steps = {"labels": 2, "tsne": 4}.get(args.kind, 2)
    bar = figures.StepProgress(steps, enabled=not args.quiet)
    if per_table:
        if not (Path(args.results) / "runs" / slug).is_dir():
            raise CLIError(f"no records for {data} under {Path(args.results) / 'runs'}; run "
                           f"'simsbench run {table.name}' first")
        rt = table_from_results(table.name, args.results, slug, compare=False,
                                mode=args.mode)
        bar.step(f"{table.name}: {len(rt.records)} records")
        fig, stem = figures.table_figure(args.kind, rt, args.metric)
        description = f"{args.kind} figure of {table.name}; {rt.data_info.get('description')}"
    elif args.kind == "labels":
        info = read_data_record(args.results, slug)
        if info is None:
            from simsbench.datasets import load_dataset
            from simsbench.runner import store_data_record

            _check_data(data)
            info = store_data_record(args.results, load_dataset(data), data)
        bar.step(f"data record of {data}")
        fig, stem = figures.labels_figure(info), "labels"
        description = f"CH-SIMS Fig. 2 statistics; {info.get('description')}"
    else:  # tsne
        import json

        from simsbench.datasets import load_dataset
        from simsbench.runner import QUICK_MAX_EPOCHS, QUICK_MAX_TRAIN, data_info_of
        from simsbench.specs import load_specs

        specs = load_specs(args.specs)
        spec = specs.estimator(args.estimator)
        _check_data(data)
        dataset = load_dataset(data)
        info = data_info_of(dataset, data)
        bar.step(f"loaded {data}")
        reps, labels = figures.fit_representations(
            dataset, spec, random_state=args.seed, tiny=args.tiny,
            max_epochs=QUICK_MAX_EPOCHS if args.quick else None,
            max_train=QUICK_MAX_TRAIN if args.quick and not args.tiny else None)
        bar.step(f"fitted {spec.label}")
        emb = figures.tsne_embeddings(reps, random_state=args.seed)
        bar.step("t-SNE")
        payload = figures.tsne_payload(emb, labels, info, spec.label, args.seed)
        atomic_write_text(Path(args.results) / "figures" / slug / "tsne.json",
                          json.dumps(payload) + "\n")
        fig, stem = figures.tsne_figure(emb, labels, info, spec.label), "tsne"
        description = f"t-SNE of {spec.label} representations; {info.get('description')}"
    paths = figures.save_figure(fig, out_dir / stem, fmts, description=description)
    bar.step("saved")
    for path in paths:
        print(path)
    return 0


def _cmd_report(args) -> int:
    from simsbench.report import write_report

    out = Path(args.out) if args.out else Path(args.results) / "report.html"
    path = write_report(out, args.results, data=args.data or None, mode=args.mode,
                        ci=args.ci, compare=args.compare, progress=not args.quiet)
    print(path)
    return 0


def _record_warnings_in_one_line(show):
    """A ``warnings.showwarning`` that prints a skipped record as one line on
    stderr and hands every other warning to ``show``."""
    from simsbench.results import RecordWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RecordWarning):
            print(f"simsbench: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning




def _cmd_tune(args) -> int:
    from simsbench.specs import load_specs
    from simsbench.tune import DEFAULT_METRIC, DEFAULT_SEEDS, DEFAULT_TRIALS, tune

    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    specs = load_specs(args.specs)
    spec = specs.estimator(args.estimator)
    if args.data:
        _check_data(args.data)
    if args.task:
        task = specs.task(args.task)
    else:
        kind = _data_kind(args.data) if args.data else "sims"
        task = specs.task("simsv2_multimodal" if kind == "simsv2" else "sims_multimodal")
    result = tune(
        spec, task, args.data,
        n_trials=DEFAULT_TRIALS if args.trials is None else args.trials,
        seeds=_seeds(args.seeds) or DEFAULT_SEEDS, metric=args.metric or DEFAULT_METRIC,
        random_state=args.random_state, results_dir=args.results, name=args.name,
        out=args.out, jobs=args.jobs, threads=args.threads, backend=args.backend,
        scheduler=args.scheduler, force=args.force,
        quick=args.quick, tiny=args.tiny, progress=not args.quiet,
    )
    print(result.report, end="")
    if not args.quiet:
        table = (result.spec.tables or ("table2",))[0]
        folder = result.spec_path.parent
        root = folder.parent if folder.name == "estimators" else \
            f"DIR (a folder whose estimators/ holds {result.spec_path.name})"
        print(f"simsbench: {result.computed} run(s) trained, {result.cached} cached; "
              f"tuned spec {result.spec_path}; report {result.report_paths[0]}\n"
              f"simsbench: compare default and tuned: simsbench run {table} --data "
              f"{result.data} --specs {root} --estimators {spec.name},{result.spec.name}",
              file=sys.stderr)
    return 0
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``simsbench`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from simsbench.datasets import MMSAFormatError, UnsafePickleError
    from simsbench.specs import SpecError

    handlers = {"list": _cmd_list, "data": _cmd_data, "run": _cmd_run, "table": _cmd_table,
                "figure": _cmd_figure, "report": _cmd_report, "tune": _cmd_tune}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _record_warnings_in_one_line(warnings.showwarning)
            return handlers[args.command](args)
    except KeyboardInterrupt:
        print(f"\nsimsbench: interrupted; finished runs are kept under "
              f"{Path(getattr(args, 'results', 'results')) / 'runs'} and the next "
              "invocation resumes", file=sys.stderr)
        return 130
    except (CLIError, SpecError, MMSAFormatError, UnsafePickleError, ValueError,
            FileNotFoundError, RuntimeError, ImportError, OSError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"simsbench: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
