"""Does each model learn on the full synthetic default?  Test MAE and Corr
against the mean predictor.

Every estimator is fitted with its default (reference) hyperparameters on the
train split of ``make_synthetic()`` (CH-SIMS shapes; the CH-SIMS v2 models on
``make_synthetic("simsv2")``), selecting the epoch on the valid split, and
scored on test.  Acceptance (issues 3, 4, 6): test MAE below the mean
predictor's and Corr > 0.3.  ``--max-epochs`` caps training (stated in the
output) to keep the run short.

    python benchmarks/bench_learning.py --models LFDNN,TFN --max-epochs 10
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

V2_MODELS = {"AVMC", "AVMCSemi"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="comma-separated class names")
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per fit (default: torch's)")
    parser.add_argument("--v2", action="store_true",
                        help="run every model on the v2-shaped data")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from simsbench.datasets import LABELS, make_synthetic
    from simsbench.metrics import corr, mae
    from simsbench.utils.discovery import get_estimator_class
    from simsbench.utils.tags import get_simsbench_tags

    data = {}
    print(f"# seed {args.seed}; max_epochs {args.max_epochs or 'default (100)'}; "
          f"threads {args.threads or 'torch default'}")
    print(f"{'model':<10} {'data':<7} {'epochs':>6} {'MAE':>7} {'mean MAE':>9} "
          f"{'Corr':>6}  verdict  ({'s':>5})")
    for name in args.models.split(","):
        kind = "simsv2" if (args.v2 or name in V2_MODELS) else "sims"
        if kind not in data:
            data[kind] = make_synthetic(kind)
        ds = data[kind]
        cls = get_estimator_class(name)
        params = {"random_state": args.seed, "n_threads": args.threads}
        if args.max_epochs:
            params["max_epochs"] = args.max_epochs
        est = cls(**params)
        semi = get_simsbench_tags(est).semi_supervised
        X = ds.X_semi() if semi else ds.X("train")
        y = ds.y_semi(LABELS) if semi else ds.y("train", LABELS)
        t = time.perf_counter()
        est.fit(X, y, X_valid=ds.X("valid"), y_valid=ds.y("valid", LABELS))
        pred = est.predict(ds.X("test"))
        secs = time.perf_counter() - t
        y_test = ds.y("test")
        m, base = mae(y_test, pred), mae(y_test, np.full_like(y_test, ds.y("train").mean()))
        c = corr(y_test, pred)
        ok = m < base and c > 0.3
        print(f"{name:<10} {kind:<7} {est.n_epochs_:>6} {m:>7.4f} {base:>9.4f} {c:>6.3f}  "
              f"{'beats' if ok else 'FAILS'}    ({secs:>5.0f})", flush=True)


if __name__ == "__main__":
    main()
