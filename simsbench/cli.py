"""The ``simsbench`` command line.

::

    simsbench list [estimators|protocols|tasks|tables]
    simsbench data describe [DATA]
    simsbench run tables [--data DATA ...] [--quick] [--jobs N] [--backend NAME] [--force]
    simsbench run TABLE  [--data DATA ...] [...]
    simsbench table TABLE [--data DATA] [--format markdown|latex|csv]
    simsbench tune ESTIMATOR [--data DATA] [--trials 50] [--seeds 1111,1112,1113]
                   [--metric mae] [--jobs N] [--backend NAME] [--quick] [--out FILE.toml]

``DATA`` is ``synthetic:sims`` (the default for the CH-SIMS tables),
``synthetic:simsv2`` (the default for the v2 tables) or the path of an
MMSA-format pickle (``PATH+UNLABELLED_PATH`` for CH-SIMS v2 with its
unlabelled part).  Records go to ``results/runs/``, logs to
``results/logs/``, rendered tables to ``results/tables/<data>/``; ``--results``
moves all of it.  Only ``run`` imports torch (inside the runs); the other
commands never do.  Errors from bad input are one line, and no finished run
is ever lost.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from simsbench._version import __version__

__all__ = ["main"]

_TABLE_NAMES = ("table2", "table3", "table4", "table5",
                "v2-table1", "v2-table2", "v2-table3", "v2-table4")


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
    p.add_argument("target", metavar="TABLE", help="'tables' (all) or one of: "
                   + ", ".join(_TABLE_NAMES))
    p.add_argument("--data", action="append", default=[], metavar="DATA",
                   help="data spec (repeatable); default: synthetic:sims for the CH-SIMS "
                        "tables and synthetic:simsv2 for the v2 tables")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: first seed only, at most {_quick_epochs()} training "
                        f"epoch(s) and at most {_quick_train()} training clips")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="parallel runs (each gets cores // N torch threads)")
    p.add_argument("--backend", default="loky", metavar="NAME",
                   help="joblib backend: loky (default), threading, dask, ray, ...")
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
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="parallel runs (each gets cores // N torch threads)")
    p.add_argument("--backend", default="loky", metavar="NAME",
                   help="joblib backend: loky (default), threading, dask, ray, ...")
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
        import simsbench.estimators as est

        out.append("Estimator specs (estimators/*.toml):")
        for name, s in sorted(specs.estimators.items()):
            out.append(f"  {name:<12} {s.label:<14} class {s.class_name}")
        names = [n for n in est.__all__ if n not in ("DeepRegressor", "ModalityPooler")]
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
    from simsbench.datasets import load_dataset
    from simsbench.results import atomic_write_text, data_slug, read_data_record
    from simsbench.runner import requests_for, run_grid, store_data_record
    from simsbench.specs import load_specs
    from simsbench.tables import (
        EXTENSIONS,
        SIMS_TABLES,
        V2_TABLES,
        build_table,
        get_table,
        render,
        table_pairs,
        tables_for_kind,
    )

    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
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
    if args.target == "tables":
        if args.data:
            plan = [(d, tables_for_kind(_data_kind(d))) for d in args.data]
        else:
            plan = [("synthetic:sims", SIMS_TABLES), ("synthetic:simsv2", V2_TABLES)]
    else:
        table = get_table(args.target)
        plan = [(d, (table.name,)) for d in (args.data or [table.default_data])]

    failed = 0
    for data, names in plan:
        tables = [get_table(n) for n in names]
        pairs = []
        for t in tables:
            user = [(s.name, s.label) for s in specs.estimators.values() if t.name in s.tables]
            for est, task in table_pairs(t, user):
                if (est, task) not in pairs:
                    pairs.append((est, task))
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
        requests = requests_for(spec_pairs, data, quick=args.quick, tiny=args.tiny,
                                seeds=seeds)
        if not args.quiet:
            print(f"simsbench: {data}: {len(requests)} runs for {', '.join(names)}",
                  file=sys.stderr)
        result = run_grid(requests, args.results, jobs=args.jobs, backend=args.backend,
                          force=args.force, progress=not args.quiet)
        if not args.quiet:
            n_other = len(result.computed) - len(result.trained)
            print(f"simsbench: {data}: {len(result.trained)} trained, "
                  f"{len(result.cached)} cached, {n_other} skipped or not runnable",
                  file=sys.stderr)
        failed += sum(1 for r in result.records if r["status"] == "error")
        slug = data_slug(data)
        info = read_data_record(args.results, slug, result.data_info.get("fingerprint"))
        if info is None:
            info = store_data_record(args.results, load_dataset(data), data)
        mode = requests[0].mode if requests else None
        for t in tables:
            rt = build_table(t, result.records, data_info=info, compare=args.compare,
                             fingerprint=info["fingerprint"], mode=mode)
            for fmt, ext in EXTENSIONS.items():
                atomic_write_text(Path(args.results) / "tables" / slug / f"{t.name}.{ext}",
                                  render(rt, fmt))
            print(render(rt, args.format))
        load_dataset.cache_clear()  # free this dataset before the next one
    if failed and not args.quiet:
        print(f"simsbench: {failed} run(s) failed; see the Note column and "
              f"{Path(args.results) / 'logs'}", file=sys.stderr)
    return 0


def _cmd_table(args) -> int:
    from simsbench.results import atomic_write_text, data_slug
    from simsbench.tables import EXTENSIONS, get_table, render, table_from_results

    table = get_table(args.table)
    data = args.data or table.default_data
    slug = data_slug(data)
    runs = Path(args.results) / "runs" / slug
    if not runs.is_dir():
        raise CLIError(f"no records for {data} under {Path(args.results) / 'runs'}; run "
                       f"'simsbench run {table.name}' first")
    rt = table_from_results(table.name, args.results, slug, compare=args.compare,
                            mode=args.mode)
    text = render(rt, args.format)
    atomic_write_text(Path(args.results) / "tables" / slug
                      / f"{table.name}.{EXTENSIONS[args.format]}", text)
    print(text, end="")
    return 0


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
        out=args.out, jobs=args.jobs, backend=args.backend, force=args.force,
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
                "tune": _cmd_tune}
    try:
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
