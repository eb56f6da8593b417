"""What an honest tuning study costs and buys: wall time, default vs tuned, optimism.

For each estimator spec named on the command line this runs (or, for finished
trials, reads back from the cache) ``simsbench tune SPEC`` on the task's data,
then prints

* the study's time from its run records: elapsed (the first trial's start to
  the last one's end) and the summed run time, with the load average at the
  end;
* default vs tuned on the **test** split over the task's paper seeds (five for
  CH-SIMS): both specs' runs of a seed share its derived seed, so the test is
  a paired t over seeds (:func:`simsbench.stats.compare`);
* the report's selection-on-test rows: the test score of the configuration a
  selection on test would pick against the one picked on validation, i.e. the
  optimism a test-selected tuning (the reference frameworks') bakes in.

Everything goes through the cache of ``--results``: an interrupted study
resumes, and a second invocation trains nothing.

Usage::

    python benchmarks/bench_tune.py lf_dnn lmf --trials 50 --jobs 2 --results /tmp/tune
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def study_time(records) -> dict:
    """Wall and summed run time of a study's records (seconds).

    The wall time is the length of the union of the runs' ``[start, end]``
    intervals: a study stopped and resumed later (the cache keeps every
    finished trial) is timed without the pause between its segments.
    """
    spans = []
    for r in records:
        if not r or "created" not in r:
            continue
        end = datetime.fromisoformat(r["created"]).timestamp()
        wall = float(r.get("wall_time") or r.get("fit_time") or 0.0)
        spans.append((end - wall, end))
    if not spans:
        return {"elapsed_s": None, "run_s": 0.0, "runs": 0}
    busy, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                busy += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    busy += cur_end - cur_start
    return {"elapsed_s": busy, "run_s": sum(e - s for s, e in spans), "runs": len(spans)}


def default_vs_tuned(base, tuned, task, data, results, jobs, metric, quick=False, tiny=False):
    """Per-seed test scores of both specs and the paired test of their difference."""
    from simsbench.runner import requests_for, run_grid
    from simsbench.stats import compare

    reqs = requests_for([(base, task), (tuned, task)], data, quick=quick, tiny=tiny)
    grid = run_grid(reqs, results, jobs=jobs, progress=True)
    per = {base.name: {}, tuned.name: {}}
    for r in grid.records:
        if r.get("status") == "ok":
            per[r["estimator"]][int(r["seed"])] = float(r["scores"][metric])
    test = compare(per[tuned.name], per[base.name], paired=True)
    return per, test


def _fmt_s(s):
    if s is None:
        return "n/a"
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("estimators", nargs="+", help="estimator spec names (e.g. lf_dnn lmf)")
    parser.add_argument("--data", default=None, help="data spec (default: the task's)")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--results", default="results")
    parser.add_argument("--quick", action="store_true", help="smoke sizes (for the tests)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from simsbench.datasets import dataset_kind
    from simsbench.specs import load_specs
    from simsbench.tune import DEFAULT_METRIC, default_task, optimism, tune

    specs = load_specs()
    print(f"# bench_tune: {args.trials} trials per study, --jobs {args.jobs}, "
          f"{os.cpu_count()} CPUs, results in {args.results}")
    for name in args.estimators:
        spec = specs.estimator(name)
        data = args.data or "synthetic:sims"
        task = specs.task(default_task(dataset_kind(data)))
        t0 = time.perf_counter()
        res = tune(spec, task, data, n_trials=args.trials, results_dir=args.results,
                   jobs=args.jobs, quick=args.quick, tiny=args.tiny, progress=True)
        this_call = time.perf_counter() - t0
        times = study_time(r for row in res.records for r in row)
        print(f"\n## {spec.label} ({name}) on {data}: {len(res.configurations)} trials x "
              f"{len(res.seeds)} tuning seeds")
        print(f"study: {times['runs']} runs, elapsed {_fmt_s(times['elapsed_s'])} "
              f"(wall time while any of its runs ran, from the records), summed run time "
              f"{_fmt_s(times['run_s'])}; this call {_fmt_s(this_call)}; "
              f"load {os.getloadavg()[0]:.1f}")
        print(f"selected: trial {res.best} -> {res.spec_path}")
        metric = DEFAULT_METRIC
        per, test = default_vs_tuned(spec, res.spec, task, data, args.results, args.jobs,
                                     metric, quick=args.quick, tiny=args.tiny)
        seeds = sorted(set(per[spec.name]) | set(per[res.spec.name]))
        print(f"test {metric} over paper seeds {', '.join(map(str, seeds))}:")
        for label, key in (("default", spec.name), ("tuned", res.spec.name)):
            vals = [per[key].get(s) for s in seeds]
            shown = ", ".join("-" if v is None else f"{v:.4f}" for v in vals)
            ok = [v for v in vals if v is not None]
            mean = sum(ok) / len(ok) if ok else float("nan")
            print(f"  {label:<8} {shown}  mean {mean:.4f}")
        p = "n/a" if test.p is None else f"{test.p:.3g}"
        print(f"  tuned - default: {test.diff_mean:+.4f} ({test.diff_mean * 100:+.2f} MAE "
              f"points x100), paired t over {test.n} seeds, p = {p}")
        print("selection on test (computed after the selection; test MAE of the chosen "
              "configuration):")
        rows = optimism(res)
        chosen = rows[0]["test"].get(metric)
        for row in rows:
            v = row["test"].get(metric)
            gap = "" if v is None or chosen is None else f"  optimism {chosen - v:+.4f}"
            vs = "n/a" if v is None else f"{v:.4f}"
            print(f"  {row['selection']:<44} trial {row['trial']}: {vs}{gap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
