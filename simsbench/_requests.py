"""The runs of a grid: requests, their cache keys, seeds and stored records.

A :class:`RunRequest` is one cell of a grid (an estimator spec on a task
with one paper seed); :func:`requests_for` expands (estimator, task) pairs
over the seeds, and :func:`plan_runs` turns requests into
:class:`PlannedRun` objects carrying each run's cache key (see
:mod:`simsbench.runner` for what the key holds).  Imports estimator classes
(to read their parameters), never data and never torch.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simsbench._defaults import PRECISIONS, QUICK_MAX_EPOCHS, QUICK_MAX_EVAL, QUICK_MAX_TRAIN
from simsbench._version import __version__
from simsbench.estimators._fidelity import apply_variant, variant_of
from simsbench.estimators._fidelity import corrections as corrections_of
from simsbench.results import FINISHED, RecordWarning, new_record, read_record, record_path
from simsbench.specs import EstimatorSpec, SpecError, TaskSpec, canonical, spec_hash

__all__ = [
    "EXCLUDED_PARAMS",
    "OMITTED_AT_DEFAULT",
    "PRECISIONS",
    "PlannedRun",
    "RunRequest",
    "RunnerError",
    "check_device",
    "correction_variants",
    "derive_seed",
    "finished_record",
    "plan_runs",
    "requests_for",
]

EXCLUDED_PARAMS = ("n_threads", "verbose")
"""Parameters that stay out of a run's ``params``: ``verbose`` does not change
the result, ``n_threads`` is set by the runner (the key has ``threads``)."""

OMITTED_AT_DEFAULT = {"precision": "float32"}
"""Parameters added after records were first made, left out of a run's
``params`` (and so of its key) at their default value: a record made before
such a parameter existed keeps its key."""


class RunnerError(RuntimeError):
    """A grid cannot start (bad backend, unreadable data...)."""


def derive_seed(paper_seed: int, task: str) -> int:
    """The ``random_state`` of a run: a hash of the paper seed and the task.

    Every estimator of one task sees the same seed (as in the papers, where
    all models share the five seeds); it does not depend on run order or on
    a global RNG (benchopt's ``get_seed`` idea).  ``task`` is the task's
    :attr:`~simsbench.specs.TaskSpec.seed_key` (its ``seed_group``, else its
    name), so the tasks a Δ row compares can share their seeds.
    """
    digest = hashlib.sha256(f"simsbench|{int(paper_seed)}|{task}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


@dataclass(frozen=True)
class RunRequest:
    """One cell of a grid: an estimator spec on a task with one paper seed."""

    estimator: EstimatorSpec
    task: TaskSpec
    data: str
    seed: int
    quick: bool = False
    tiny: bool = False
    variant: str = "reference"
    #: Torch device and arithmetic of a deep estimator's run (estimators
    #: without these parameters ignore them).
    device: str = "cpu"
    precision: str = "float32"

    @property
    def mode(self) -> str:
        parts = [p for p, on in (("tiny", self.tiny), ("quick", self.quick)) if on]
        return "+".join(parts) or "full"


@dataclass
class PlannedRun:
    """A request with its cache key (and why it cannot run, if it cannot)."""

    request: RunRequest
    key: str
    class_path: str | None
    params: dict | None
    unavailable: str = ""
    unavailable_status: str = "unavailable"
    run_seed: int = 0
    data_info: dict = field(default_factory=dict)
    variant: str = ""
    n_threads: int = 1
    corrections: list = field(default_factory=list)  # [[name, summary], ...]

    def base_record(self) -> dict[str, Any]:
        req = self.request
        return new_record(
            key=self.key,
            estimator=req.estimator.name,
            estimator_label=req.estimator.label,
            class_path=self.class_path or req.estimator.class_name,
            params=self.params or canonical(req.estimator.overrides(self.data_info.get("kind"))),
            task=req.task.name,
            task_description=req.task.description,
            protocol=req.task.protocol,
            task_key=req.task.canonical(),
            seed=req.seed,
            run_seed=self.run_seed,
            mode=req.mode,
            variant=self.variant or req.variant,
            requested_variant=req.variant,
            corrections=[list(c) for c in self.corrections],
            n_threads=self.n_threads,
            data=dict(self.data_info),
        )


def _extra_params(cls: type, req: RunRequest, run_seed: int, kind: str) -> dict[str, Any]:
    """Parameters the runner sets: tiny sizes, the quick epoch cap, the seed."""
    extra: dict[str, Any] = {}
    if req.tiny:
        extra.update(getattr(cls, "_tiny_params", {}))
    try:
        defaults = cls().get_params(deep=False)
    except Exception:  # noqa: BLE001 - reported when the run is built
        defaults = {}
    if req.quick and "max_epochs" in defaults:
        current = extra.get("max_epochs", req.estimator.overrides(kind).get(
            "max_epochs", defaults["max_epochs"]))
        extra["max_epochs"] = (QUICK_MAX_EPOCHS if current is None
                               else min(int(current), QUICK_MAX_EPOCHS))
    if "random_state" in defaults:
        extra["random_state"] = run_seed
    if req.device != "cpu" and "device" in defaults:
        extra["device"] = req.device
    if req.precision != "float32" and "precision" in defaults:
        extra["precision"] = req.precision
    return extra


def _build(req: RunRequest, kind: str, run_seed: int):
    """The run's estimator and its configuration (:func:`variant_of`).

    The estimator has the request's variant, the runner's seed and sizes,
    and the protocol's switches (an ablation's ``tasks``, ``mixup_*``) set,
    so that its cache key and record show what is trained."""
    cls = req.estimator.estimator_class()
    est = req.estimator.build(kind)
    if req.variant != "reference":
        # The spec's overrides are the reference configuration's; the variant
        # switches corrections on over them.
        apply_variant(est, req.variant)
    # What the spec and the variant make, before the runner's seed and the
    # quick/tiny sizes (a quick run of the reference model is still one).
    variant = variant_of(est)
    extra = _extra_params(cls, req, run_seed, kind)
    if extra:
        est.set_params(**extra)
    try:
        req.task.make_protocol().configure(est)
    except Exception:  # noqa: BLE001 - the protocol's skip() says why at run time
        pass
    return est, variant


def plan_runs(requests: Sequence[RunRequest], data_info: dict,
              threads: int = 1) -> list[PlannedRun]:
    """Compute each request's cache key (imports estimator classes, not data).

    ``threads`` is the number of threads every run computes with; it is part
    of the key (results depend on it).
    """
    out = []
    for req in requests:
        run_seed = derive_seed(req.seed, req.task.seed_key)
        task_key = req.task.canonical()
        base = {
            # the spec's name too: two specs of one class and parameters are
            # two table rows, each with its own record
            "estimator": req.estimator.name,
            "task": task_key,
            "seed": req.seed,
            "run_seed": run_seed,
            "threads": int(threads),
            "data": data_info["fingerprint"],
            "simsbench": __version__,
        }
        if req.variant != "reference":
            # Quick/tiny caps can make two configurations' parameters equal;
            # each configuration's table still gets its own run.
            base["variant"] = req.variant
        if req.quick:
            base["quick_max_train"] = QUICK_MAX_TRAIN
            base["quick_max_eval"] = QUICK_MAX_EVAL
        try:
            est, variant = _build(req, data_info["kind"], run_seed)
        except Exception as exc:  # noqa: BLE001 - ImportError, SpecError...
            # The row says why; the grid goes on.
            status = "error" if isinstance(exc, SpecError) else "unavailable"
            reason = str(exc) if isinstance(exc, SpecError) else _one_line(exc)
            key = spec_hash({**base, "unavailable": req.estimator.class_name,
                             "overrides": req.estimator.overrides(data_info["kind"])})
            out.append(PlannedRun(req, key, None, None, unavailable=reason,
                                  unavailable_status=status, run_seed=run_seed,
                                  data_info=data_info, n_threads=int(threads)))
            continue
        params = {k: v for k, v in est.get_params(deep=False).items()
                  if k not in EXCLUDED_PARAMS
                  and not (k in OMITTED_AT_DEFAULT and v == OMITTED_AT_DEFAULT[k])}
        cls = type(est)
        class_path = f"{cls.__module__}:{cls.__qualname__}"
        params_c = canonical(params)
        key = spec_hash({**base, "class": class_path, "params": params_c})
        docs = [[c.name, c.summary] for c in corrections_of(est)]
        out.append(PlannedRun(req, key, class_path, params_c, run_seed=run_seed,
                              data_info=data_info, variant=variant, corrections=docs,
                              n_threads=int(threads)))
    return out


def check_device(device: str, precision: str = "float32") -> None:
    """One-line :class:`RunnerError` for a ``--device``/``--precision`` the
    runs could not use (checked before any run; imports torch only for a
    device other than ``"cpu"``)."""
    if precision not in PRECISIONS:
        raise RunnerError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                          f"got {precision!r}")
    if device == "cpu":
        return
    try:
        import torch
    except ImportError:
        raise RunnerError(f"--device {device}: torch is not installed") from None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RunnerError(f"--device: {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunnerError(f"--device {device}: no CUDA device is available to this torch "
                          f"({torch.__version__})")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RunnerError(f"--device {device}: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _record_mismatch(rec: dict, planned: PlannedRun) -> str:
    """What differs between a stored record and the run its key names."""
    want = planned.base_record()
    for name in ("estimator", "task", "seed", "run_seed", "mode", "class_path", "n_threads"):
        if rec.get(name) != want.get(name):
            return (f"its {name!r} is {rec.get(name)!r}, but the run of this key has "
                    f"{want.get(name)!r}")
    if rec["data"].get("fingerprint") != want["data"]["fingerprint"]:
        return "its data fingerprint is not the run's"
    return ""


def finished_record(results_dir, planned: PlannedRun) -> dict | None:
    """The stored record of ``planned`` if it is finished, well formed and
    really this run's (else None, with a RecordWarning for a bad one)."""
    path = record_path(results_dir, planned.data_info["slug"], planned.key)
    rec = read_record(path)
    if rec is None:
        return None
    problem = _record_mismatch(rec, planned)
    if problem:
        warnings.warn(f"{path}: {problem}; record ignored, the run is recomputed",
                      RecordWarning, stacklevel=3)
        return None
    return rec if rec.get("status") in FINISHED else None


def correction_variants(spec: EstimatorSpec, ablate: bool = False) -> tuple[str, ...]:
    """The variants of one model in the corrections table.

    ``("reference", "corrected")``, plus ``"reference+NAME"`` for each of its
    corrections when ``ablate`` and it has more than one; ``()`` when the
    class cannot be imported or has no correction.
    """
    try:
        corrs = corrections_of(spec.estimator_class())
    except Exception:  # noqa: BLE001 - an unimportable class has no rows here
        return ()
    if not corrs:
        return ()
    out = ["reference", "corrected"]
    if ablate and len(corrs) > 1:
        out += [f"reference+{c.name}" for c in corrs]
    return tuple(out)


def requests_for(
    pairs: Iterable[tuple[EstimatorSpec, TaskSpec]],
    data: str | None = None,
    *,
    quick: bool = False,
    tiny: bool = False,
    seeds: Sequence[int] | None = None,
    variant: str = "reference",
    variants: Mapping[str, Sequence[str]] | None = None,
    device: str = "cpu",
    precision: str = "float32",
) -> list[RunRequest]:
    """Expand (estimator, task) pairs over the task's seeds (the first only
    when ``quick``), deduplicated in order.

    Every run gets ``variant``, or, for an estimator named in ``variants``,
    one run per listed variant (the corrections table); every deep
    estimator runs on ``device`` with ``precision``."""
    out: list[RunRequest] = []
    seen = set()
    for est, task in pairs:
        task_seeds = tuple(seeds) if seeds else task.seeds
        if quick:
            task_seeds = task_seeds[:1]
        for v, s in ((v, s) for v in (variants or {}).get(est.name, (variant,))
                     for s in task_seeds):
            req = RunRequest(est, task, data or task.data, int(s), quick=quick, tiny=tiny,
                             variant=v, device=device, precision=precision)
            ident = (est.name, task.name, req.data, req.seed, quick, tiny, v, device, precision)
            if ident not in seen:
                seen.add(ident)
                out.append(req)
    return out
