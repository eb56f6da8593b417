"""The ``[search]`` table of an estimator spec: tuning ranges for ``simsbench tune``."""

from __future__ import annotations

import os
from collections.abc import Mapping

from simsbench.spec_io import SpecError, tupled

__all__ = ["parse_search"]


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
    return [tupled(v) for v in value]


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
