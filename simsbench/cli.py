"""The ``simsbench`` command line.

::

    simsbench list [estimators|protocols|tasks|tables]
    simsbench data describe [DATA]
    simsbench run tables [--data DATA ...] [--quick] [--jobs N] [--threads N] [--backend NAME]
                         [--force]
    simsbench run TABLE  [--data DATA ...] [--variant reference|corrected] [...]
    simsbench run corrections [--data DATA ...] [--no-ablations] [...]
    simsbench table TABLE [--data DATA] [--variant ...] [--format markdown|latex|csv] [--ci]
    simsbench figure labels|tsne [--data DATA] [...]
    simsbench figure curves|dist|cd TABLE [--data DATA] [--metric M] [...]
    simsbench report [--data DATA ...] [--out FILE] [--ci]
    simsbench tune ESTIMATOR [--data DATA] [--trials 50] [--seeds 1111,1112,1113]
                   [--metric mae] [--jobs N] [--backend NAME] [--quick] [--out FILE.toml]

The paper tables run every model in its **reference configuration** (the
reference implementation's behaviour, defects included); ``--variant
corrected`` runs and renders them with every simsbench correction on, and
``run corrections`` measures each correction against the reference (paired
over seeds).

``DATA`` is ``synthetic:sims`` (the default for the CH-SIMS tables),
``synthetic:simsv2`` (the default for the v2 tables) or the path of an
MMSA-format pickle (``PATH+UNLABELLED_PATH`` for CH-SIMS v2 with its
unlabelled part).  Records go to ``results/runs/``, logs to
``results/logs/``, rendered tables to ``results/tables/<data>/``, figures to
``results/figures/<data>/``, the report to ``results/report.html``;
``--results`` moves all of it.  Only ``run`` imports torch (inside the runs); the other
commands never do.  Errors from bad input are one line (exit status 2), and
no finished run is ever lost; ``run`` exits with status 1 when a run failed
(the table's Note column and ``results/logs/`` say why).

The parser imports none of the library (no pandas, scikit-learn or torch);
each command's handler (:mod:`simsbench._commands`) calls the library --
:func:`simsbench.suite.run_tables` for ``run``,
:func:`simsbench.suite.table_from_cache` for ``table`` -- and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from simsbench._defaults import PRECISIONS, QUICK_MAX_EPOCHS, QUICK_MAX_EVAL, QUICK_MAX_TRAIN
from simsbench._version import __version__
from simsbench.estimators._fidelity import VARIANTS
from simsbench.table_layouts import TABLES

__all__ = ["main"]

# The parser names the tables and variants from the two modules that define
# them; both import neither pandas nor scikit-learn (tests/test_suite.py).
TABLE_NAMES = tuple(TABLES)

def _add_common(p: argparse.ArgumentParser, specs: bool = True) -> None:
    p.add_argument("--results", metavar="DIR",
                   default=os.environ.get("SIMSBENCH_RESULTS", "results"),
                   help="results directory (default: ./results or $SIMSBENCH_RESULTS)")
    if specs:
        p.add_argument("--specs", metavar="DIR", action="append", default=[],
                       help="extra spec folder holding estimators/*.toml and tasks/*.toml "
                            "(repeatable; a spec there replaces a built-in one of the same name)")


def _add_parallel(p: argparse.ArgumentParser) -> None:
    """--jobs, --threads, --device, --precision, --backend and --scheduler
    (run and tune)."""
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="runs executed at once (results do not depend on it)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch and BLAS threads of each run (default 1; results depend "
                        "on it, so it is part of each run's key)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="torch device of the deep estimators' runs: cpu (default), cuda, "
                        "cuda:1... (part of each run's key)")
    p.add_argument("--precision", default=PRECISIONS[0], choices=PRECISIONS,
                   help="arithmetic of the deep estimators' forward passes: float32 "
                        "(default, the reference's) or bfloat16 autocast (faster on "
                        "CPUs with bfloat16 instructions and on GPUs; changes the "
                        "numbers, and the tables say so)")
    p.add_argument("--backend", default="loky", metavar="NAME",
                   help="loky (default), threading or multiprocessing (joblib), or dask: "
                        "a Dask cluster (--scheduler), else a LocalCluster of --jobs "
                        "worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="Dask scheduler address for --backend dask (default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local cluster)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simsbench",
        description="Benchmark suite for multimodal sentiment analysis on CH-SIMS and "
                    "CH-SIMS v2.0: run the papers' tables on synthetic data or your "
                    "MMSA-format feature files.",
        epilog="Numbers computed on the built-in synthetic data are not CH-SIMS results.",
    )
    parser.add_argument("--version", action="version", version=f"simsbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list estimators, protocols, tasks or tables")
    p.add_argument("what", nargs="?", default="all",
                   choices=("all", "estimators", "protocols", "tasks", "tables"))
    _add_common(p)

    p = sub.add_parser("data", help="dataset utilities")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    d = dsub.add_parser("describe", help="splits × classes (CH-SIMS Table 3) and the "
                                          "Figure 2 label statistics")
    d.add_argument("data", nargs="?", default="synthetic:sims", metavar="DATA")
    d.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown")
    _add_common(d, specs=False)

    p = sub.add_parser("run", help="train and evaluate what a table needs, then print it")
    p.add_argument("target", metavar="TABLE", help="'tables' (all, with the corrections "
                   "tables), 'corrections' or one of: " + ", ".join(TABLE_NAMES))
    p.add_argument("--variant", choices=VARIANTS, default="reference",
                   help="configuration of the paper tables' models: the reference "
                        "implementation's (default) or with every correction on")
    p.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=None,
                   help="corrections table: one row per correction for the cheap models "
                        "(default: on for 'run corrections', off within 'run tables')")
    p.add_argument("--data", action="append", default=[], metavar="DATA",
                   help="data spec (repeatable); default: synthetic:sims for the CH-SIMS "
                        "tables and synthetic:simsv2 for the v2 tables")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: first seed only, at most {QUICK_MAX_EPOCHS} training "
                        f"epoch(s), at most {QUICK_MAX_TRAIN} training and "
                        f"{QUICK_MAX_EVAL} validation and test clips each")
    _add_parallel(p)
    p.add_argument("--estimators", metavar="NAMES", default=None,
                   help="comma-separated estimator spec names: run only these rows "
                        "(the others render from cached records or stay empty)")
    p.add_argument("--seeds", metavar="SEEDS", default=None,
                   help="comma-separated seeds in place of each task's own")
    p.add_argument("--force", action="store_true", help="recompute finished runs")
    p.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown",
                   help="format printed to stdout (all three are written to files)")
    p.add_argument("--no-paper", dest="compare", action="store_false",
                   help="omit the published numbers")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    _add_ci(p)
    _add_common(p)

    p = sub.add_parser("table", help="render a table from cached records (no training)")
    p.add_argument("table", metavar="TABLE", help=", ".join(TABLE_NAMES))
    p.add_argument("--data", default=None, metavar="DATA",
                   help="which data's records (default: the table's synthetic data)")
    p.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown")
    p.add_argument("--no-paper", dest="compare", action="store_false",
                   help="omit the published numbers")
    p.add_argument("--mode", default=None,
                   help="which runs: full, quick, ... (default: the newest)")
    p.add_argument("--variant", choices=VARIANTS, default="reference",
                   help="which configuration's runs (default: reference)")
    _add_ci(p)
    _add_common(p, specs=False)

    p = sub.add_parser(
        "figure", help="draw a figure (PNG and SVG) from cached records or the data",
        description="labels: CH-SIMS Fig. 2 (label distributions, D_ij) from the data; "
                    "tsne: CH-SIMS Fig. 4 / v2 Fig. 7 (fits a multi-task model, quick); "
                    "curves, dist, cd TABLE: learning curves, per-seed distributions and "
                    "the critical-difference diagram of a table's cached runs.")
    p.add_argument("kind", choices=("labels", "tsne", "curves", "dist", "cd"),
                   metavar="FIGURE", help="labels, tsne, curves, dist or cd")
    p.add_argument("table", nargs="?", default=None, metavar="TABLE",
                   help="the table (curves, dist, cd): " + ", ".join(TABLE_NAMES))
    p.add_argument("--data", default=None, metavar="DATA",
                   help="data spec (default: the table's synthetic data, or synthetic:sims)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: RESULTS/figures/<data>)")
    p.add_argument("--formats", default="png,svg", metavar="LIST",
                   help="comma-separated: png, svg (default: both)")
    p.add_argument("--mode", default=None,
                   help="which runs: full, quick, ... (default: the newest)")
    p.add_argument("--metric", default=None,
                   help="cd: the metric to rank on (default: the table's first); dist: "
                        "only this metric")
    p.add_argument("--estimator", default="mlf_dnn", metavar="NAME",
                   help="tsne: the multi-task estimator spec to fit (default: mlf_dnn)")
    p.add_argument("--seed", type=int, default=1, help="tsne: random_state (default: 1)")
    p.add_argument("--quick", action="store_true",
                   help=f"tsne: at most {QUICK_MAX_EPOCHS} epoch(s) and {QUICK_MAX_TRAIN} "
                        f"training clips")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but the written paths")
    _add_common(p)

    p = sub.add_parser("report", help="one self-contained HTML page: every table with its "
                                      "tests, the figures, provenance and versions")
    p.add_argument("--data", action="append", default=[], metavar="DATA",
                   help="data spec to include (repeatable; default: every data set with "
                        "records)")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="output file (default: RESULTS/report.html)")
    p.add_argument("--mode", default=None,
                   help="which runs: full, quick, ... (default: the newest)")
    p.add_argument("--no-paper", dest="compare", action="store_false",
                   help="omit the published numbers")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but the written path")
    _add_ci(p)
    _add_common(p, specs=False)

    p = sub.add_parser(
        "tune", help="random search over an estimator spec's [search] ranges, selected on "
                     "the validation split; writes the winner as an estimator spec")
    p.add_argument("estimator", metavar="ESTIMATOR", help="estimator spec name (e.g. lf_dnn)")
    p.add_argument("--data", default=None, metavar="DATA",
                   help="data spec (default: the task's, synthetic:sims)")
    p.add_argument("--task", default=None, metavar="TASK",
                   help="task to tune on (default: the multimodal task of the data's kind, "
                        "sims_multimodal or simsv2_multimodal)")
    p.add_argument("--trials", type=int, default=None, metavar="N",
                   help="random configurations (default: 50, as the reference)")
    p.add_argument("--seeds", metavar="SEEDS", default=None,
                   help="comma-separated tuning seeds; a configuration scores the mean over "
                        "them (default: 1111,1112,1113, as the reference)")
    p.add_argument("--metric", default=None, metavar="NAME",
                   help="validation metric to select on (default: mae, the reference's "
                        "KeyEval loss)")
    p.add_argument("--random-state", type=int, default=0, metavar="N",
                   help="seed of the configuration sampler (default: 0)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: first seed only, the run command's --quick sizes")
    _add_parallel(p)
    p.add_argument("--force", action="store_true", help="recompute finished trials")
    p.add_argument("--name", default=None, metavar="NAME",
                   help="name of the tuned spec (default: ESTIMATOR_tuned)")
    p.add_argument("--out", default=None, metavar="FILE.toml",
                   help="where to write the tuned spec; its file name is the spec's name "
                        "(default: RESULTS/tuned/<data>/estimators/NAME.toml)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    _add_common(p)
    return parser


def _add_ci(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ci", action="store_true",
                   help="95%% confidence intervals (t over seeds) instead of ± std")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``simsbench`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from simsbench._commands import HANDLERS, CLIError, record_warnings_in_one_line
    from simsbench.datasets import MMSAFormatError, UnsafePickleError
    from simsbench.specs import SpecError

    try:
        with warnings.catch_warnings():
            warnings.showwarning = record_warnings_in_one_line(warnings.showwarning)
            return HANDLERS[args.command](args)
    except KeyboardInterrupt:
        print(f"\nsimsbench: interrupted; finished runs are kept under "
              f"{Path(getattr(args, 'results', 'results')) / 'runs'} and the next "
              "invocation resumes", file=sys.stderr)
        return 130
    except (CLIError, SpecError, MMSAFormatError, UnsafePickleError, ValueError,
            FileNotFoundError, RuntimeError, ImportError, OSError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"simsbench: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
