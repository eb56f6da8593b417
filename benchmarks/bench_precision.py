"""What ``precision="bfloat16"`` buys per model: float32 and bfloat16 side by side.

For each deep model and shape, the same estimator (its built-in spec, the
reference configuration) trains one epoch on the same subsample in float32
and in bfloat16 autocast, alternately (A B A B ...), so that both see the same
machine load; the script prints the median seconds of each, their ratio, and
how far the bfloat16 model's test predictions are from the float32 model's
(both from the same seed: the difference is the arithmetic's, compounded over
an epoch of training).

bfloat16 pays where matrix products dominate and the CPU has bfloat16
instructions (AVX512-BF16/AMX; the script prints whether torch sees them) or
on a GPU; it is an opt-in, never the reference configuration.

Usage::

    python benchmarks/bench_precision.py --shape sims --models TFN,MISA --repeats 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import SHAPES, spec_for  # noqa: E402  (a sibling script)


def cpu_bf16() -> str:
    """Which bfloat16 instructions this CPU advertises (Linux /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return ", ".join(found) or "none"


def one_fit(spec, kind, data, precision, threads):
    """Seconds of one epoch's fit (train + validation pass) and the test predictions."""
    est = spec.build(kind)
    est.set_params(random_state=0, n_threads=threads, max_epochs=1, early_stop=2,
                   precision=precision)
    X, y, Xv, yv, Xt = data
    t0 = time.perf_counter()
    est.fit(X, y, X_valid=Xv, y_valid=yv)
    secs = time.perf_counter() - t0
    return secs, est.predict(Xt)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="LFDNN,EFLSTM,TFN,GraphMFN,MISA,MMIM,MulT,AVMC",
                        help="comma-separated class names")
    parser.add_argument("--shape", default="sims", choices=tuple(SHAPES))
    parser.add_argument("--train", type=int, default=256, help="training clips (subsample)")
    parser.add_argument("--repeats", type=int, default=2, help="fits per precision")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from simsbench.datasets import load_dataset

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    kind = SHAPES[args.shape]
    ds = load_dataset(f"synthetic:{kind}").subsample(args.train, args.train,
                                                      max_eval=args.train // 2)
    labels = ("M", "T", "A", "V")
    data = (ds.X("train"), ds.y("train", labels), ds.X("valid"), ds.y("valid", labels),
            ds.X("test"))
    data = tuple({k: np.asarray(v) for k, v in d.items()} if isinstance(d, dict) else d
                 for d in data)
    for precision in ("float32", "bfloat16"):  # warm-up: first-call costs of each path
        one_fit(spec_for("LFDNN"), kind, data, precision, args.threads)
    print(f"# bench_precision: {kind} shapes, {len(data[1])} training, "
          f"{len(data[3])} validation and {len(data[4]['text'])} test clips; "
          f"{args.threads} thread(s); float32 and "
          f"bfloat16 alternated {args.repeats}x; CPU bfloat16 instructions: {cpu_bf16()}; "
          f"torch {torch.__version__}; load {os.getloadavg()[0]:.1f}")
    head = (f"{'model':<10} {'float32 s':>10} {'bfloat16 s':>11} {'speed-up':>9} "
            f"{'max |Δ pred|':>13} {'corr':>6}  load")
    print(head)
    print("-" * len(head))
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        spec = spec_for(name)  # exits naming the model when no spec has that class
        times = {"float32": [], "bfloat16": []}
        preds = {}
        try:
            for _ in range(args.repeats):
                for precision in ("float32", "bfloat16"):
                    secs, pred = one_fit(spec, kind, data, precision, args.threads)
                    times[precision].append(secs)
                    preds[precision] = pred
        except Exception as exc:  # noqa: BLE001 - one model's failure is its row
            print(f"{name:<10} error: {type(exc).__name__}: {exc}")
            continue
        a, b = (min(times[p]) for p in ("float32", "bfloat16"))
        d = preds["bfloat16"] - preds["float32"]
        corr = float(np.corrcoef(preds["bfloat16"], preds["float32"])[0, 1])
        print(f"{name:<10} {a:>10.2f} {b:>11.2f} {a / b:>8.2f}x {np.abs(d).max():>13.4f} "
              f"{corr:>6.3f}  {os.getloadavg()[0]:.1f}", flush=True)
    print("# seconds: the fastest of the repeats of one epoch's fit (train + validation "
          "pass) on the subsample; speed-up: float32 s / bfloat16 s; Δ pred: bfloat16 "
          "minus float32 test predictions, same seed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
