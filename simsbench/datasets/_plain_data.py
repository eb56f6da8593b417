"""Plain data as arrays: what counts as data, and turning a value into one array.

The safe unpickler (:mod:`simsbench.datasets._safe_pickle`) returns dicts,
lists and arrays; :func:`to_array` turns one such value into one array,
refusing ragged lists and charging what it allocates to a :class:`Budget`
sized from the file, so shared references (one list referenced a million
times) cannot multiply a small file into a large allocation.
"""

from __future__ import annotations

import math

import numpy as np

from simsbench.datasets._format_errors import MMSAFormatError, human

MAX_DEPTH = 32
"""Deepest container nesting accepted (numpy arrays have at most 64 axes;
an MMSA file nests dict -> dict -> array, or a few list levels)."""

ARRAY_KINDS = frozenset("biufcUS")
"""The dtype kinds of the arrays that are data: bool, numbers, str and bytes."""


class Budget:
    """Bytes that conversions may still allocate for one load.

    Parameters
    ----------
    limit : int or None
        None: unlimited (in-memory dicts the caller built).
    """

    def __init__(self, limit: int | None):
        self.limit = limit
        self.used = 0

    @classmethod
    def for_files(cls, total_bytes: int) -> Budget:
        """64 MiB plus 4x the input: float64 lists of small ints (2 bytes a
        number in a pickle, 8 in memory), and padded string arrays."""
        return cls((64 << 20) + 4 * total_bytes)

    def take(self, nbytes: int, where: str, what: str) -> None:
        if self.limit is not None and self.used + nbytes > self.limit:
            raise MMSAFormatError(
                f"{where}: {what} would take {human(nbytes)}, more than a file of this size "
                f"can hold (limit {human(self.limit)} for this load; shared references or "
                "padding blow it up)")
        self.used += nbytes


class _Ragged(Exception):
    def __init__(self, index: list, msg: str):
        super().__init__(msg)
        self.index = index


# The kind of a scalar leaf; bool before int, since a bool is an int.
_LEAF_KINDS = (
    ((str, np.str_), "U"),
    ((bytes, np.bytes_), "S"),
    ((bool, np.bool_), "b"),
    ((int, np.integer), "i"),
    ((float, np.floating), "f"),
    ((complex, np.complexfloating), "c"),
)


def _leaf_kind(x) -> str:
    for types, kind in _LEAF_KINDS:
        if isinstance(x, types):
            return kind
    return ""


def _describe(value) -> tuple[tuple[int, ...], set, int]:
    """Shape, leaf kinds and longest string of a nested list, without building it."""
    memo: dict[int, tuple] = {}

    def walk(x, depth):
        if isinstance(x, np.ndarray):
            kind = x.dtype.kind
            if kind not in ARRAY_KINDS:
                raise _Ragged([], f"holds an array of dtype {x.dtype}")
            width = x.dtype.itemsize // (4 if kind == "U" else 1) if kind in "US" else 0
            return x.shape, {kind}, width
        if not isinstance(x, list | tuple):
            kind = _leaf_kind(x)
            if not kind:
                raise _Ragged([], f"holds a {type(x).__name__}")
            return (), {kind}, len(x) if kind in "US" else 0
        key = id(x)
        if key in memo:
            return memo[key]
        if depth > MAX_DEPTH:
            raise _Ragged([], f"is nested more than {MAX_DEPTH} levels deep")
        if not x:
            out = ((0,), set(), 0)
        else:
            kinds: set = set()
            width = 0
            first = None
            if all(type(v) in (float, int, bool) for v in x):  # fast path: a row of numbers
                kinds = {_leaf_kind(v) for v in {type(v): v for v in x}.values()}
                first = ()
            else:
                for i, v in enumerate(x):
                    try:
                        shape, k, w = walk(v, depth + 1)
                    except _Ragged as exc:
                        exc.index.insert(0, i)
                        raise
                    if first is None:
                        first = shape
                    elif shape != first:
                        raise _Ragged([i], f"is ragged: item {i} has shape {shape} but item 0 "
                                           f"has {first}")
                    kinds |= k
                    width = max(width, w)
            out = ((len(x), *first), kinds, width)
        memo[key] = out
        return out

    return walk(value, 0)


def to_array(value, where: str, budget: Budget) -> tuple[np.ndarray, bool]:
    """One array from an unpickled value; ``(array, converted)``.

    ``converted`` is True when the value was a (nested) list or an object
    array rather than a numeric/str array.  Ragged lists, lists mixing text
    and numbers, and conversions larger than ``budget`` raise
    :class:`MMSAFormatError` naming ``where``.
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind in ARRAY_KINDS:
            return value, False
        if value.dtype.kind != "O":
            raise MMSAFormatError(f"{where}: has dtype {value.dtype}, not numbers or text")
        value = value.tolist()  # an in-memory object array (never one from a file)
    elif _leaf_kind(value):
        arr, _ = to_array([value], where, budget)
        return arr.reshape(()), False
    elif not isinstance(value, list | tuple):
        raise MMSAFormatError(f"{where}: is a {type(value).__name__}, not an array")
    try:
        shape, kinds, width = _describe(value)
    except _Ragged as exc:
        at = "".join(f"[{i}]" for i in exc.index[:-1])
        raise MMSAFormatError(f"{where}{at}: {exc}") from None
    if kinds & {"U", "S"}:
        if kinds - {"U", "S"}:
            raise MMSAFormatError(f"{where}: mixes text and numbers")
        kind = "U" if "U" in kinds else "S"
        dtype = np.dtype(f"{kind}{max(width, 1)}")
    elif "c" in kinds:
        dtype = np.dtype(np.complex128)
    elif "f" in kinds:
        dtype = np.dtype(np.float64)
    elif "i" in kinds:
        dtype = np.dtype(np.int64)
    else:
        dtype = np.dtype(bool) if kinds else np.dtype(np.float64)
    budget.take(math.prod(shape) * dtype.itemsize, where, f"a {shape} {dtype} array")
    try:
        return np.array(value, dtype=dtype), True
    except (OverflowError, ValueError, TypeError, UnicodeError) as exc:
        raise MMSAFormatError(
            f"{where}: cannot be read as {dtype} numbers ({' '.join(str(exc).split())[:120]})"
        ) from None
