"""Declarative specs: estimator presets and tasks, as TOML files.

An **estimator spec** (``estimators/<name>.toml``) names a class and the
overrides of its defaults, per dataset kind where the reference's SIMS and
v2 hyperparameters differ::

    name = "LF-DNN"                 # row label in the tables
    class = "LFDNN"                 # a simsbench name or "package.module:Class"
    description = "..."
    tables = []                     # extra tables to appear in (user models)
    [params]                        # overrides on every dataset
    [simsv2]                        # overrides on CH-SIMS v2 data
    learning_rate = 5e-3
    [search]                        # tuning ranges for ``simsbench tune``
    learning_rate = [5e-4, 1e-3, 2e-3, 5e-3]             # a list: uniform choice
    weight_decay = {dist = "loguniform", low = 1e-5, high = 1e-2}  # scipy.stats
    loss_weights = {elements = [[0.2, 1.0], [0.0, 1.0]]} # each element drawn alone
    "d_model+num_heads" = [[30, 6], [40, 8]]            # several parameters jointly

A **task spec** (``tasks/<name>.toml``) is a protocol plus data, labels,
modalities, seeds and metrics::

    description = "CH-SIMS Table 2: all modalities, label M"
    protocol = "multimodal"
    data = "synthetic:sims"
    modalities = ["text", "audio", "vision"]
    labels = ["M"]
    seeds = [1, 12, 123, 1234, 12345]
    metrics = ["acc2", "acc3", "acc5", "f1", "mae", "corr"]
    seed_group = "sims_tasks"       # optional: tasks of one group share run seeds

Unknown keys fail with a :class:`SpecError` naming the file and the key;
unknown estimator parameters fail when the spec is built.  TOML lists become
tuples (the estimators' sequence hyperparameters are tuples).  Nothing here
imports torch: an estimator class is imported only by :meth:`EstimatorSpec.build`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simsbench.datasets import LABELS, MODALITIES
from simsbench.metrics import METRICS

__all__ = [
    "DATA_KINDS",
    "EstimatorSpec",
    "SpecError",
    "SpecSet",
    "TaskSpec",
    "canonical",
    "default_spec_roots",
    "load_estimator_spec",
    "load_specs",
    "load_task_spec",
    "parse_search",
    "spec_hash",
]

DATA_KINDS = ("sims", "simsv2", "mosi", "mosei")
"""Dataset kinds that may carry per-kind overrides in an estimator spec."""

PAPER_SEEDS = (1, 12, 123, 1234, 12345)
"""The CH-SIMS paper's five seeds (also used for the v2 tables)."""

_ESTIMATOR_KEYS = {"name", "class", "description", "params", "tables", "search", *DATA_KINDS}
_TASK_KEYS = {
    "name", "description", "protocol", "data", "modalities", "labels", "variant",
    "seeds", "metrics", "seed_group",
}


class SpecError(ValueError):
    """A spec file is malformed; the message names the file and the key."""


def _tupled(value):
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    if isinstance(value, dict):
        return {k: _tupled(v) for k, v in value.items()}
    return value


def canonical(value) -> Any:
    """A JSON-able, order-stable form of a parameter value (for cache keys)."""
    import numbers

    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        # 1 and 1.0 are the same hyperparameter value.
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    if isinstance(value, type):
        return f"{value.__module__}:{value.__qualname__}"
    if hasattr(value, "get_params"):  # a nested estimator
        return {
            "__class__": f"{type(value).__module__}:{type(value).__qualname__}",
            "params": canonical(value.get_params(deep=False)),
        }
    if callable(value):
        return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', repr(value))}"
    return repr(value)


def spec_hash(obj) -> str:
    """SHA-256 of the canonical JSON form of ``obj``."""
    text = json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _check_keys(path, data: Mapping, allowed: set[str], where: str = "") -> None:
    for key in data:
        if key not in allowed:
            loc = f" in [{where}]" if where else ""
            raise SpecError(
                f"{path}: unknown key {key!r}{loc}; allowed: {', '.join(sorted(allowed))}"
            )


@dataclass(frozen=True)
class EstimatorSpec:
    """A named estimator configuration (one row of a table).

    Attributes
    ----------
    name : str
        The spec's name (file stem), used in tables and on the command line.
    label : str
        Row label (e.g. ``"MLF-DNN*"``).
    class_name : str
        A name of :mod:`simsbench.estimators` or an import path
        ``"package.module:Class"`` (a user's own estimator).
    params : dict
        Overrides of the class defaults on every dataset.
    per_kind : dict of str to dict
        Further overrides per dataset kind (``"sims"``, ``"simsv2"``, ...).
    tables : tuple of str
        Tables (besides the built-in layouts) this estimator is a row of.
    search : dict
        The ``[search]`` table: tuning ranges for ``simsbench tune`` (see
        :func:`parse_search`); empty when the spec has none.
    """

    name: str
    label: str
    class_name: str
    params: dict = field(default_factory=dict)
    per_kind: dict = field(default_factory=dict)
    tables: tuple[str, ...] = ()
    search: dict = field(default_factory=dict)
    description: str = ""
    path: str | None = None

    def overrides(self, kind: str | None = None) -> dict:
        """Parameter overrides for a dataset of ``kind``."""
        out = dict(self.params)
        if kind is not None:
            out.update(self.per_kind.get(kind, {}))
        return out

    def estimator_class(self) -> type:
        """Import the class (may raise ImportError for a missing model/torch)."""
        from simsbench.utils.discovery import get_estimator_class

        try:
            cls = get_estimator_class(self.class_name)
        except ValueError as exc:
            raise SpecError(f"{self.path or self.name}: class: {exc}") from None
        if not isinstance(cls, type):
            raise SpecError(f"{self.path or self.name}: class {self.class_name!r} is not a class")
        return cls

    def class_path(self) -> str:
        cls = self.estimator_class()
        return f"{cls.__module__}:{cls.__qualname__}"

    def build(self, kind: str | None = None, extra: Mapping | None = None):
        """A fresh estimator with this spec's overrides (and ``extra``).

        Raises
        ------
        ImportError
            When the class cannot be imported (e.g. torch is missing).
        SpecError
            When an override names a parameter the class does not have.
        """
        cls = self.estimator_class()
        est = cls()
        valid = est.get_params(deep=False)
        params = self.overrides(kind)
        for key in params:
            if key not in valid:
                raise SpecError(
                    f"{self.path or self.name}: unknown parameter {key!r} for "
                    f"{cls.__name__}; valid: {', '.join(sorted(valid))}"
                )
        params.update(extra or {})
        params = {k: v for k, v in params.items() if k in valid}
        try:
            est.set_params(**params)
        except ValueError as exc:
            raise SpecError(f"{self.path or self.name}: {exc}") from None
        return est


@dataclass(frozen=True)
class TaskSpec:
    """A protocol applied to data with labels, modalities, seeds and metrics.

    ``seed_group`` (default: the task's name) is what a run's seed is derived
    from, with the paper seed (:func:`simsbench.runner.derive_seed`): tasks
    of one group give their runs of a paper seed the same ``random_state``,
    so a table's Δ row between them is a paired comparison (same
    initialisation and batch order where the model allows).
    """

    name: str
    protocol: str
    description: str = ""
    data: str = "synthetic:sims"
    modalities: tuple[str, ...] = MODALITIES
    labels: tuple[str, ...] = ("M",)
    variant: str | None = None
    seeds: tuple[int, ...] = PAPER_SEEDS
    metrics: tuple[str, ...] = ()
    path: str | None = None
    seed_group: str | None = None

    @property
    def seed_key(self) -> str:
        """The name run seeds are derived from: ``seed_group`` or the task name."""
        return self.seed_group or self.name

    def make_protocol(self):
        """Build the :class:`~simsbench.protocols.Protocol` of this task."""
        from simsbench.protocols import ProtocolError, get_protocol

        try:
            if self.protocol == "multimodal":
                if tuple(self.labels) != ("M",):
                    raise ProtocolError("the multimodal protocol scores label M: labels = [\"M\"]")
                return get_protocol("multimodal", modalities=self.modalities)
            if self.protocol in ("unimodal_own_label", "unimodal_m_label"):
                if len(self.modalities) != 1:
                    raise ProtocolError(f"{self.protocol} needs exactly one modality")
                proto = get_protocol(self.protocol, modality=self.modalities[0])
                if tuple(self.labels) != (proto.score_label(),):
                    raise ProtocolError(
                        f"{self.protocol} on {self.modalities[0]} uses label "
                        f"{proto.score_label()!r}, not {list(self.labels)}"
                    )
                return proto
            if self.protocol == "task_combination":
                return get_protocol("task_combination", labels=self.labels)
            if self.protocol == "avmc_ablation":
                return get_protocol("avmc_ablation", variant=self.variant or "full")
            return get_protocol(self.protocol)
        except (ProtocolError, TypeError) as exc:
            raise SpecError(f"{self.path or self.name}: {exc}") from None

    def canonical(self) -> dict:
        """The cache-relevant content (protocol, labels, metrics)."""
        proto = self.make_protocol()
        return {
            "protocol": proto.name,
            "protocol_params": canonical(proto.params),
            "metrics": list(self.metrics),
        }


def load_estimator_spec(path: str | os.PathLike) -> EstimatorSpec:
    """Read one estimator spec file."""
    path = Path(path)
    data = _read_toml(path)
    _check_keys(path, data, _ESTIMATOR_KEYS)
    if "class" not in data:
        raise SpecError(f"{path}: missing key 'class'")
    if not isinstance(data["class"], str) or not data["class"]:
        raise SpecError(f"{path}: key 'class' must be a non-empty string")
    for key in ("params", *DATA_KINDS):
        if key in data and not isinstance(data[key], dict):
            raise SpecError(f"{path}: [{key}] must be a table of parameter values")
        for sub, val in data.get(key, {}).items():
            if isinstance(val, dict):
                raise SpecError(
                    f"{path}: unknown key {sub!r} in [{key}] (a nested table; "
                    "parameter values must be scalars or lists)"
                )
    tables = data.get("tables", [])
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        raise SpecError(f"{path}: key 'tables' must be a list of table names")
    search = parse_search(data.get("search", {}), path)
    return EstimatorSpec(
        name=path.stem,
        label=str(data.get("name", path.stem)),
        class_name=data["class"],
        params=_tupled(dict(data.get("params", {}))),
        per_kind={k: _tupled(dict(data[k])) for k in DATA_KINDS if k in data},
        tables=tuple(tables),
        search=search,
        description=str(data.get("description", "")),
        path=str(path),
    )


def _scalar(value) -> bool:
    return isinstance(value, bool | int | float | str)


def _parse_dist(value: Mapping, where: str) -> dict:
    if not isinstance(value.get("dist"), str) or not value["dist"]:
        raise SpecError(f"{where}: a distribution needs dist = \"<scipy.stats name>\"")
    for arg, val in value.items():
        if not _scalar(val):
            raise SpecError(f"{where}: distribution argument {arg!r} must be a number")
    return dict(value)


def _parse_choices(value, where: str) -> list:
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: a non-empty list of values, a {{dist = ...}} table or an "
                        "{elements = [...]} table expected")
    return [_tupled(v) for v in value]


def parse_search(table, path: str | os.PathLike) -> dict:
    """Validate an estimator spec's ``[search]`` table (the tuning ranges).

    Each key is a parameter and each value one of

    * a list of candidate values, drawn uniformly (MMSA's ``config_tune.json``
      lists, and :class:`~sklearn.model_selection.ParameterSampler`'s list
      semantics);
    * ``{dist = "NAME", ...}``: a :mod:`scipy.stats` distribution; ``low`` and
      ``high`` give the range of ``uniform``, ``loguniform`` and ``randint``,
      any other key is passed to the distribution as is;
    * ``{elements = [C0, C1, ...]}``: a tuple parameter whose elements are drawn
      independently, each ``Ci`` a list or a distribution (MMSA draws the
      multi-task loss weights M, T, A, V and MFN's ``NN1Config`` this way).

    A key naming several parameters joined by ``+`` (``"d_model+num_heads"``)
    draws them jointly: each candidate is a list of one value per parameter.
    Whether the names are the class's parameters is checked when tuning.

    Returns
    -------
    dict
        The table with TOML lists as tuples inside each candidate.

    Raises
    ------
    SpecError
        Naming the file and the key.
    """
    if not isinstance(table, Mapping):
        raise SpecError(f"{path}: [search] must be a table of parameter ranges")
    out: dict = {}
    for key, value in table.items():
        where = f"{path}: [search] {key}"
        names = key.split("+")
        if not all(n.strip() and n == n.strip() for n in names):
            raise SpecError(f"{where}: parameter names joined by '+' expected")
        if len(names) > 1:
            choices = _parse_choices(value, where)
            if not all(isinstance(c, tuple) and len(c) == len(names) for c in choices):
                raise SpecError(f"{where}: every candidate must be a list of {len(names)} "
                                f"values, one per parameter")
            out[key] = choices
        elif isinstance(value, Mapping) and "elements" in value:
            if set(value) != {"elements"}:
                raise SpecError(f"{where}: an {{elements = [...]}} table has no other keys")
            elems = value["elements"]
            if not isinstance(elems, list) or not elems:
                raise SpecError(f"{where}: elements must be a non-empty list")
            parsed = []
            for i, elem in enumerate(elems):
                ewhere = f"{where} element {i}"
                parsed.append(_parse_dist(elem, ewhere) if isinstance(elem, Mapping)
                              else _parse_choices(elem, ewhere))
            out[key] = {"elements": parsed}
        elif isinstance(value, Mapping):
            out[key] = _parse_dist(value, where)
        else:
            out[key] = _parse_choices(value, where)
    return out


def load_task_spec(path: str | os.PathLike) -> TaskSpec:
    """Read one task spec file (the protocol is built to validate it)."""
    path = Path(path)
    data = _read_toml(path)
    _check_keys(path, data, _TASK_KEYS)
    if "protocol" not in data:
        raise SpecError(f"{path}: missing key 'protocol'")

    def str_list(key, allowed=None, default=()):
        val = data.get(key, default)
        if isinstance(val, str):
            val = [val]
        if not isinstance(val, list | tuple) or not all(isinstance(v, str) for v in val):
            raise SpecError(f"{path}: key {key!r} must be a list of strings")
        if allowed is not None:
            bad = [v for v in val if v not in allowed]
            if bad:
                raise SpecError(
                    f"{path}: key {key!r}: unknown value(s) {bad}; choose from {sorted(allowed)}"
                )
        return tuple(val)

    seeds = data.get("seeds", list(PAPER_SEEDS))
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise SpecError(f"{path}: key 'seeds' must be a non-empty list of integers")
    data_spec = data.get("data", "synthetic:sims")
    if not isinstance(data_spec, str):
        raise SpecError(f"{path}: key 'data' must be a string")
    variant = data.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise SpecError(f"{path}: key 'variant' must be a string")
    seed_group = data.get("seed_group")
    if seed_group is not None and (not isinstance(seed_group, str) or not seed_group):
        raise SpecError(f"{path}: key 'seed_group' must be a non-empty string")
    task = TaskSpec(
        name=str(data.get("name", path.stem)),
        protocol=str(data["protocol"]),
        description=str(data.get("description", "")),
        data=data_spec,
        modalities=str_list("modalities", MODALITIES, MODALITIES),
        labels=str_list("labels", LABELS, ("M",)),
        variant=variant,
        seeds=tuple(seeds),
        metrics=str_list("metrics", set(METRICS), ()),
        path=str(path),
        seed_group=seed_group,
    )
    task.make_protocol()
    return task


def default_spec_roots() -> list[Path]:
    """Where the built-in ``estimators/`` and ``tasks/`` folders are.

    ``$SIMSBENCH_SPECS`` (``os.pathsep``-separated) when set; otherwise the
    source checkout that holds this package (an editable install), else the
    current directory when it has a ``tasks/`` folder (a wheel install run
    from the repository, as tox does).
    """
    env = os.environ.get("SIMSBENCH_SPECS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "tasks").is_dir():
        return [checkout]
    if (Path.cwd() / "tasks").is_dir():
        return [Path.cwd()]
    return [checkout]


@dataclass
class SpecSet:
    """All estimator and task specs found under some roots."""

    estimators: dict[str, EstimatorSpec]
    tasks: dict[str, TaskSpec]
    roots: list[Path]

    def estimator(self, name: str) -> EstimatorSpec:
        try:
            return self.estimators[name]
        except KeyError:
            raise SpecError(
                f"unknown estimator spec {name!r}; known: {', '.join(sorted(self.estimators))}"
            ) from None

    def task(self, name: str) -> TaskSpec:
        try:
            return self.tasks[name]
        except KeyError:
            raise SpecError(
                f"unknown task {name!r}; known: {', '.join(sorted(self.tasks))}"
            ) from None


def load_specs(extra_roots: Iterable[str | os.PathLike] = (), *,
               builtin: bool = True) -> SpecSet:
    """Load every spec under the built-in roots and ``extra_roots``.

    A root holds ``estimators/*.toml`` and ``tasks/*.toml``; a later root's
    spec replaces an earlier one of the same name.
    """
    extra = [Path(r) for r in extra_roots]
    roots = (default_spec_roots() if builtin else []) + extra
    estimators: dict[str, EstimatorSpec] = {}
    tasks: dict[str, TaskSpec] = {}
    for root in roots:
        if not root.is_dir():
            if root in extra:
                raise SpecError(f"{root}: no such spec directory")
            continue
        for path in sorted((root / "estimators").glob("*.toml")):
            spec = load_estimator_spec(path)
            estimators[spec.name] = spec
        for path in sorted((root / "tasks").glob("*.toml")):
            task = load_task_spec(path)
            tasks[task.name] = task
    return SpecSet(estimators=estimators, tasks=tasks, roots=roots)
