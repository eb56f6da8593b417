"""Seconds per training step of MulT, MISA, MMIM, AV-MC and AV-MC (Semi) on
the CH-SIMS v2 shapes.

Each model, in its reference configuration on CH-SIMS v2 (the class
defaults with the ``[simsv2]`` overrides of its spec, ``estimators/*.toml``,
as ``simsbench run`` builds it), is fitted for one epoch on a few batches of
the ``"simsv2"`` synthetic preset (padded lengths 50/925/232, dims
768/25/177, real lengths drawn as in the preset), and the training part of
the epoch is timed (validation excluded).  The figure is seconds per
training step -- one batch: for MMIM both stages on it, for AV-MC (Semi) a
batch of either pass -- the best of ``--repeat`` fits, and its projection to
a full v2 epoch (the preset's 2722 training clips; for AV-MC (Semi) also its
2000 unlabelled ones in pass 1).  The load average is printed beside each
figure: the machine may be shared, so compare figures taken at similar load.

    python benchmarks/bench_v2_speed.py                      # all, 1 and 2 threads
    python benchmarks/bench_v2_speed.py --models MulT --threads 1 --repeat 5

Measured on the shared 2-core development machine (``--batches 2 --repeat
1``, 1 thread, 1-minute load 2.8-3.2, s/step before -> after issue 15's
speed-ups): MulT 22.8 -> 8.5, MISA 0.20 -> 0.10, MMIM 1.27 -> 0.12, AV-MC
0.008 -> 0.008, AV-MC (Semi) 5.65 -> 0.51.  With 2 threads on the loaded
machine every model was slower than with 1 (torch's thread pool
oversubscribed); rerun on an idle machine.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

#: Model -> its estimator spec (estimators/<spec>.toml).
MODELS = {"MulT": "mult", "MISA": "misa", "MMIM": "mmim", "AVMC": "avmc",
          "AVMCSemi": "avmc_semi"}
#: Training clips of the v2 preset (labelled, unlabelled).
V2_TRAIN, V2_UNLABELLED = 2722, 2000


def _timed_class(cls):
    """``cls`` whose net records the wall time of its training epochs and
    counts its training steps (``train_step`` calls)."""
    base = cls._net_class

    class TimedNet(base):
        def train_step(self, batch, **fit_params):
            self.n_steps_ = getattr(self, "n_steps_", 0) + 1
            return super().train_step(batch, **fit_params)

        def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
            if not training:
                return super().run_single_epoch(iterator, training, prefix, step_fn,
                                                **fit_params)
            t0 = time.perf_counter()
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
            self.train_seconds_ = time.perf_counter() - t0

    return type(cls.__name__, (cls,), {"_net_class": TimedNet})


def _data(batches: int, batch_size: int, semi: bool):
    from simsbench.datasets import make_synthetic

    n = batches * batch_size
    return make_synthetic("simsv2", n_samples=(n, batch_size, 8),
                          n_unlabelled=n if semi else 0, random_state=0)


def time_model(name: str, threads: int, batches: int, repeat: int):
    """Best seconds per training step of ``name`` over ``repeat`` fits."""
    import torch

    from simsbench.datasets import LABELS
    from simsbench.specs import load_specs

    spec = load_specs().estimator(MODELS[name])
    params = spec.overrides("simsv2")
    params.update(max_epochs=1, random_state=0, n_threads=threads)
    est = _timed_class(spec.estimator_class())(**params)
    bs = int(est.batch_size)
    semi = name == "AVMCSemi"
    # AV-MC (Semi)'s pass 1 runs over labelled + unlabelled rows: half each
    ds = _data(max(1, batches // 2) if semi else batches, bs, semi)
    multi = name.startswith("AVMC")
    X = ds.X_semi() if semi else ds.X("train")
    y = (ds.y_semi(LABELS) if semi else ds.y("train", LABELS)) if multi else ds.y("train")
    yv = ds.y("valid", LABELS) if multi else ds.y("valid")
    best = math.inf
    torch.set_num_threads(threads)
    for _ in range(repeat):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, X_valid=ds.X("valid"), y_valid=yv)
        net = est.net_
        best = min(best, net.train_seconds_ / net.n_steps_)
    if semi:
        full_steps = math.ceil((V2_TRAIN + V2_UNLABELLED) / bs) + math.ceil(V2_TRAIN / bs)
    else:
        full_steps = math.ceil(V2_TRAIN / bs)
    return best, best * full_steps, net.n_steps_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batches", type=int, default=4,
                        help="training batches per timed epoch")
    parser.add_argument("--repeat", type=int, default=3, help="fits per figure (best taken)")
    args = parser.parse_args(argv)
    print(f"{'model':10s} {'threads':>7s} {'s/step':>8s} {'s/epoch (proj.)':>16s} "
          f"{'steps':>5s}  load (1 min) before/after")
    for name in args.models.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            load0 = os.getloadavg()[0]
            s, epoch, steps = time_model(name, threads, args.batches, args.repeat)
            load1 = os.getloadavg()[0]
            print(f"{name:10s} {threads:7d} {s:8.3f} {epoch:16.1f} {steps:5d}  "
                  f"{load0:.2f}/{load1:.2f}", flush=True)


if __name__ == "__main__":
    main()
