"""The command handlers of :mod:`simsbench.cli`, imported once the command
line is parsed: each calls the library and prints what it returns."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from simsbench.cli import TABLE_NAMES

__all__ = ["HANDLERS", "CLIError", "record_warnings_in_one_line"]


class CLIError(Exception):
    """A one-line user error."""


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
        for name, tdef in TABLES.items():
            out.append(f"  {name:<10} {tdef.paper} {tdef.paper_table}: {tdef.title}")
    print("\n".join(out))
    return 0


def _cmd_data(args) -> int:
    if args.data_command != "describe":
        raise CLIError("usage: simsbench data describe [DATA]")
    from simsbench.suite import describe_data

    print(describe_data(args.data, results=args.results, fmt=args.format), end="")
    return 0


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


def _cmd_run(args) -> int:
    from simsbench.suite import SuiteWarning, run_tables
    from simsbench.tables import render

    warnings.simplefilter("always", SuiteWarning)  # each empty row, once per data set
    result = run_tables(
        args.target, args.data, estimators=_names(args.estimators, "--estimators"),
        seeds=_seeds(args.seeds), variant=args.variant, ablations=args.ablations,
        quick=args.quick, tiny=args.tiny, jobs=args.jobs, threads=args.threads,
        device=args.device, precision=args.precision,
        backend=args.backend, scheduler=args.scheduler, force=args.force,
        results=args.results, specs=args.specs, compare=args.compare, ci=args.ci,
        progress=not args.quiet, on_table=lambda rt: print(render(rt, args.format)),
    )
    if result.failed:
        print(f"simsbench: {result.failed} of {result.total} runs failed; see the Note "
              f"column and {Path(args.results) / 'logs'}", file=sys.stderr)
        return 1
    return 0


def _cmd_table(args) -> int:
    from simsbench.suite import default_data, save_table, table_from_cache
    from simsbench.tables import render

    data = args.data or default_data(args.table)
    rt = table_from_cache(args.table, data, results=args.results, mode=args.mode,
                          variant=args.variant, compare=args.compare, ci=args.ci)
    save_table(rt, args.results, data, variant=args.variant, formats=(args.format,))
    print(render(rt, args.format), end="")
    return 0


def _formats(value: str) -> list[str]:
    fmts = _names(value, "--formats")
    bad = [f for f in fmts if f not in ("png", "svg")]
    if bad:
        raise CLIError(f"--formats: unknown format {bad[0]!r}; choose from png, svg")
    return fmts


def _cmd_figure(args) -> int:
    from simsbench import figures
    from simsbench._data_record import check_data, data_record
    from simsbench.results import atomic_write_text, data_slug
    from simsbench.tables import get_table, table_from_results

    fmts = _formats(args.formats)
    per_table = args.kind in ("curves", "dist", "cd")
    if per_table and not args.table:
        raise CLIError(f"figure {args.kind} needs a TABLE: " + ", ".join(TABLE_NAMES))
    if not per_table and args.table:
        raise CLIError(f"figure {args.kind} takes no TABLE (it uses --data)")
    table = get_table(args.table) if per_table else None
    data = args.data or (table.default_data if table else "synthetic:sims")
    slug = data_slug(data)
    out_dir = Path(args.out) if args.out else Path(args.results) / "figures" / slug
    steps = {"labels": 2, "tsne": 4}.get(args.kind, 2)
    bar = figures.StepProgress(steps, enabled=not args.quiet)
    if table is not None:
        if not (Path(args.results) / "runs" / slug).is_dir():
            raise CLIError(f"no records for {data} under {Path(args.results) / 'runs'}; run "
                           f"'simsbench run {table.name}' first")
        rt = table_from_results(table.name, args.results, slug, compare=False,
                                mode=args.mode)
        bar.step(f"{table.name}: {len(rt.records)} records")
        fig, stem = figures.table_figure(args.kind, rt, args.metric)
        description = f"{args.kind} figure of {table.name}; {rt.data_info.get('description')}"
    elif args.kind == "labels":
        info = data_record(data, args.results)
        bar.step(f"data record of {data}")
        fig, stem = figures.labels_figure(info), "labels"
        description = f"CH-SIMS Fig. 2 statistics; {info.get('description')}"
    else:  # tsne
        import json

        from simsbench._data_record import data_info_of
        from simsbench._defaults import QUICK_MAX_EPOCHS, QUICK_MAX_TRAIN
        from simsbench.datasets import load_dataset
        from simsbench.specs import load_specs

        specs = load_specs(args.specs)
        spec = specs.estimator(args.estimator)
        check_data(data)
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


def _cmd_tune(args) -> int:
    from simsbench._data_record import check_data
    from simsbench.datasets import dataset_kind
    from simsbench.specs import load_specs
    from simsbench.tune import DEFAULT_METRIC, DEFAULT_SEEDS, DEFAULT_TRIALS, default_task, tune

    if args.jobs < 1:
        raise CLIError(f"--jobs must be >= 1, got {args.jobs}")
    specs = load_specs(args.specs)
    spec = specs.estimator(args.estimator)
    if args.data:
        check_data(args.data)
    if args.task:
        task = specs.task(args.task)
    else:
        kind = dataset_kind(args.data) if args.data else "sims"
        task = specs.task(default_task(kind))
    result = tune(
        spec, task, args.data,
        n_trials=DEFAULT_TRIALS if args.trials is None else args.trials,
        seeds=_seeds(args.seeds) or DEFAULT_SEEDS, metric=args.metric or DEFAULT_METRIC,
        random_state=args.random_state, results_dir=args.results, name=args.name,
        out=args.out, jobs=args.jobs, threads=args.threads, device=args.device,
        precision=args.precision, backend=args.backend,
        scheduler=args.scheduler, force=args.force,
        quick=args.quick, tiny=args.tiny, progress=not args.quiet,
    )
    print(result.report, end="")
    if not args.quiet:
        table = (result.spec.tables or ("table2",))[0]
        assert result.spec_path is not None  # tune writes the winner's spec
        folder = result.spec_path.parent
        root = folder.parent if folder.name == "estimators" else \
            f"DIR (a folder whose estimators/ holds {result.spec_path.name})"
        print(f"simsbench: {result.computed} run(s) trained, {result.cached} cached; "
              f"tuned spec {result.spec_path}; report {result.report_paths[0]}\n"
              f"simsbench: compare default and tuned: simsbench run {table} --data "
              f"{result.data} --specs {root} --estimators {spec.name},{result.spec.name}",
              file=sys.stderr)
    return 0


def record_warnings_in_one_line(show):
    """A ``warnings.showwarning`` that prints a skipped record as one line on
    stderr and hands every other warning to ``show``."""
    from simsbench.results import RecordWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RecordWarning):
            print(f"simsbench: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


HANDLERS = {"list": _cmd_list, "data": _cmd_data, "run": _cmd_run, "table": _cmd_table,
            "figure": _cmd_figure, "report": _cmd_report, "tune": _cmd_tune}
