"""Wall time of the benchmark suite.

Measures ``simsbench run tables --quick`` (every table of both papers on the
synthetic defaults, first seed, at most ``QUICK_MAX_EPOCHS`` epochs) and,
with ``--full``, the full five-seed CH-SIMS suite (``run table2`` ...
``table5`` on ``synthetic:sims``).  Each is run in a fresh process with a
fresh results directory, so nothing is cached.  Targets: ``--quick`` under
10 minutes, the full CH-SIMS suite under 3 hours, on 2 cores.

Usage::

    python benchmarks/bench_suite.py                 # quick suite only
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="also time the full five-seed CH-SIMS suite (takes hours)")
    parser.add_argument("--no-quick", action="store_true",
                        help="skip the --quick suite (with --full: time the full suite only)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=None, help="where results and logs go")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted --full measurement in --out: finished "
                             "runs are reused, and the wall times of all segments are added")
    args = parser.parse_args(argv)
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
