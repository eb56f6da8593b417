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

A **task spec** (``tasks/<name>.toml``, one task or a grid of them) is read by
:mod:`simsbench.task_specs`; ``[search]`` tables by :mod:`simsbench.search_spec`.

Unknown keys fail with a :class:`SpecError` naming the file and the key;
unknown estimator parameters fail when the spec is built.  TOML lists become
tuples (the estimators' sequence hyperparameters are tuples).  Nothing here
imports torch: an estimator class is imported only by :meth:`EstimatorSpec.build`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from simsbench.search_spec import parse_search
from simsbench.spec_io import SpecError, canonical, check_keys, read_toml, spec_hash, tupled
from simsbench.task_specs import PAPER_SEEDS, TaskSpec, load_task_spec, load_task_specs

__all__ = [
    "DATA_KINDS",
    "PAPER_SEEDS",
    "EstimatorSpec",
    "SpecError",
    "SpecSet",
    "TaskSpec",
    "builtin_task_grid",
    "canonical",
    "default_spec_roots",
    "load_estimator_spec",
    "load_specs",
    "load_task_spec",
    "load_task_specs",
    "parse_search",
    "spec_hash",
]

DATA_KINDS = ("sims", "simsv2", "mosi", "mosei")
"""Dataset kinds that may carry per-kind overrides in an estimator spec."""

_ESTIMATOR_KEYS = {"name", "class", "description", "params", "tables", "search", *DATA_KINDS}


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


def load_estimator_spec(path: str | os.PathLike) -> EstimatorSpec:
    """Read one estimator spec file."""
    path = Path(path)
    data = read_toml(path)
    check_keys(path, data, _ESTIMATOR_KEYS)
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
        params=tupled(dict(data.get("params", {}))),
        per_kind={k: tupled(dict(data[k])) for k in DATA_KINDS if k in data},
        tables=tuple(tables),
        search=search,
        description=str(data.get("description", "")),
        path=str(path),
    )


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

    def grid(self, name: str) -> tuple[TaskSpec, ...]:
        """The cells of the task grid ``name`` (``tasks/<name>.toml``), in file order."""
        cells = tuple(t for t in self.tasks.values() if t.grid == name)
        if not cells:
            grids = sorted({t.grid for t in self.tasks.values() if t.grid})
            raise SpecError(f"unknown task grid {name!r}; known: {', '.join(grids) or 'none'}")
        return cells


def load_specs(extra_roots: Iterable[str | os.PathLike] = (), *,
               builtin: bool = True) -> SpecSet:
    """Load every spec under the built-in roots and ``extra_roots``.

    A root holds ``estimators/*.toml`` and ``tasks/*.toml`` (a grid file
    gives one task per cell); a later root's spec replaces an earlier one of
    the same name.
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
            for task in load_task_specs(path):
                tasks[task.name] = task
    return SpecSet(estimators=estimators, tasks=tasks, roots=roots)


def builtin_task_grid(name: str) -> tuple[TaskSpec, ...]:
    """The cells of a built-in task grid: ``tasks/<name>.toml`` under
    :func:`default_spec_roots` (the last root that has it), else in the source
    checkout; read without the other specs."""
    checkout = Path(__file__).resolve().parent.parent
    for root in [*reversed(default_spec_roots()), checkout]:
        path = root / "tasks" / f"{name}.toml"
        if path.is_file():
            return load_task_specs(path)
    raise SpecError(f"no task grid {name}.toml under "
                    f"{', '.join(str(r / 'tasks') for r in default_spec_roots())}")
