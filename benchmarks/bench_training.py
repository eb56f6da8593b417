"""Seconds per epoch, peak memory and arithmetic floor of every deep model.

Every deep estimator is trained in a fresh process on each dataset's
synthetic shapes (``--shape sims``: the CH-SIMS preset, 400 audio frames;
``--shape v2``: the CH-SIMS v2 preset, 925 audio frames and, for AV-MC
(Semi), the 2000 unlabelled clips) in the reference configuration: the
class defaults with the estimator spec's overrides for that dataset
(``estimators/*.toml``), exactly as ``simsbench run`` builds it.  For each
it prints

* ``s/epoch``: the mean of skorch's per-epoch ``dur`` (a training pass and
  the validation pass) over the timed epochs;
* ``peak GB``/``anon GB``: the process's peak resident memory (VmHWM, the
  touched pages of the memory-mapped data included) and its peak anonymous
  memory (sampled every 5 ms: its own memory, without the clean file-backed
  data pages);
* ``GFLOP/ep``: the floating-point work of one whole epoch, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` over the first epoch of
  the same fit (every training step's forward and backward on the real,
  variable-length batches, and the validation forward; matrix products,
  convolutions and attention, with unpacked LSTMs' fused oneDNN kernels
  counted by :func:`lstm_flops`; element-wise work is not counted).  That
  epoch is not timed; ``--epochs`` more are;
* ``floor s``: that work divided by this CPU's matrix-product rate, measured
  in the same process with the same threads right after the epochs (so under
  the same load; :func:`matmul_rate`), a lower bound on the epoch
  time no implementation of the same arithmetic can beat, and ``x floor``:
  ``s/epoch`` over it.

Beside each row: the reference implementation's seconds per epoch, timed in
the same run on the same data when ``import MMSA`` works (``pip install
mmsa``; see :data:`MMSA_MODELS`; its first ``--epochs`` epochs, the first
included, so its figure is if anything a little high), otherwise the figures measured earlier on
this machine type, labelled ``quoted, not measured here``; and the 1-minute
load average when the row was measured (on a shared machine the timings are
inflated by the load).

    python benchmarks/bench_training.py                        # every model, both shapes
    python benchmarks/bench_training.py --models MulT --shape v2 --epochs 1
    python benchmarks/bench_training.py --models LFDNN,TFN --shape sims --json out.json
    python benchmarks/bench_training.py --models LFDNN --full-fit   # + a whole fit
    python benchmarks/bench_training.py --no-flops --no-reference  # times only

A model's row takes ``1 + --epochs`` epochs (plus, with the reference
installed, the reference's epochs); full v2 epochs of MulT, MISA and AV-MC
take minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The reference implementation's seconds per epoch, measured earlier on this
# machine type (SIMS shapes); printed only when it cannot be timed here.
QUOTED_REFERENCE_S_PER_EPOCH = {
    ("LFDNN", "sims"): 1.0,
    ("TFN", "sims"): 37.0,
    ("GraphMFN", "sims"): 9.5,
    ("MulT", "sims"): 174.0,
    ("MTFN", "sims"): 77.0,
}

SHAPES = {"sims": "sims", "v2": "simsv2"}
"""``--shape`` names and the synthetic presets they stand for."""

NOT_APPLICABLE = {
    ("AVMCSemi", "sims"): "the CH-SIMS preset has no unlabelled clips",
    ("BertMAG", "sims"): "no features mode (the gate sits inside BERT: needs a checkpoint)",
    ("BertMAG", "simsv2"): "no features mode (the gate sits inside BERT: needs a checkpoint)",
}

MMSA_MODELS = {
    "LFDNN": "lf_dnn", "EFLSTM": "ef_lstm", "TFN": "tfn", "LMF": "lmf", "MFN": "mfn",
    "GraphMFN": "graph_mfn", "MulT": "mult", "MISA": "misa", "MMIM": "mmim",
    "MLFDNN": "mlf_dnn", "MTFN": "mtfn", "MLMF": "mlmf", "SelfMM": "self_mm",
}
"""simsbench class -> MMSA model name, for the side-by-side timing."""

MMSA_PATH_ENV = "SIMSBENCH_MMSA_PATH"
"""An extra ``sys.path`` entry where MMSA is installed (``pip install --target``)."""


# ---------------------------------------------------------------------------
# arithmetic

def _lstm_layer_flops(args, backward: bool) -> int:
    """FLOPs of one fused oneDNN LSTM layer (``aten.mkldnn_rnn_layer``).

    ``args`` are the op's arguments as shapes (FlopCounterMode passes a
    tensor's size): input ``(T, B, I)`` (or batch-first), the input weights
    ``(4H, I)`` and the recurrent weights ``(4H, H)``.  Forward:
    ``2 * T * B * 4H * (I + H)`` (the input and recurrent products);
    backward: twice that (input and weight gradients).
    """
    x, w_ih, w_hh = (tuple(getattr(a, "shape", a)) for a in args[:3])
    tokens = int(x[0]) * int(x[1])
    fwd = 2 * tokens * int(w_ih[0]) * (int(w_ih[1]) + int(w_hh[1]))
    return 2 * fwd if backward else fwd


def lstm_flops(*args, out_val=None, **kwargs) -> int:
    """FLOP formula of ``aten.mkldnn_rnn_layer`` for FlopCounterMode."""
    return _lstm_layer_flops(args, backward=False)


def lstm_backward_flops(*args, out_val=None, **kwargs) -> int:
    """FLOP formula of ``aten.mkldnn_rnn_layer_backward`` for FlopCounterMode."""
    return _lstm_layer_flops(args, backward=True)


def flop_counter():
    """A :class:`~torch.utils.flop_counter.FlopCounterMode` that also counts
    CPU LSTMs (torch runs an unpacked ``nn.LSTM`` as one oneDNN kernel,
    which the stock counter does not know; packed ones decompose into
    counted matrix products)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    custom = {}
    for name, fn in (("mkldnn_rnn_layer", lstm_flops),
                     ("mkldnn_rnn_layer_backward", lstm_backward_flops)):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            custom[op] = fn
    return FlopCounterMode(display=False, custom_mapping=custom)


def matmul_rate(threads: int, sizes=(256, 512, 1024), seconds: float = 0.5,
                precision: str = "float32") -> dict:
    """This CPU's matrix-product rate, in FLOP/s, in ``precision``'s dtype.

    Times ``n x n @ n x n`` products for each ``n`` in ``sizes`` with
    ``threads`` torch threads for about ``seconds`` each and returns the
    best rate (the floor is a lower bound, so the fastest product counts)
    and each size's.  ``precision="bfloat16"`` times bfloat16 products, the
    floor of a model trained under bfloat16 autocast.
    """
    import torch

    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        per_size = {}
        for n in sizes:
            a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
            for _ in range(2):
                a @ b
            count, t0 = 0, time.perf_counter()
            while True:
                a @ b
                count += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= seconds:
                    break
            per_size[int(n)] = count * 2 * n**3 / elapsed
    finally:
        torch.set_num_threads(old)
    return {"flops_per_s": max(per_size.values()), "per_size": per_size, "threads": threads,
            "dtype": str(dtype).removeprefix("torch.")}


def floor_row(s_per_epoch: float, flops_per_epoch: float, flops_per_s: float) -> dict:
    """The arithmetic floor of an epoch and how far the measured time is above it."""
    floor = flops_per_epoch / flops_per_s
    return {"floor_s": floor, "x_floor": s_per_epoch / floor if floor > 0 else float("inf")}


# ---------------------------------------------------------------------------
# the timed worker (a fresh process per model and shape)

def _peak_mb() -> float:
    # VmHWM resets at exec (ru_maxrss would include the parent's memory)
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def count_first_epoch(box: dict):
    """Count the FLOPs of the first epoch of the nets fitted in this block.

    Hooks skorch's ``NeuralNet.on_epoch_begin``/``on_epoch_end`` (every deep
    estimator trains through skorch), so the count spans exactly one epoch:
    its training steps and its validation pass.  ``box["flops"]`` gets the
    total; the hooks are restored on leaving.
    """
    from skorch import NeuralNet

    begin, end = NeuralNet.on_epoch_begin, NeuralNet.on_epoch_end

    def on_epoch_begin(self, net, *args, **kwargs):
        out = begin(self, net, *args, **kwargs)
        if len(net.history) == 1 and "mode" not in box:
            box["mode"] = flop_counter()
            box["mode"].__enter__()
        return out

    def on_epoch_end(self, net, *args, **kwargs):
        mode = box.get("mode")
        if mode is not None and "flops" not in box:
            mode.__exit__(None, None, None)
            box["flops"] = int(mode.get_total_flops())
        return end(self, net, *args, **kwargs)

    NeuralNet.on_epoch_begin = on_epoch_begin
    NeuralNet.on_epoch_end = on_epoch_end
    try:
        yield box
    finally:
        NeuralNet.on_epoch_begin, NeuralNet.on_epoch_end = begin, end
        if box.get("mode") is not None and "flops" not in box:
            box["mode"].__exit__(None, None, None)


def _load(data: str, unl: str | None, cache: str):
    from simsbench.datasets import load_mmsa

    return load_mmsa(data, unlabelled=unl, cache_dir=cache)


def spec_for(model: str):
    """The estimator spec a table builds ``model`` (a class name) from."""
    from simsbench.specs import load_specs
    from simsbench.tables import TABLES

    specs = load_specs()
    rows = [r.estimator for t in TABLES.values() for r in t.rows if r.estimator]
    found = [s for s in specs.estimators.values() if s.class_name == model]
    found.sort(key=lambda s: (s.name not in rows, s.name))
    if not found:
        raise SystemExit(f"bench_training: no estimator spec of class {model!r}")
    return found[0]


def worker(model: str, kind: str, data: str, unl: str | None, cache: str, epochs: int,
           threads: int, count_flops: bool, full: bool, precision: str = "float32") -> dict:
    """Train one model on one shape and return its measurements."""
    import threading
    import warnings

    import numpy as np
    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(threads)
    ds = _load(data, unl, cache)
    semi = model == "AVMCSemi"
    labels = ("M", "T", "A", "V")
    X = ds.X_semi() if semi else ds.X("train")
    y = ds.y_semi(labels) if semi else ds.y("train", labels)
    Xv, yv = ds.X("valid"), ds.y("valid", labels)
    # materialise the arrays (the memmap pages count once loaded)
    X = {k: np.asarray(v) for k, v in X.items()}
    Xv = {k: np.asarray(v) for k, v in Xv.items()}
    data_mb = _peak_mb()
    anon = {"peak": 0.0, "stop": False}

    def sample():
        while not anon["stop"]:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        anon["peak"] = max(anon["peak"], int(line.split()[1]) / 1024)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    spec = spec_for(model)
    est = spec.build(kind)
    params = {"random_state": 0, "n_threads": threads}
    if precision != "float32":
        params["precision"] = precision
    n_counted = 1 if count_flops and not full else 0
    if not full:
        params.update(max_epochs=epochs + n_counted, early_stop=epochs + n_counted + 1)
    est.set_params(**params)
    box: dict = {}
    t0 = time.perf_counter()
    with count_first_epoch(box) if n_counted else contextlib.nullcontext():
        est.fit(X, y, X_valid=Xv, y_valid=yv)
    est.predict(ds.X("test"))
    wall = time.perf_counter() - t0
    durs = [float(d) for d in est.net_.history[:, "dur"]]
    anon["stop"] = True
    sampler.join()
    # the matrix-product rate now, in this process with its threads: the
    # floor's rate under the same load as the epochs
    rate = matmul_rate(threads, precision=precision) if n_counted else None
    timed = durs[n_counted:]
    return {
        "model": model, "spec": spec.name, "shape": kind, "threads": threads,
        "precision": precision,
        "epochs": len(durs), "timed_epochs": len(timed), "s_per_epoch": timed,
        "mean_s_per_epoch": sum(timed) / len(timed) if timed else None,
        "flops_per_epoch": box.get("flops"),
        "matmul": rate,
        # what a run spends outside its epochs: building, the test predictions
        "overhead_s": wall - sum(durs),
        "peak_mb": _peak_mb(), "anon_peak_mb": anon["peak"], "data_mb": data_mb,
        "n_params": int(getattr(est, "n_params_", 0)),
        "fit_predict_s": wall, "best_epoch": int(getattr(est, "best_epoch_", 0)),
        "full_fit": full, "load": os.getloadavg()[0],
    }


def mmsa_worker(model: str, kind: str, data: str, epochs: int, threads: int) -> dict:
    """Time ``epochs`` epochs of the reference implementation (MMSA) on the same pickle.

    MMSA (``MMSA src/MMSA/run.py``) builds its configuration from its JSON
    files, its data loader and trainer; its trainers loop until early
    stopping and validate once per epoch (``do_test(..., mode="VAL")``),
    which marks the epochs here and stops the loop after ``epochs``.  MMSA
    2.2.1 (PyPI) has no CH-SIMS v2 configuration: on the v2 shapes it runs
    its CH-SIMS one (``config_regression.json``, ``sims``) on the v2 data
    (its loader takes the dimensions and lengths from the data).  Its models
    that need a BERT checkpoint (``use_bert``) cannot run offline; the row
    says so.
    """
    import torch

    torch.set_num_threads(threads)
    torch.cuda.set_device = lambda *a, **k: None  # MMSA calls it unconditionally
    sched = torch.optim.lr_scheduler

    class ReduceLROnPlateau(sched.ReduceLROnPlateau):
        # MMSA passes ``verbose``, which torch 2.13 no longer takes (it only printed)
        def __init__(self, *args, verbose=None, **kwargs):
            super().__init__(*args, **kwargs)

    sched.ReduceLROnPlateau = ReduceLROnPlateau
    from importlib.metadata import PackageNotFoundError, version

    from MMSA.config import get_config_regression
    from MMSA.data_loader import MMDataLoader
    from MMSA.models import AMIO
    from MMSA.trains import ATIO

    name = MMSA_MODELS[model]
    dataset = "sims"
    args = get_config_regression(name, dataset)
    if kind == "simsv2":
        try:  # a later MMSA has a CH-SIMS v2 configuration
            args, dataset = get_config_regression(name, kind), kind
        except KeyError:
            pass
    args.update(featurePath=data, device=torch.device("cpu"), cur_seed=1, seed=1111,
                model_save_path=Path(tempfile.mkdtemp()) / "m.pth", train_mode="regression",
                custom_feature=None, feature_T=None, feature_A=None, feature_V=None)
    loaders = MMDataLoader(args, 0)
    net = AMIO(args).to(args.device)
    trainer = ATIO().getTrain(args)
    marks = [time.perf_counter()]

    class Done(Exception):
        pass

    do_test = type(trainer).do_test

    def counted(self, model_, loader, mode="VAL", **kw):
        out = do_test(self, model_, loader, mode=mode, **kw)
        if mode == "VAL":
            marks.append(time.perf_counter())
            if len(marks) > epochs:
                raise Done
        return out

    type(trainer).do_test = counted
    try:
        trainer.do_train(net, loaders)
    except Done:
        pass
    durs = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    try:
        mmsa_version = version("mmsa")
    except PackageNotFoundError:
        mmsa_version = "unknown"
    return {"model": model, "shape": kind, "mmsa": mmsa_version,
            "mmsa_config": f"{name}/{dataset}",
            "s_per_epoch": durs,
            "mean_s_per_epoch": sum(durs) / len(durs) if durs else None,
            "load": os.getloadavg()[0]}


def _spawn(argv: list[str], timeout: float) -> dict:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH"),
                                                       os.environ.get(MMSA_PATH_ENV)]))}
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(argv)],
                             capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    err = (out.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": err}


def mmsa_available() -> str | None:
    """Why the reference implementation cannot be timed here (None: it can)."""
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"),
                                                       os.environ.get(MMSA_PATH_ENV)]))}
    out = subprocess.run([sys.executable, "-c", "import MMSA"], capture_output=True,
                         text=True, env=env)
    if out.returncode:
        return (out.stderr.strip().splitlines() or ["import MMSA failed"])[-1]
    return None


def _write_data(work: Path, kind: str) -> tuple[Path, Path | None]:
    from simsbench.datasets import load_mmsa, make_synthetic_mmsa, write_mmsa

    path = work / f"synthetic_{kind}.pkl"
    unl = work / f"synthetic_{kind}_unlabelled.pkl"
    if not path.exists():
        sup, unlabelled = make_synthetic_mmsa(kind, random_state=0)
        write_mmsa(sup, path)
        if unlabelled is not None:
            write_mmsa(unlabelled, unl)
        del sup, unlabelled
    unl_path = unl if unl.exists() else None
    # build the memory-mapped cache once, outside the timed workers
    load_mmsa(path, unlabelled=unl_path, cache_dir=work / "cache")
    return path, unl_path


# ---------------------------------------------------------------------------
# the report

def row_text(res: dict, ref: dict | None, quoted: float | None) -> str:
    """One printed row of the table."""
    name = f"{res['model']:<10} {res['shape']:<7}"
    if "error" in res:
        return f"{name} ERROR: {res['error']}"
    spe = res.get("mean_s_per_epoch")
    gflop = res["flops_per_epoch"] / 1e9 if res.get("flops_per_epoch") else None
    cells = [
        f"{res['n_params']:>11,}",
        f"{spe:>8.2f}" if spe is not None else f"{'-':>8}",
        f"{res['peak_mb'] / 1024:>7.2f}", f"{res['anon_peak_mb'] / 1024:>7.2f}",
        f"{gflop:>9.1f}" if gflop is not None else f"{'-':>9}",
        f"{res['matmul']['flops_per_s'] / 1e9:>7.0f}" if res.get("matmul") else f"{'-':>7}",
        f"{res['floor_s']:>8.2f}" if "floor_s" in res else f"{'-':>8}",
        f"{res['x_floor']:>7.1f}x" if "x_floor" in res else f"{'-':>8}",
    ]
    if ref and ref.get("mean_s_per_epoch"):
        r = ref["mean_s_per_epoch"]
        cells.append(f"{r:>8.2f} {r / spe:>5.1f}x (MMSA, measured)" if spe else f"{r:>8.2f}")
    elif ref and "error" in ref:
        cells.append(f"MMSA error: {ref['error'][:60]}")
    elif quoted is not None:
        cells.append(f"{quoted:>8.1f} {quoted / spe:>5.1f}x (quoted, not measured here)"
                     if spe else f"{quoted:>8.1f} (quoted, not measured here)")
    else:
        cells.append(f"{'-':>8}")
    return f"{name} " + " ".join(cells) + f"  load {res['load']:.1f}"


HEADER = (f"{'model':<10} {'shape':<7} {'params':>11} {'s/epoch':>8} {'peak GB':>7} "
          f"{'anon GB':>7} {'GFLOP/ep':>9} {'GFLOP/s':>7} {'floor s':>8} {'x floor':>8} "
          f"{'ref s/ep':>8} {'ratio':>6}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None,
                        help="comma-separated class names (default: every deep model)")
    parser.add_argument("--shape", default="both", choices=("sims", "v2", "both"),
                        help="the synthetic preset's shapes (default: both)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per model")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as each run of `run --jobs 2`)")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"),
                        help="the estimators' precision (bfloat16: autocast, the opt-in; "
                             "the floor then uses the bfloat16 product rate)")
    parser.add_argument("--no-flops", action="store_true",
                        help="do not count FLOPs (saves the counted first epoch)")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not time the reference implementation even if installed")
    parser.add_argument("--full-fit", action="store_true",
                        help="whole fits with early stopping instead (epoch counts, s/run)")
    parser.add_argument("--workdir", default=None, help="where the data pickles go")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per model")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        kind, *rest = json.loads(args.worker)
        res = (mmsa_worker(*rest) if kind == "mmsa" else worker(*rest))
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")

    from simsbench.utils.discovery import all_estimators

    deep = [n for n, c in all_estimators() if hasattr(c, "_build_module")]
    names = [n.strip() for n in args.models.split(",")] if args.models else deep
    unknown = [n for n in names if n not in deep]
    if unknown:
        parser.error(f"--models: {unknown[0]!r} is no deep model; choose from {', '.join(deep)}")
    kinds = list(SHAPES.values()) if args.shape == "both" else [SHAPES[args.shape]]
    work = Path(args.workdir or Path(tempfile.gettempdir()) / "simsbench-bench")
    work.mkdir(parents=True, exist_ok=True)
    data = {k: _write_data(work, k) for k in kinds}
    why_no_mmsa = "--no-reference" if args.no_reference else mmsa_available()
    print(f"# {args.threads} torch thread(s); precision {args.precision}; "
          f"{args.epochs} timed epoch(s) per model"
          f"{'' if args.no_flops else ' after one counted epoch'}; python "
          f"{sys.version.split()[0]}; data in {work}; load {os.getloadavg()[0]:.1f}")
    print(f"# reference implementation: "
          f"{'MMSA, timed here' if why_no_mmsa is None else 'not timed (' + why_no_mmsa + ')'}")
    print(HEADER)
    print("-" * len(HEADER))
    results: list[dict] = []
    for kind in kinds:
        path, unl = data[kind]
        for name in names:
            if (name, kind) in NOT_APPLICABLE:
                print(f"{name:<10} {kind:<7} not applicable: {NOT_APPLICABLE[(name, kind)]}")
                continue
            res = _spawn(["bench", name, kind, str(path), str(unl) if unl else None,
                          str(work / "cache"), args.epochs, args.threads,
                          not (args.no_flops or args.full_fit), args.full_fit,
                          args.precision], args.timeout)
            res.setdefault("model", name)
            res.setdefault("shape", kind)
            res.setdefault("load", os.getloadavg()[0])
            rate = res.get("matmul")
            if rate and res.get("flops_per_epoch") and res.get("mean_s_per_epoch"):
                res.update(floor_row(res["mean_s_per_epoch"], res["flops_per_epoch"],
                                     rate["flops_per_s"]))
            ref = None
            if why_no_mmsa is None and name in MMSA_MODELS and "error" not in res:
                ref = _spawn(["mmsa", name, kind, str(path), args.epochs, args.threads],
                             args.timeout)
                res["reference"] = ref
            quoted = QUOTED_REFERENCE_S_PER_EPOCH.get((name, kind))
            if ref is None and quoted is not None:
                res["reference_quoted_s_per_epoch"] = quoted
            results.append(res)
            print(row_text(res, ref, quoted), flush=True)
            if args.json:  # after every row: an interrupted run keeps its rows
                Path(args.json).write_text(json.dumps(
                    {"threads": args.threads, "epochs": args.epochs,
                     "reference": why_no_mmsa or "MMSA", "results": results}, indent=1))
            if args.full_fit and "error" not in res:
                print(f"{'':<18} whole fit + predict: {res['epochs']} epochs (best "
                      f"{res['best_epoch']}), {res['fit_predict_s']:.1f} s")
    print("# s/epoch: a training and a validation pass; peak GB: peak RSS (VmHWM, touched "
          "pages of the memory-mapped data included); anon GB: peak anonymous memory; "
          "GFLOP/ep: counted over one whole epoch; GFLOP/s: the best rate of n x n @ n x n "
          "products (n = 256, 512, 1024) in the same process after the epochs; floor s: "
          "GFLOP/ep at that rate; x floor: s/epoch over the floor; ratio: reference s/epoch "
          "over ours; load: 1-minute load average at the end of the row "
          "(timings are inflated by it)")

    return 0


if __name__ == "__main__":
    sys.exit(main())
