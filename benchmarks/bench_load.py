"""Load time of a SIMS-sized MMSA pickle: first load vs cached reload.

Writes the SIMS-shaped synthetic dataset as an MMSA-format pickle (the
layout of ``unaligned_39.pkl``), then times ``load_mmsa`` twice in fresh
processes: the first load unpickles (restricted), validates, cleans and
writes the ``.npy`` cache; the second memory-maps the cache.

Target (issue 2): second load under 2 s.

    python benchmarks/bench_load.py [--workdir DIR] [--kind sims|simsv2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOAD = """
import sys, time
t = time.perf_counter()
from simsbench.datasets import load_mmsa
ds = load_mmsa(sys.argv[1], cache_dir=sys.argv[2])
n = sum(s.n_samples for s in ds.splits.values())
# touch labels and lengths, as every run does
y = ds.y('train'); X = ds.X('train')
print(f"{time.perf_counter() - t:.3f} {n}")
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="where to write the pickle/cache")
    parser.add_argument("--kind", default="sims", choices=["sims", "simsv2"])
    args = parser.parse_args(argv)
    from simsbench.datasets import make_synthetic_mmsa, write_mmsa

    work = Path(args.workdir or tempfile.mkdtemp(prefix="simsbench-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pkl = work / ("unaligned_39.pkl" if args.kind == "sims" else "ch-simsv2s.pkl")
    cache = work / "cache"
    t = time.perf_counter()
    sup, _ = make_synthetic_mmsa(args.kind, random_state=0)
    write_mmsa(sup, pkl)
    del sup
    print(f"wrote {pkl} ({pkl.stat().st_size / 2**30:.2f} GiB) in "
          f"{time.perf_counter() - t:.1f} s")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for label in ("first load (unpickle + validate + write cache)",
                  "second load (memory-mapped cache)"):
        out = subprocess.run([sys.executable, "-c", LOAD, str(pkl), str(cache)],
                             capture_output=True, text=True, check=True, env=env)
        secs, n = out.stdout.split()
        print(f"{label}: {float(secs):.2f} s for {n} clips")
    print("target: second load < 2 s")


if __name__ == "__main__":
    main()
