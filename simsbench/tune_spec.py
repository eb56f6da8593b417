"""The tuned estimator spec: the winner of a study as an ``estimators/<name>.toml``
file that works as a row of any table with ``--specs``.

:func:`estimator_spec_toml` writes any spec so that
:func:`simsbench.specs.load_estimator_spec` reads it back to an equal one.
Re-exported by :mod:`simsbench.tune`.  Imports no torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from simsbench._version import __version__
from simsbench.specs import EstimatorSpec, SpecError

if TYPE_CHECKING:
    from simsbench.tune_report import TuneResult

__all__ = ["estimator_spec_toml", "spec_header", "tables_for_task", "winner_spec"]


def tables_for_task(task: str) -> list[str]:
    """The tables whose rows run ``task`` (a tuned spec joins them)."""
    from simsbench.tables import TABLES

    return [t.name for t in TABLES.values() if t.user_task == task]


def winner_spec(base: EstimatorSpec, kind: str, params: Mapping, name: str,
                task: str) -> EstimatorSpec:
    """``base`` with the winning ``params`` for data ``kind``, named ``name``."""
    per_kind = {k: dict(v) for k, v in base.per_kind.items()}
    per_kind[kind] = {**per_kind.get(kind, {}), **params}
    tables = tuple(dict.fromkeys((*base.tables, *tables_for_task(task))))
    return dataclasses.replace(
        base, name=name, label=f"{base.label} (tuned)", per_kind=per_kind, tables=tables,
        search={}, path=None,
        description=(f"{base.label} with the configuration selected by 'simsbench tune "
                     f"{base.name}' on {kind} data (validation split); other data kinds "
                     "use the base spec's values."),
    )


def _toml_value(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise SpecError(f"cannot write {value!r} to a spec file (not a TOML value)")


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def estimator_spec_toml(spec: EstimatorSpec, header: str = "") -> str:
    """``spec`` as the text of an ``estimators/<name>.toml`` file.

    :func:`simsbench.specs.load_estimator_spec` reads it back to an equal spec
    (``[search]`` included).
    """
    lines = [f"# {ln}" if ln else "#" for ln in header.splitlines()]
    lines += [f"name = {_toml_value(spec.label)}", f"class = {_toml_value(spec.class_name)}"]
    if spec.description:
        lines.append(f"description = {_toml_value(spec.description)}")
    if spec.tables:
        lines.append(f"tables = {_toml_value(list(spec.tables))}")
    sections = [("params", spec.params)] + sorted(spec.per_kind.items())
    for section, params in sections:
        if params:
            lines += ["", f"[{section}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(params.items())]
    if spec.search:
        lines += ["", "[search]"]
        for key, value in spec.search.items():
            if isinstance(value, Mapping) and "elements" in value:
                elems = [
                    "{" + ", ".join(f"{_toml_key(a)} = {_toml_value(b)}" for a, b in e.items())
                    + "}" if isinstance(e, Mapping) else _toml_value(list(e))
                    for e in value["elements"]
                ]
                text = "{elements = [" + ", ".join(elems) + "]}"
            elif isinstance(value, Mapping):
                text = "{" + ", ".join(f"{_toml_key(a)} = {_toml_value(b)}"
                                       for a, b in value.items()) + "}"
            else:
                text = _toml_value(list(value))
            lines.append(f"{_toml_key(key)} = {text}")
    return "\n".join(lines) + "\n"


def spec_header(res: TuneResult) -> str:
    """The comment block of a tuned spec file: how the study chose it."""
    mean = res.ranked["mean"][res.best]
    std = res.ranked["std"][res.best]
    return (
        f"Written by 'simsbench tune {res.base.name}' (simsbench {__version__}): trial "
        f"{res.best} of {len(res.configurations)}\n"
        f"random configurations (ParameterSampler, random_state={res.random_state}) from "
        f"the [search] table of {res.base.path or res.base.name},\n"
        f"selected on the validation split of {res.data} by the mean {res.metric} over "
        f"seeds {', '.join(map(str, res.seeds))}: {mean:.4f} +- {std:.4f} (mode "
        f"{res.mode}).\n"
        "The test split played no part in the selection.  Use it as a table row with\n"
        f"  simsbench run {(tables_for_task(res.task.name) or ['table2'])[0]} --data "
        f"{res.data} --specs DIR --estimators {res.base.name},NAME\n"
        "where DIR holds estimators/NAME.toml (this file)."
    )
