"""Task specs: a protocol applied to data with labels, modalities, seeds and metrics.

A task file (``tasks/<name>.toml``) declares one task::

    description = "CH-SIMS Table 2: all modalities, label M"
    protocol = "multimodal"
    data = "synthetic:sims"
    modalities = ["text", "audio", "vision"]
    labels = ["M"]
    seeds = [1, 12, 123, 1234, 12345]
    metrics = ["acc2", "acc3", "acc5", "f1", "mae", "corr"]
    seed_group = "sims_multimodal"  # optional: tasks of one group share run seeds

or, with a ``[grid]`` table, one task per combination of the listed values::

    description = "CH-SIMS Table 5: MLF-DNN trained on tasks {labels}, scored on M"
    protocol = "task_combination"
    [grid]
    labels = [["M"], ["M", "T"], ["M", "A"]]

The cells are named ``<name>_<value>`` (``sims_tasks_m``, ``sims_tasks_mt``:
a list value is its items joined and lower-cased, a string value is itself;
several grid keys join their parts with ``_``), ``{key}`` in the description
is the cell's value (a list joined by ``", "``), and the cells share run
seeds (``seed_group`` defaults to the grid's name), so a table's Δ rows
between them are paired comparisons.

The protocol is built from the task's keys by the protocol class named by
``protocol`` (:meth:`simsbench.protocols.Protocol.from_task`), which checks
them.  Imports no torch.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from simsbench.datasets import LABELS, MODALITIES
from simsbench.metrics import METRICS
from simsbench.spec_io import SpecError, canonical, check_keys, read_toml

__all__ = ["GRID_KEYS", "PAPER_SEEDS", "TaskSpec", "load_task_spec", "load_task_specs"]

PAPER_SEEDS = (1, 12, 123, 1234, 12345)
"""The CH-SIMS paper's five seeds (also used for the v2 tables)."""

GRID_KEYS = ("protocol", "data", "modalities", "labels", "variant")
"""The task keys a ``[grid]`` table may vary."""

_TASK_KEYS = {
    "name", "description", "protocol", "data", "modalities", "labels", "variant",
    "seeds", "metrics", "seed_group", "grid",
}


@dataclass(frozen=True)
class TaskSpec:
    """A protocol applied to data with labels, modalities, seeds and metrics.

    ``seed_group`` (default: the grid's name for a cell of a grid, else the
    task's name) is what a run's seed is derived from, with the paper seed
    (:func:`simsbench.runner.derive_seed`): tasks of one group give their
    runs of a paper seed the same ``random_state``, so a table's Δ row
    between them is a paired comparison (same initialisation and batch order
    where the model allows).  ``grid`` names the grid file a cell comes from.
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
    grid: str | None = None

    @property
    def seed_key(self) -> str:
        """The name run seeds are derived from: ``seed_group``, the grid or the task name."""
        return self.seed_group or self.grid or self.name

    def make_protocol(self):
        """Build the :class:`~simsbench.protocols.Protocol` of this task from its keys."""
        from simsbench.protocols import PROTOCOLS, ProtocolError

        where = self.path or self.name
        if self.grid:
            where += f": [grid] cell {self.name}"
        cls = PROTOCOLS.get(self.protocol)
        if cls is None:
            raise SpecError(f"{where}: unknown protocol {self.protocol!r}; "
                            f"choose from {sorted(PROTOCOLS)}")
        try:
            return cls.from_task(vars(self))
        except (ProtocolError, TypeError) as exc:
            raise SpecError(f"{where}: {exc}") from None

    def canonical(self) -> dict:
        """The cache-relevant content (protocol, labels, metrics)."""
        proto = self.make_protocol()
        return {
            "protocol": proto.name,
            "protocol_params": canonical(proto.params),
            "metrics": list(self.metrics),
        }


def _str_list(where, data: Mapping, key: str, allowed=None, default=()) -> tuple[str, ...]:
    val = data.get(key, default)
    if isinstance(val, str):
        val = [val]
    if not isinstance(val, list | tuple) or not all(isinstance(v, str) for v in val):
        raise SpecError(f"{where}: key {key!r} must be a list of strings")
    if allowed is not None:
        bad = [v for v in val if v not in allowed]
        if bad:
            raise SpecError(
                f"{where}: key {key!r}: unknown value(s) {bad}; choose from {sorted(allowed)}"
            )
    return tuple(val)


def _optional_str(where, data: Mapping, key: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise SpecError(f"{where}: key {key!r} must be a non-empty string")
    return value


def _task(where, data: Mapping, name: str, path: Path, grid: str | None = None) -> TaskSpec:
    """One task from its keys (a file's, or a grid cell's); the protocol is built to check it."""
    if "protocol" not in data:
        raise SpecError(f"{where}: missing key 'protocol'")
    seeds = data.get("seeds", list(PAPER_SEEDS))
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise SpecError(f"{where}: key 'seeds' must be a non-empty list of integers")
    data_spec = data.get("data", "synthetic:sims")
    if not isinstance(data_spec, str):
        raise SpecError(f"{where}: key 'data' must be a string")
    task = TaskSpec(
        name=name,
        protocol=str(data["protocol"]),
        description=str(data.get("description", "")),
        data=data_spec,
        modalities=_str_list(where, data, "modalities", MODALITIES, MODALITIES),
        labels=_str_list(where, data, "labels", LABELS, ("M",)),
        variant=_optional_str(where, data, "variant"),
        seeds=tuple(seeds),
        metrics=_str_list(where, data, "metrics", set(METRICS), ()),
        path=str(path),
        seed_group=_optional_str(where, data, "seed_group"),
        grid=grid,
    )
    task.make_protocol()
    return task


def _suffix(value) -> str:
    return "".join(value).lower() if isinstance(value, list) else str(value)


def _grid_cells(path: Path, data: Mapping, name: str) -> tuple[TaskSpec, ...]:
    grid = data["grid"]
    where = f"{path}: [grid]"
    if not isinstance(grid, Mapping) or not grid:
        raise SpecError(f"{where} must be a table of keys, each with a list of values")
    check_keys(path, grid, set(GRID_KEYS), "grid")
    for key, values in grid.items():
        if key in data:
            raise SpecError(f"{where} {key}: also set outside [grid]; set it in one place")
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where} {key}: a non-empty list of values expected")
    base = {k: v for k, v in data.items() if k not in ("grid", "name")}
    cells: dict[str, TaskSpec] = {}
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        cell = "_".join([name, *(_suffix(v) for v in combo)])
        text = {k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in values.items()}
        try:
            description = str(base.get("description", "")).format_map(text)
        except (KeyError, ValueError) as exc:
            raise SpecError(f"{path}: key 'description': {{{exc}}} is not a [grid] key "
                            f"({', '.join(grid)}); double braces for literal ones") from None
        if cell in cells:
            raise SpecError(f"{where}: two cells are both named {cell!r}")
        cells[cell] = _task(f"{path}: [grid] cell {cell}", {
            **base, **values, "description": description,
        }, cell, path, grid=name)
    return tuple(cells.values())


def load_task_specs(path: str | os.PathLike) -> tuple[TaskSpec, ...]:
    """Read a task file: its one task, or the cells of its ``[grid]`` in order."""
    path = Path(path)
    data = read_toml(path)
    check_keys(path, data, _TASK_KEYS)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise SpecError(f"{path}: key 'name' must be a non-empty string")
    if "grid" in data:
        return _grid_cells(path, data, name)
    return (_task(path, data, name, path),)


def load_task_spec(path: str | os.PathLike) -> TaskSpec:
    """Read a task file that declares one task (see :func:`load_task_specs` for grids)."""
    tasks = load_task_specs(path)
    if len(tasks) != 1:
        raise SpecError(f"{path}: declares a grid of {len(tasks)} tasks; "
                        "read it with load_task_specs")
    return tasks[0]
