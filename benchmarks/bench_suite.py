"""Wall time of the benchmark suite.

Measures ``simsbench run tables --quick`` (every table of both papers on the
synthetic defaults, first seed, at most ``QUICK_MAX_EPOCHS`` epochs) and,
with ``--full``, the full five-seed CH-SIMS suite (``run table2`` ...
``table5`` on ``synthetic:sims``).  Each is run in a fresh process with a
fresh results directory, so nothing is cached.  Targets: ``--quick`` under
10 minutes, the full CH-SIMS suite under 3 hours, on 2 cores.

With ``--project`` nothing is run: the wall time of the FULL ``simsbench
run tables`` (both papers, every table including the corrections tables,
five seeds, reference configuration) is PROJECTED from measured figures:
the runs each table needs come from the library (the table layouts of
:mod:`simsbench.tables`, the corrections tables, the estimator and task
specs, the runner's request expansion), each run's epochs from real run
records (``--records DIR``, repeatable: the ``n_epochs`` of finished full
runs of the same model, task and configuration, else of the same model on
the dataset, else an assumption that is printed), and each epoch's seconds
and a run's overhead from ``bench_training.py --json`` (``--epoch-times``).
Runs of classical models take their measured ``wall_time`` from the
records.  The wall time with ``--jobs N`` is the schedule of the runs, in
the command's order, on ``N`` workers (each run to the worker free first),
dataset after dataset, as ``run tables`` works.  The same schedule is also
printed with every epoch at its arithmetic floor (bench_training's FLOPs of
the epoch at this CPU's matrix-product rate): no implementation of the same
arithmetic on this CPU can run the suite faster.  A model with no record
on one dataset takes its epoch counts from the other (labelled so).

Usage::

    python benchmarks/bench_suite.py                 # quick suite only
    python benchmarks/bench_suite.py --project --epoch-times bt.json --records results
    python benchmarks/bench_suite.py --full          # also the full SIMS suite (hours)
    python benchmarks/bench_suite.py --full --no-quick   # the full SIMS suite only
    python benchmarks/bench_suite.py --full --no-quick --resume --out DIR   # go on
    python benchmarks/bench_suite.py --jobs 2 --out /tmp/bench

The full suite takes hours.  Ctrl-C (or SIGTERM) stops it cleanly: the finished runs are
kept, and the time so far is written to ``bench_suite.json``; ``--resume``
goes on with the same ``--out`` and adds the segments' wall times.

Prints the wall times and the slowest runs, and writes ``bench_suite.json``
in ``--out``.  Timings on a shared machine are inflated; report them with
the load (``os.getloadavg``) that is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run from a checkout: this checkout's simsbench, here and in the timed
# subprocesses, whatever is installed
ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)


class Interrupted(Exception):
    """Ctrl-C (SIGINT) during a timed command; carries the time it had run."""

    def __init__(self, elapsed: float):
        super().__init__(elapsed)
        self.elapsed = elapsed


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run(args: list[str], results: Path, log: Path) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "simsbench", *args, "--results", str(results)]
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        # its own process group, so that stopping it reaches the joblib workers
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            # finished runs are already on disk (written atomically); stop the rest
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise Interrupted(time.perf_counter() - t0) from None
    return time.perf_counter() - t0, rc


def _slowest(results: Path, n: int = 10) -> list[dict]:
    from simsbench.results import read_records

    recs = read_records(results)
    recs.sort(key=lambda r: r.get("wall_time", 0.0), reverse=True)
    return [
        {"estimator": r["estimator"], "task": r["task"], "seed": r["seed"],
         "status": r["status"], "wall_time": round(r.get("wall_time", 0.0), 1),
         "n_epochs": r.get("n_epochs")}
        for r in recs[:n]
    ]


def _status_counts(results: Path) -> dict[str, int]:
    from simsbench.results import read_records

    out: dict[str, int] = {}
    for r in read_records(results):
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


# ---------------------------------------------------------------------------
# the projection of the full `run tables`

SUITE_DATA = (("synthetic:sims", "sims"), ("synthetic:simsv2", "simsv2"))
"""The data grids of ``simsbench run tables`` without ``--data``, in its order."""


def plan_suite(data=SUITE_DATA, specs_dirs=()) -> list[dict]:
    """Every run of the full ``simsbench run tables`` (reference configuration).

    Returns one dict per distinct run, in the command's order: ``data``,
    ``kind``, ``table`` (the first table needing it), ``tables`` (all),
    ``estimator`` (spec name), ``class_name``, ``task``, ``seed`` and
    ``variant``.  The runs are the ones ``run tables`` plans
    (:func:`simsbench.suite.plan_tables` and
    :func:`simsbench.suite.table_requests`), deduplicated as it does (one run
    serves every table that shows it).
    """
    from simsbench.specs import load_specs
    from simsbench.suite import plan_tables, table_requests

    specs = load_specs(list(specs_dirs))
    runs: dict[tuple, dict] = {}
    for data_spec, kind in data:
        # the command's own plan (every table of the kind and the corrections
        # table, no ablation rows), then table by table in its order so that
        # each run is credited to the first table needing it
        [whole] = plan_tables("tables", [data_spec], specs=specs, ablations=False)
        for name in whole.names:
            [grid] = plan_tables(name, [data_spec], specs=specs, ablations=False)
            if grid.corrections is not None:  # "corrections" or "v2-corrections"
                name = grid.corrections.definition.name
            for req in table_requests(grid, specs):
                est = req.estimator.name
                ident = (data_spec, est, req.task.name, req.seed, req.variant)
                if ident in runs:
                    if name not in runs[ident]["tables"]:
                        runs[ident]["tables"].append(name)
                    continue
                runs[ident] = {"data": data_spec, "kind": kind, "table": name,
                               "tables": [name], "estimator": est,
                               "class_name": req.estimator.class_name, "task": req.task.name,
                               "seed": req.seed, "variant": req.variant}
    return list(runs.values())


def epoch_counts(record_dirs) -> list[dict]:
    """The finished full runs of ``record_dirs``: kind, estimator, task,
    variant, epochs (``n_epochs``, else the length of the loss history) and
    wall time."""
    from simsbench.results import read_records

    out, seen = [], set()
    for d in record_dirs:
        for r in read_records(d):
            if r.get("mode") != "full" or r.get("status") != "ok" or r.get("key") in seen:
                continue
            seen.add(r.get("key"))
            n = r.get("n_epochs")
            if n is None:
                n = len((r.get("history") or {}).get("train_loss", [])) or None
            out.append({"kind": (r.get("data") or {}).get("kind"), "estimator": r["estimator"],
                        "task": r["task"], "variant": r.get("variant", "reference"),
                        "epochs": n, "wall_time": float(r.get("wall_time") or 0.0),
                        "source": str(d)})
    return out


def _median(values):
    v = sorted(values)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def epochs_for(run: dict, measured: list[dict], assumed: float) -> tuple[float, str]:
    """A run's epochs and where the figure comes from (``measured: ...`` or
    ``ASSUMED: ...``): the mean over records of the same model, task and
    variant, else of the same model and task, else of the same model and
    variant on the dataset, else of the same model on the dataset, else
    ``assumed``.  Without a record of the model on the run's dataset, the
    counts of the same model (same variant first) on the other dataset
    stand in, labelled ``measured on <kind>``: early stopping on the same
    patience, a closer guess than the median of other models."""
    steps = (
        ("measured", lambda m: m["task"] == run["task"] and m["variant"] == run["variant"]),
        ("measured, reference configuration's",
         lambda m: m["task"] == run["task"]),
        ("measured, on other tasks", lambda m: m["variant"] == run["variant"]),
        ("measured, on other tasks and configurations", lambda m: True),
    )
    model = [m for m in measured if m["estimator"] == run["estimator"] and m["epochs"]]
    same = [m for m in model if m["kind"] == run["kind"]]
    for label, keep in steps:
        hits = [m["epochs"] for m in same if keep(m)]
        if hits:
            return sum(hits) / len(hits), f"{label} (n={len(hits)})"
    other = [m for m in model if m["kind"] != run["kind"]]
    for keep in (lambda m: m["variant"] == run["variant"], lambda m: True):
        hits = [m for m in other if keep(m)]
        if hits:
            kinds = ", ".join(sorted({m["kind"] for m in hits}))
            return (sum(m["epochs"] for m in hits) / len(hits),
                    f"measured on {kinds} (n={len(hits)})")
    return assumed, "ASSUMED"


def project_runs(runs: list[dict], per_epoch: dict, measured: list[dict],
                 assumed_epochs: float | None = None,
                 not_trained: dict | None = None) -> list[dict]:
    """Each run's projected seconds.

    ``per_epoch`` maps ``(class name, kind)`` to ``{"s_per_epoch",
    "overhead_s"}`` (bench_training's measurements).  A deep run takes
    ``epochs * s_per_epoch + overhead_s``; a run of a model without epochs
    (a classical one) its measured wall time in the records; one of a class
    in ``not_trained`` (``(class, kind) -> why``) none.  Returns the
    runs with ``epochs``, ``epochs_source``, ``s_per_run`` and ``note``
    (what was assumed) added; ``s_per_run`` is None where nothing was measured.
    ``floor_s_per_run`` is the same run at its arithmetic floor
    (``epochs * floor_s``, bench_training's FLOPs of an epoch at this CPU's
    matrix-product rate; a classical run's measured wall time; 0 for a run
    that is not trained), None where no floor was measured.
    """
    from simsbench.tables import TABLES

    # the task bench_training's epochs stand for: each dataset's multimodal one
    multimodal = {t.data_kind: t.user_task for t in TABLES.values() if t.user_task}
    counts = [m["epochs"] for m in measured if m["epochs"]]
    if assumed_epochs is None:
        assumed_epochs = _median(counts) if counts else None
    out = []
    for run in runs:
        res = dict(run, epochs=None, epochs_source="", s_per_run=None, note="",
                   floor_s_per_run=None)
        timing = per_epoch.get((run["class_name"], run["kind"]))
        why = (not_trained or {}).get((run["class_name"], run["kind"]))
        if why and timing is None:
            res.update(s_per_run=0.0, floor_s_per_run=0.0, epochs_source="not trained",
                       note=why)
            out.append(res)
            continue
        if timing is None:
            walls = [m["wall_time"] for m in measured if m["kind"] == run["kind"]
                     and m["estimator"] == run["estimator"] and m["task"] == run["task"]
                     and not m["epochs"] and m["wall_time"] > 0]
            if walls:
                res.update(s_per_run=sum(walls) / len(walls), epochs_source="no epochs",
                           note=f"s/run measured (n={len(walls)})",
                           floor_s_per_run=sum(walls) / len(walls))
            else:
                res["note"] = ("NOT MEASURED: no s/epoch in --epoch-times and no full-run "
                               "record")
            out.append(res)
            continue
        epochs, source = epochs_for(run, measured, assumed_epochs)
        if epochs is None:
            res["note"] = "NOT MEASURED: no epoch count (give --assume-epochs)"
            out.append(res)
            continue
        if source == "ASSUMED":
            source = f"ASSUMED {epochs:g}"
        res.update(epochs=epochs, epochs_source=source,
                   s_per_run=epochs * timing["s_per_epoch"] + timing["overhead_s"],
                   load=timing.get("load"))
        if timing.get("floor_s") is not None:
            res["floor_s_per_run"] = epochs * float(timing["floor_s"])
        notes = []
        if run["task"] != multimodal.get(run["kind"]):
            notes.append("s/epoch of the multimodal task")
        if run["variant"] != "reference":
            notes.append("s/epoch of the reference configuration")
        res["note"] = "; ".join(notes)
        out.append(res)
    return out


def list_schedule(durations, jobs: int) -> float:
    """Wall time of ``durations`` on ``jobs`` workers, each run in the given
    order to the worker free first: how the runner's pool works through a grid."""
    import heapq

    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    free = [0.0] * jobs
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def per_epoch_times(paths) -> tuple[dict, list[str]]:
    """``(class, kind) -> {"s_per_epoch", "overhead_s", "floor_s", "load", "threads"}`` from
    bench_training JSON files, and warnings (other thread counts).  The
    timed epochs of a short measurement win over a whole fit's
    (``--full-fit``), which fills in where there is none."""
    out, warns = {}, []
    for full in (False, True):
        for path in paths:
            doc = json.loads(Path(path).read_text())
            for r in doc.get("results", []):
                if ("error" in r or r.get("mean_s_per_epoch") is None
                        or bool(r.get("full_fit")) != full):
                    continue
                key = (r["model"], r["shape"])
                if full and key in out:
                    continue
                if r.get("threads", 1) != 1:
                    warns.append(f"{path}: {r['model']}/{r['shape']} measured with "
                                 f"{r['threads']} threads; `run tables` runs use 1")
                out[key] = {
                    "s_per_epoch": float(r["mean_s_per_epoch"]),
                    "overhead_s": max(0.0, float(r.get("overhead_s", 0.0))),
                    "floor_s": r.get("floor_s"),
                    "load": r.get("load"), "threads": r.get("threads", 1)}
    return out, warns


def full_fit_counts(paths) -> list[dict]:
    """Epoch counts of bench_training ``--full-fit`` results (a whole fit with
    early stopping on the dataset's multimodal task), as :func:`epoch_counts`."""
    from simsbench.tables import TABLES

    multimodal = {t.data_kind: t.user_task for t in TABLES.values() if t.user_task}
    out = []
    for path in paths:
        for r in json.loads(Path(path).read_text()).get("results", []):
            if r.get("full_fit") and "error" not in r and r.get("spec"):
                out.append({"kind": r["shape"], "estimator": r["spec"],
                            "task": multimodal.get(r["shape"]), "variant": "reference",
                            "epochs": r["epochs"], "wall_time": r.get("fit_predict_s", 0.0),
                            "source": str(path)})
    return out


def _hms(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def projection_report(projected: list[dict], jobs: int) -> tuple[str, dict]:
    """The printed PROJECTION (per table, per model, in total) and its JSON."""
    lines = [f"PROJECTION of the full `simsbench run tables` (both papers, every seed, "
             f"reference configuration, --jobs {jobs}), from measured epoch times and "
             f"epoch counts; not a measurement"]
    known = [p for p in projected if p["s_per_run"] is not None]
    missing = [p for p in projected if p["s_per_run"] is None]
    doc: dict = {"jobs": jobs, "tables": {}, "models": [], "runs": len(projected),
                 "not_projected": len(missing)}
    tables = list(dict.fromkeys(p["table"] for p in projected))
    lines.append("")
    lines.append(f"{'table':<16} {'runs':>5} {'total':>10} {f'wall, {jobs} jobs':>14}")
    for t in tables:
        mine = [p for p in known if p["table"] == t]
        n = sum(1 for p in projected if p["table"] == t)
        total = sum(p["s_per_run"] for p in mine)
        wall = list_schedule([p["s_per_run"] for p in mine], jobs)
        doc["tables"][t] = {"runs": n, "total_s": total, "wall_s": wall}
        lines.append(f"{t:<16} {n:>5} {_hms(total):>10} {_hms(wall):>14}"
                     + (f"  ({n - len(mine)} not projected)" if len(mine) < n else ""))
    lines.append("")
    lines.append(f"{'table':<16} {'model':<11} {'variant':<10} {'task':<32} {'runs':>4} "
                 f"{'epochs':>7} {'s/run':>8} {'total':>10}  epochs from; notes")
    groups: dict[tuple, list[dict]] = {}
    for p in projected:
        groups.setdefault((p["table"], p["estimator"], p["variant"], p["task"]), []).append(p)
    for (t, est, var, task), ps in groups.items():
        ok = [p for p in ps if p["s_per_run"] is not None]
        if ok:
            ep = [p["epochs"] for p in ok if p["epochs"] is not None]
            spr = sum(p["s_per_run"] for p in ok) / len(ok)
            total = sum(p["s_per_run"] for p in ok)
            ep_text = f"{sum(ep) / len(ep):.1f}" if ep else "-"
            load = ok[0].get("load")
            notes = [ok[0]["epochs_source"], ok[0]["note"],
                     f"s/epoch at load {load:.1f}" if load is not None else ""]
            lines.append(f"{t:<16} {est:<11} {var[:10]:<10} {task[:32]:<32} {len(ps):>4} "
                         f"{ep_text:>7} {spr:>8.0f} {_hms(total):>10}  "
                         + "; ".join(n for n in notes if n))
        else:
            lines.append(f"{t:<16} {est:<11} {var[:10]:<10} {task[:32]:<32} {len(ps):>4} "
                         f"{'-':>7} {'-':>8} {'-':>10}  {ps[0]['note']}")
        doc["models"].append({"table": t, "estimator": est, "variant": var, "task": task,
                              "runs": len(ps),
                              "epochs": ok[0]["epochs"] if ok else None,
                              "epochs_source": ok[0]["epochs_source"] if ok else None,
                              "s_per_run": (sum(p["s_per_run"] for p in ok) / len(ok))
                              if ok else None,
                              "note": (ok or ps)[0]["note"]})
    kinds = list(dict.fromkeys(p["kind"] for p in projected))

    def walls_by_kind(seconds):
        # `run tables` runs one dataset's grid after the other
        return {k: list_schedule([seconds(p) for p in known if p["kind"] == k], jobs)
                for k in kinds}

    walls = walls_by_kind(lambda p: p["s_per_run"])
    total = sum(p["s_per_run"] for p in known)
    doc.update(total_s=total, wall_s=sum(walls.values()), wall_s_by_kind=walls)

    # the same schedule with every epoch at its arithmetic floor: a lower
    # bound for any implementation of the same arithmetic on this CPU
    # (runs without a measured floor count at their projected time)
    def at_floor(p):
        floor = p.get("floor_s_per_run")
        return p["s_per_run"] if floor is None else floor

    floor_walls = walls_by_kind(at_floor)
    no_floor = sum(1 for p in known if p.get("floor_s_per_run") is None)
    floor_total = sum(at_floor(p) for p in known)
    doc.update(floor_total_s=floor_total, floor_wall_s=sum(floor_walls.values()),
               floor_wall_s_by_kind=floor_walls, runs_without_floor=no_floor)
    lines.append("")
    lines.append(f"PROJECTION total: {len(projected)} runs, {_hms(total)} of run time, "
                 f"{_hms(doc['wall_s'])} wall with --jobs {jobs} ("
                 + ", ".join(f"{k}: {_hms(w)}" for k, w in walls.items()) + ")"
                 + (f"; {len(missing)} runs NOT PROJECTED (nothing measured)" if missing
                    else ""))
    lines.append(f"AT THE ARITHMETIC FLOOR (every epoch at its FLOPs / this CPU's "
                 f"matrix-product rate): {_hms(floor_total)} of run time, "
                 f"{_hms(doc['floor_wall_s'])} wall with --jobs {jobs} ("
                 + ", ".join(f"{k}: {_hms(w)}" for k, w in floor_walls.items()) + ")"
                 + (f"; {no_floor} runs without a measured floor at their projected time"
                    if no_floor else ""))
    return "\n".join(lines), doc


def main_projection(args, parser) -> int:
    """``--project``: print the projection (and write it with ``--out``)."""
    if not args.epoch_times:
        parser.error("--project needs --epoch-times (bench_training.py --json output)")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    for path in args.epoch_times:
        if not Path(path).is_file():
            parser.error(f"--epoch-times: no file {path}")
    for d in args.records:
        if not Path(d).is_dir():
            parser.error(f"--records: no directory {d}")
    per_epoch, warns = per_epoch_times(args.epoch_times)
    measured = epoch_counts(args.records) + full_fit_counts(args.epoch_times)
    import importlib.util

    # bench_training's list of models that cannot train on a dataset (BertMAG)
    spec = importlib.util.spec_from_file_location(
        "bench_training", Path(__file__).resolve().parent / "bench_training.py")
    training = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(training)
    runs = plan_suite()
    not_trained = {k: f"{why} (the runner records it as not runnable)"
                   for k, why in training.NOT_APPLICABLE.items()}
    projected = project_runs(runs, per_epoch, measured, args.assume_epochs, not_trained)
    text, doc = projection_report(projected, args.jobs)
    loads = sorted({round(v["load"], 1) for v in per_epoch.values() if v.get("load")})
    print(f"# epoch times from {', '.join(args.epoch_times)} (load averages when measured: "
          f"{', '.join(map(str, loads)) or 'unknown'}; now {os.getloadavg()[0]:.1f}); "
          f"epoch counts from {len(measured)} full-run records in "
          f"{', '.join(args.records) or 'no directory'} and --full-fit results")
    for w in warns:
        print(f"# warning: {w}")
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        doc["load_when_measured"] = loads
        (out / "projection.json").write_text(json.dumps(doc, indent=1))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="also time the full five-seed CH-SIMS suite (takes hours)")
    parser.add_argument("--no-quick", action="store_true",
                        help="skip the --quick suite (with --full: time the full suite only)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--project", action="store_true",
                        help="run nothing: project the full `run tables` from --epoch-times "
                             "and --records")
    parser.add_argument("--epoch-times", metavar="JSON", action="append", default=[],
                        help="bench_training.py --json output (repeatable; later files win)")
    parser.add_argument("--records", metavar="DIR", action="append", default=[],
                        help="results directory whose full-run records give epoch counts "
                             "and classical models' run times (repeatable)")
    parser.add_argument("--assume-epochs", type=float, default=None,
                        help="epochs of a run with no record (default: the median of the "
                             "measured counts)")
    parser.add_argument("--out", default=None, help="where results and logs go")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted --full measurement in --out: finished "
                             "runs are reused, and the wall times of all segments are added")
    args = parser.parse_args(argv)
    if args.project:
        return main_projection(args, parser)
    # Ctrl-C and SIGTERM both stop the measurement cleanly (a background job
    # may have inherited an ignored SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    out = Path(args.out or tempfile.mkdtemp(prefix="simsbench-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    state = out / "bench_suite.json"
    if args.resume and state.exists():
        report = json.loads(state.read_text())
        if report.get("jobs") != args.jobs:
            parser.error(f"--resume: {state} was measured with --jobs {report.get('jobs')}")
    else:
        report = {"cpu_count": os.cpu_count(), "jobs": args.jobs,
                  "load_before": os.getloadavg()}
    jobs = ["--jobs", str(args.jobs)]

    if not args.no_quick:
        wall, rc = _run(["run", "tables", "--quick", *jobs], out / "quick", out / "quick.log")
        report["quick"] = {"wall_s": round(wall, 1), "returncode": rc,
                           "statuses": _status_counts(out / "quick"),
                           "slowest": _slowest(out / "quick"), "target_s": 600}
        print(f"run tables --quick: {wall:.0f} s (target 600 s), rc={rc}, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    interrupted = False
    if args.full:
        full = report.setdefault("full_sims", {"segments": [], "done": []})
        for table in ("table2", "table3", "table4", "table5"):
            if table in full["done"]:
                continue
            try:
                wall, rc = _run(["run", table, *jobs], out / "full", out / f"full-{table}.log")
            except Interrupted as stop:
                full["segments"].append({"table": table, "wall_s": round(stop.elapsed, 1),
                                         "interrupted": True, "load": os.getloadavg()})
                print(f"run {table}: interrupted after {stop.elapsed:.0f} s; rerun with "
                      f"--resume --out {out} to go on", flush=True)
                interrupted = True
                break
            full["segments"].append({"table": table, "wall_s": round(wall, 1),
                                     "returncode": rc, "load": os.getloadavg()})
            if rc == 0:
                full["done"].append(table)
            # saved after every table, so that a later failure loses no segment
            state.write_text(json.dumps(report, indent=1))
            print(f"run {table} (5 seeds): {wall:.0f} s", flush=True)
        total = sum(seg["wall_s"] for seg in full["segments"])
        full.update(wall_s=round(total, 1), statuses=_status_counts(out / "full"),
                    slowest=_slowest(out / "full"), target_s=3 * 3600,
                    complete=len(full["done"]) == 4)
        what = "full CH-SIMS suite" if full["complete"] else "full CH-SIMS suite so far"
        print(f"{what}: {total / 60:.1f} min over {len(full['segments'])} segment(s) "
              f"(target 180 min)", flush=True)
    report["load_after"] = os.getloadavg()
    state.write_text(json.dumps(report, indent=1))
    if interrupted:
        return 130
    print(json.dumps(report, indent=1))
    print(f"results and logs under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
