"""Seconds per training epoch and peak memory of every deep estimator.

Each model is trained in a fresh process on the SIMS-shaped synthetic data
(the CH-SIMS v2-only models on the v2-shaped data) with its default
(reference) hyperparameters for ``--epochs`` epochs; the script prints the
mean seconds per epoch (training + validation pass, skorch's ``dur``), the
peak resident memory of the process and the resident memory right after the
data was loaded, next to the reference implementation's figures measured on
this machine type (issue 3/4).  The data are written once as MMSA pickles
and memory-mapped from simsbench's cache by every worker.

    python benchmarks/bench_training.py            # 2 epochs per model
    python benchmarks/bench_training.py --quick    # 1 epoch, < 10 minutes
    python benchmarks/bench_training.py --models TFN,MTFN --epochs 3
    python benchmarks/bench_training.py --lfdnn-fit   # whole LF-DNN fit+predict
    python benchmarks/bench_training.py --models LFDNN --arithmetic  # and its FLOP floor
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

# Reference implementation (MMSA / AV-MC code) on this machine type: s/epoch.
REFERENCE_S_PER_EPOCH = {
    "LFDNN": 1.0,
    "TFN": 37.0,
    "GraphMFN": 9.5,
    "MulT": 174.0,
    "MTFN": 77.0,
}
REFERENCE_PEAK_GB = {"MulT": 8.4, "MTFN": 3.6}
TARGET_S_PER_EPOCH = {"TFN": 8.0, "MulT": 58.0, "MTFN": 26.0, "GraphMFN": 9.5 / 3,
                      "LFDNN": 1.0 / 3}
TARGET_PEAK_GB = {"MulT": 4.0, "MTFN": 3.0}

V2_MODELS = {"AVMC", "AVMCSemi"}
SKIP = {"BertMAG": "needs a local BERT checkpoint (bert mode only)"}
# --quick must stay under 10 minutes: these take minutes per epoch on 2 cores
QUICK_SKIP = {"AVMCSemi": "one epoch (2722 + 2000 unlabelled clips, BiLSTMs over 925 "
                          "audio frames) takes minutes on CPU; run without --quick"}

WORKER = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
name, data, cache, epochs, threads, full = sys.argv[1:7]
epochs, threads, full = int(epochs), int(threads), full == "1"
import torch
torch.set_num_threads(threads)
from simsbench.datasets import load_mmsa
from simsbench.utils.discovery import get_estimator_class
ds = load_mmsa(data, cache_dir=cache)
semi = name == "AVMCSemi"
labels = ("M", "T", "A", "V")
X = ds.X_semi() if semi else ds.X("train")
y = ds.y_semi(labels) if semi else ds.y("train", labels)
Xv, yv = ds.X("valid"), ds.y("valid", labels)
def peak_mb():
    # VmHWM resets at exec (ru_maxrss would include the parent's memory)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
# materialise the arrays (the memmap pages count once loaded)
X = {k: np.asarray(v) for k, v in X.items()}
Xv = {k: np.asarray(v) for k, v in Xv.items()}
base_mb = peak_mb()
# Peak anonymous memory (the process's own, not the clean file-backed pages
# of the memory-mapped data, which the kernel may drop at any time): sampled
import threading
anon = {"peak": 0, "stop": False}
def _sample():
    while not anon["stop"]:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                anon["peak"] = max(anon["peak"], int(line.split()[1]) / 1024)
        time.sleep(0.005)
sampler = threading.Thread(target=_sample, daemon=True)
sampler.start()
cls = get_estimator_class(name)
params = dict(random_state=0, n_threads=threads)
if not full:
    params.update(max_epochs=epochs, early_stop=epochs + 1)
est = cls(**params)
t = time.perf_counter()
est.fit(X, y, X_valid=Xv, y_valid=yv)
pred = est.predict(ds.X("test"))
wall = time.perf_counter() - t
durs = [float(d) for d in est.net_.history[:, "dur"]]
peak = peak_mb()
anon["stop"] = True
sampler.join()
print("RESULT " + json.dumps({
    "model": name, "epochs": len(durs), "s_per_epoch": durs,
    "peak_mb": peak, "anon_peak_mb": anon["peak"], "data_mb": base_mb,
    "n_params": int(est.n_params_),
    "fit_predict_s": wall, "best_epoch": int(est.best_epoch_),
}))
"""


def _write_data(work: Path, kind: str) -> Path:
    from simsbench.datasets import load_mmsa, make_synthetic_mmsa, write_mmsa

    path = work / f"synthetic_{kind}.pkl"
    if not path.exists():
        sup, unl = make_synthetic_mmsa(kind, random_state=0)
        write_mmsa(sup, path)
        if unl is not None:
            write_mmsa(unl, work / f"synthetic_{kind}_unlabelled.pkl")
        del sup, unl
    unl_path = work / f"synthetic_{kind}_unlabelled.pkl"
    # build the memory-mapped cache once, outside the timed workers
    load_mmsa(path, unlabelled=unl_path if unl_path.exists() else None,
              cache_dir=work / "cache")
    return path


def run_model(name, data, unl, cache, epochs, threads, full=False, timeout=3600):
    arg_data = str(data)
    if unl is not None:
        # the worker joins the unlabelled file through load_mmsa
        arg_data = f"{data}"
    code = WORKER
    if unl is not None:
        code = code.replace("ds = load_mmsa(data, cache_dir=cache)",
                            f"ds = load_mmsa(data, unlabelled={str(unl)!r}, cache_dir=cache)")
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, name, arg_data, str(cache), str(epochs),
             str(threads), "1" if full else "0"],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"model": name, "error": f"timed out after {timeout} s"}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    err = (out.stderr.strip().splitlines() or ["no output"])[-1]
    return {"model": name, "error": err}


def lfdnn_arithmetic(threads: int) -> dict:
    """A lower bound on LF-DNN's epoch time: the arithmetic of its text LSTM.

    Counts the FLOPs of the text LSTM (the bulk of LF-DNN's work) over the real
    tokens of the synthetic default's train split (forward, weight gradients
    and the recurrent input gradient) and valid split (forward), and divides
    by this machine's measured single-precision matrix-product rate at the
    LSTM's own shapes.  The remaining layers are left out, so the bound is
    conservative.
    """
    import numpy as np
    import torch

    from simsbench.datasets import make_synthetic
    from simsbench.estimators import LFDNN

    torch.set_num_threads(threads)
    ds = make_synthetic()
    est = LFDNN()
    h, d = est.hidden_dims[0], 768
    tok = {s: float(np.sum(ds[s].text_lengths)) for s in ("train", "valid")}
    g = 4 * h
    flops = tok["train"] * 2 * g * (2 * d + 3 * h) + tok["valid"] * 2 * g * (d + h)
    # the matrix products of one length bucket: (32 clips x ~20 tokens) x 768 @ 768 x 512
    a, w = torch.randn(32 * 20, d), torch.randn(d, g)
    for _ in range(3):
        a @ w
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < 2.0:
        a @ w
        n += 1
    rate = n * 2 * a.shape[0] * d * g / (time.perf_counter() - t)
    return {"gflop": flops / 1e9, "gflops_per_s": rate / 1e9, "floor_s": flops / rate}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch per model")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--models", default=None, help="comma-separated names")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--lfdnn-fit", action="store_true",
                        help="also time a whole LF-DNN fit-and-predict (target < 15 s)")
    parser.add_argument("--arithmetic", action="store_true",
                        help="also print LF-DNN's arithmetic floor per epoch on this CPU")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.quick else 2)

    from simsbench.utils.discovery import all_estimators

    deep = [n for n, c in all_estimators() if hasattr(c, "_build_module")]
    names = args.models.split(",") if args.models else deep
    work = Path(args.workdir or Path(tempfile.gettempdir()) / "simsbench-bench")
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = {"sims": _write_data(work, "sims")}
    if any(n in V2_MODELS for n in names):
        data["simsv2"] = _write_data(work, "simsv2")
    print(f"# data ready in {time.perf_counter() - t0:.0f} s ({work}); "
          f"{args.threads} torch threads; {epochs} epoch(s) per model; "
          f"python {sys.version.split()[0]}")
    results = []
    header = (f"{'model':<10} {'data':<7} {'params':>12} {'s/epoch':>8} {'ref':>6} "
              f"{'speedup':>7} {'target':>7} {'peak GB':>8} {'anon GB':>8} {'data GB':>8}")
    print(header)
    print("-" * len(header))
    for name in names:
        if name in SKIP or (args.quick and not args.models and name in QUICK_SKIP):
            print(f"{name:<10} skipped: {SKIP.get(name) or QUICK_SKIP[name]}")
            continue
        kind = "simsv2" if name in V2_MODELS else "sims"
        unl = work / f"synthetic_{kind}_unlabelled.pkl"
        res = run_model(name, data[kind], unl if unl.exists() else None, work / "cache",
                        epochs, args.threads)
        res["data"] = kind
        results.append(res)
        if "error" in res:
            print(f"{name:<10} {kind:<7} ERROR: {res['error']}")
            continue
        spe = sum(res["s_per_epoch"]) / len(res["s_per_epoch"])
        ref = REFERENCE_S_PER_EPOCH.get(name)
        tgt = TARGET_S_PER_EPOCH.get(name)
        peak = res["peak_mb"] / 1024
        print(f"{name:<10} {kind:<7} {res['n_params']:>12,} {spe:>8.2f} "
              f"{(f'{ref:.1f}' if ref else '-'):>6} "
              f"{(f'{ref / spe:.1f}x' if ref else '-'):>7} "
              f"{(f'{tgt:.1f}' if tgt else '-'):>7} {peak:>8.2f} "
              f"{res['anon_peak_mb'] / 1024:>8.2f} {res['data_mb'] / 1024:>8.2f}", flush=True)
    if args.lfdnn_fit:
        res = run_model("LFDNN", data["sims"], None, work / "cache", 0, args.threads,
                        full=True)
        results.append({**res, "kind": "full_fit"})
        if "error" in res:
            print(f"LF-DNN whole fit: ERROR {res['error']}")
        else:
            print(f"LF-DNN whole fit-and-predict (early stopping, {res['epochs']} epochs): "
                  f"{res['fit_predict_s']:.1f} s (target < 15 s)")
    if args.arithmetic:
        a = lfdnn_arithmetic(args.threads)
        print(f"# LF-DNN text LSTM arithmetic per epoch: {a['gflop']:.1f} GFLOP; this CPU's "
              f"matrix-product rate at its shapes: {a['gflops_per_s']:.0f} GFLOP/s "
              f"({args.threads} threads); floor {a['floor_s']:.2f} s/epoch "
              f"(target {TARGET_S_PER_EPOCH['LFDNN']:.2f} s)")
        results.append({"kind": "lfdnn_arithmetic", **a})
    print("# reference columns: the reference implementation on this machine type; "
          "peak GB is the whole process's peak RSS (VmHWM, the touched pages of the "
          "memory-mapped data included); anon GB is the peak anonymous memory "
          "(sampled every 5 ms: the process's own memory, without the clean, "
          "reclaimable file-backed data pages); data GB is the RSS after loading")
    for name, gb in TARGET_PEAK_GB.items():
        r = next((r for r in results if r.get("model") == name and "peak_mb" in r), None)
        if r:
            print(f"# {name}: peak RSS {r['peak_mb'] / 1024:.2f} GB, peak anonymous "
                  f"{r['anon_peak_mb'] / 1024:.2f} GB (target < {gb} GB, "
                  f"reference {REFERENCE_PEAK_GB[name]} GB)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
