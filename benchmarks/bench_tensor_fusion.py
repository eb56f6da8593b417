"""Seconds per epoch and peak memory of TFN / MTFN on SIMS-shaped data.

Run each measurement in a fresh process (peak RSS is per process)::

    python benchmarks/bench_tensor_fusion.py epoch TFN
    python benchmarks/bench_tensor_fusion.py epoch MTFN --epochs 2
    python benchmarks/bench_tensor_fusion.py layer MTFN   # fusion layer only

``epoch`` fits the estimator with its default (reference) hyperparameters on
``make_synthetic()`` (full CH-SIMS shapes) for ``--epochs`` epochs and prints
skorch's per-epoch durations (train + validation pass) and the peak RSS, in
total and above the RSS after loading the data.  ``layer`` times one
training step (forward + backward) of the fusion layer alone at the model's
batch size: the explicit outer product + ``nn.Dropout`` + ``nn.Linear``
(as the reference computes it) against ``TensorFusionLinear``.
"""

from __future__ import annotations

import argparse
import resource
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_time_callback():
    from skorch.callbacks import Callback

    class CPUTime(Callback):
        def on_epoch_begin(self, net, **kwargs):
            self.t0_ = time.process_time()

        def on_epoch_end(self, net, **kwargs):
            net.history.record("cpu", time.process_time() - self.t0_)

    return CPUTime()


def _CPUTime():
    return _cpu_time_callback()


def bench_epoch(name: str, epochs: int, threads: int | None, seed: int) -> None:
    from simsbench.datasets import LABELS, make_synthetic
    from simsbench.estimators import MTFN, TFN

    ds = make_synthetic()
    rss_data = _current_rss_mb()
    est = {"TFN": TFN, "MTFN": MTFN}[name](max_epochs=epochs, random_state=seed,
                                           n_threads=threads)
    # Also record each epoch's process CPU time: on a shared machine the wall
    # time ("dur") depends on the other processes, CPU time much less.
    base_callbacks = est._callbacks
    est._callbacks = lambda: [*base_callbacks(), ("cpu_time", _CPUTime())]
    labels = LABELS if name == "MTFN" else "M"
    t0 = time.perf_counter()
    est.fit(ds.X("train"), ds.y("train", labels),
            X_valid=ds.X("valid"), y_valid=ds.y("valid", labels))
    wall = time.perf_counter() - t0
    durs = list(est.net_.history[:, "dur"])
    cpu = list(est.net_.history[:, "cpu"])
    peak = _rss_mb()
    print(f"{name}: n_params={est.n_params_:,} threads={threads}")
    print(f"  epoch wall durations (s): {[round(d, 2) for d in durs]}  fit wall {wall:.1f}s")
    print(f"  epoch process CPU time (s): {[round(c, 2) for c in cpu]}")
    print(f"  peak RSS {peak / 1024:.2f} GB; after loading data {rss_data / 1024:.2f} GB; "
          f"increase {(peak - rss_data) / 1024:.2f} GB")


def bench_layer(name: str, repeats: int, threads: int | None) -> None:
    import torch

    from simsbench.estimators.modules._fusion import TensorFusion, dropout_mask

    if threads:
        torch.set_num_threads(threads)
    B, sizes, P, p = {"TFN": (32, (32, 128, 256), 32, 0.4),
                      "MTFN": (64, (32, 256, 256), 64, 0.2)}[name]
    torch.manual_seed(0)
    layer = TensorFusion(sizes, P, p)
    xs = [torch.randn(B, s, requires_grad=True) for s in sizes]

    def custom():
        layer.linear.weight.grad = None
        layer(audio=xs[0], vision=xs[1], text=xs[2]).sum().backward()

    drop = torch.nn.Dropout(p)

    def naive():
        layer.linear.weight.grad = None
        ones = torch.ones(B, 1)
        a, v, t = (torch.cat([ones, x], 1) for x in xs)
        z = torch.bmm(a[:, :, None], v[:, None, :]).reshape(B, -1, 1)
        z = torch.bmm(z, t[:, None, :]).reshape(B, -1)
        torch.nn.functional.linear(drop(z), layer.linear.weight, layer.linear.bias).sum().backward()

    def timeit(fn):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t0) / repeats

    t_mask = timeit(lambda: dropout_mask((B, layer.fusion_dim), p))
    print(f"{name} fusion layer, batch {B}, F={layer.fusion_dim:,}, P={P}, threads="
          f"{torch.get_num_threads()}")
    print(f"  naive (outer product + Dropout + Linear): {timeit(naive):.3f} s/step")
    print(f"  TensorFusionLinear:                        {timeit(custom):.3f} s/step "
          f"(of which dropout mask {t_mask:.3f} s)")
    layer.eval()
    with torch.no_grad():
        t_eval = timeit(lambda: layer(audio=xs[0], vision=xs[1], text=xs[2]))
    print(f"  eval forward:                              {t_eval:.3f} s/batch")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("epoch", "layer"))
    ap.add_argument("model", choices=("TFN", "MTFN"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.what == "epoch":
        bench_epoch(args.model, args.epochs, args.threads, args.seed)
    else:
        bench_layer(args.model, args.repeats, args.threads)


if __name__ == "__main__":
    main()
