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
    python benchmarks/bench_suite.py --jobs 2 --out /tmp/bench

Prints the wall times and the slowest runs, and writes ``bench_suite.json``
in ``--out``.  Timings on a shared machine are inflated; report them with
the load (``os.getloadavg``) that is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str], results: Path, log: Path) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "simsbench", *args, "--results", str(results)]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    return time.perf_counter() - t0, proc.returncode


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
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="simsbench-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"cpu_count": os.cpu_count(), "jobs": args.jobs,
                    "load_before": os.getloadavg()}
    jobs = ["--jobs", str(args.jobs)]

    if not args.no_quick:
        wall, rc = _run(["run", "tables", "--quick", *jobs], out / "quick", out / "quick.log")
        report["quick"] = {"wall_s": round(wall, 1), "returncode": rc,
                           "statuses": _status_counts(out / "quick"),
                           "slowest": _slowest(out / "quick"), "target_s": 600}
        print(f"run tables --quick: {wall:.0f} s (target 600 s), rc={rc}, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    if args.full:
        total, rcs = 0.0, []
        for table in ("table2", "table3", "table4", "table5"):
            wall, rc = _run(["run", table, *jobs], out / "full", out / f"full-{table}.log")
            total += wall
            rcs.append(rc)
            print(f"run {table} (5 seeds): {wall:.0f} s", flush=True)
        report["full_sims"] = {"wall_s": round(total, 1), "returncodes": rcs,
                               "statuses": _status_counts(out / "full"),
                               "slowest": _slowest(out / "full"), "target_s": 3 * 3600}
        print(f"full CH-SIMS suite: {total / 60:.1f} min (target 180 min)")
    report["load_after"] = os.getloadavg()
    (out / "bench_suite.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    print(f"results and logs under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
