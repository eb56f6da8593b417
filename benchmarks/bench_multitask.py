"""Do the unimodal tasks help?  Multi-task vs single-task on the synthetic SIMS default.

Runs, through the runner (cached, so a rerun only prints), Table 2's LF-DNN /
MLF-DNN, TFN / MTFN and LMF / MLMF rows and Table 5's eight MLF-DNN task sets
over ``--seeds`` with every model's default (reference) hyperparameters, then
prints each multi-task model's test MAE on M beside its single-task
counterpart's, and MLF-DNN trained on M, T, A, V beside M alone (mean ±
population std over seeds).  Acceptance (issue 4): each multi-task model
beats its counterpart, and M+T+A+V beats M alone, averaged over 3 seeds.

    python benchmarks/bench_multitask.py --jobs 2 --results /tmp/mt   # ~45 min on 2 cores
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)

PAIRS = (("mlf_dnn", "lf_dnn"), ("mtfn", "tfn"), ("mlmf", "lmf"))
DATA = "synthetic:sims"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,12,123")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--results", default=None,
                        help="results directory (reused: finished runs are not retrained)")
    args = parser.parse_args(argv)
    results = Path(args.results or tempfile.mkdtemp(prefix="simsbench-mt-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    common = ["--seeds", args.seeds, "--jobs", str(args.jobs), "--results", str(results),
              "--data", DATA, "--no-paper", "--quiet"]
    names = ",".join(n for pair in PAIRS for n in pair)
    for cmd in (["run", "table2", "--estimators", names], ["run", "table5"]):
        subprocess.run([sys.executable, "-m", "simsbench", *cmd, *common], check=True,
                       stdout=subprocess.DEVNULL)

    from simsbench.results import aggregate, data_slug, read_data_record, read_records

    slug = data_slug(DATA)
    fingerprint = read_data_record(results, slug)["fingerprint"]  # the data just used
    maes: dict[tuple[str, str], list[float]] = {}
    for rec in read_records(results, slug):
        if (rec["status"] == "ok" and rec["mode"] == "full" and rec["seed"] in seeds
                and rec["data"]["fingerprint"] == fingerprint):
            maes.setdefault((rec["estimator"], rec["task"]), []).append(rec["scores"]["mae"])

    def line(label, key):
        mean, std, n = aggregate(maes.get(key, []))
        return mean, f"{label:<22} {mean:.4f} ± {std:.4f} (n={n})"

    print(f"# test MAE on M, {DATA}, seeds {args.seeds}; lower is better")
    for multi, single in PAIRS:
        m, text_m = line(multi, (multi, "sims_multimodal"))
        s, text_s = line(single, (single, "sims_multimodal"))
        print(f"{text_m}   vs {text_s}   {'beats' if m < s else 'does NOT beat'}")
    m, text_m = line("MLF-DNN on M+T+A+V", ("mlf_dnn", "sims_tasks_mtav"))
    s, text_s = line("MLF-DNN on M alone", ("mlf_dnn", "sims_tasks_m"))
    print(f"{text_m}   vs {text_s}   {'beats' if m < s else 'does NOT beat'}")
    print(f"# records under {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
