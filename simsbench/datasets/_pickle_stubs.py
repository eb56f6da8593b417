"""What the safe unpickler builds instead of importing, and how that becomes data.

:data:`SAFE_GLOBALS` maps the few names that numpy arrays, dtypes and scalars
pickle as (under their numpy 1.x, 2.x and protocol-2 ``__builtin__``
spellings) to small functions written here; the unpickler
(:mod:`simsbench.datasets._safe_pickle`) refuses every other name.  Arrays
are rebuilt from their pickled state by :class:`ArrayStub`, which checks the
dtype (plain numbers, bool, ``str`` or ``bytes``; no fields, sub-arrays or
metadata), the shape, and that the data is exactly ``prod(shape) * itemsize``
bytes; the array is then a C- or Fortran-ordered view of that buffer, never
one over a buffer, offset or strides the file chose.  Every problem raises
:class:`Refusal`, which the unpickler turns into a one-line error.  Once the
stream is read, :func:`resolve` replaces the stubs by arrays and refuses
whatever else is not plain data.
"""

from __future__ import annotations

import math
import mmap
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from simsbench.datasets._format_errors import MMSAFormatError, UnsafePickleError, human, key_path
from simsbench.datasets._plain_data import ARRAY_KINDS, MAX_DEPTH

LARGE = 1 << 16
"""Payloads of at least this many bytes are read straight into fresh
(uninitialised) memory, a :class:`Payload`, so the arrays built on them are
writable views of it: no zero fill, no copy."""


class Refusal(Exception):
    """Raised inside the unpickler; :func:`safe_load_pickle` adds the place."""

    def __init__(self, msg: str, unsafe: bool = False):
        super().__init__(msg)
        self.unsafe = unsafe


class Payload:
    """A large ``bytes``/``bytearray`` payload, read into its own anonymous
    memory map (pre-faulted where the system allows: as fast as reading into
    ``bytes``, but writable, and without the zero fill of ``bytearray``)."""

    __slots__ = ("buf",)

    def __init__(self, n: int):
        if hasattr(mmap, "MAP_ANONYMOUS"):
            flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
            self.buf = mmap.mmap(-1, n, flags=flags)
        else:  # pragma: no cover - Windows
            self.buf = mmap.mmap(-1, n)

    def __len__(self) -> int:
        return len(self.buf)


class Token:
    """A name the pickle may mention but never call (``numpy.ndarray``)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise Refusal(
            f"the pickle calls {self.name} directly (an array over a buffer, offset "
            "and strides the file chose); only numpy's own array pickles are read",
            unsafe=True,
        )


NDARRAY = Token("numpy.ndarray")

_DTYPE_CODE = re.compile(r"^[<>|=]?(b1|\?|[iu][1248]|f[248]|c(8|16)|[US]\d*|O\d*)$")


class DtypeStub:
    """``numpy.dtype(code, align, copy)`` and its ``BUILD`` state, checked."""

    __slots__ = ("code", "order", "elsize")

    def __init__(self, code: str):
        self.code = code
        self.order = "="
        self.elsize = -1

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise Refusal("a numpy dtype with a state this reader does not know")
        _, order, subarray, names, fields, elsize = state[:6]
        if subarray is not None or names is not None or fields is not None:
            raise Refusal("a structured numpy dtype (fields or sub-arrays); "
                          "only plain numeric and string arrays are read", unsafe=True)
        if len(state) == 9 and state[8]:
            raise Refusal("a numpy dtype with metadata", unsafe=True)
        if order not in ("<", ">", "|", "=") or not isinstance(elsize, int):
            raise Refusal("a malformed numpy dtype state")
        self.order = order
        self.elsize = elsize

    @property
    def is_object(self) -> bool:
        return self.code.lstrip("<>|=")[0] == "O"

    def resolve(self, limit: int) -> np.dtype:
        code = self.code.lstrip("<>|=")
        kind = code[0]
        if kind in "US":
            size = self.elsize if self.elsize >= 0 else int(code[1:] or 0)
            if not 0 <= size <= limit or (kind == "U" and size % 4):
                raise Refusal(f"a string dtype of {size} bytes per item")
            chars = size // 4 if kind == "U" else size
            dt = np.dtype(f"{kind}{chars}")
        else:
            dt = np.dtype(code)
        order = self.order if self.order in "<>" else "="
        if dt.itemsize > 1 and kind != "S":
            return dt.newbyteorder(order)  # type: ignore[arg-type]  # one of "<", ">", "="
        return dt


def _make_dtype(code=None, align=False, copy=True, *rest):
    if not isinstance(code, str) or not _DTYPE_CODE.match(code) or rest:
        raise Refusal(f"numpy.dtype({code!r}): only plain numeric, bool, str and "
                      "bytes dtypes are read", unsafe=True)
    return DtypeStub(code)


def _dtype_class(code: str):
    def make(*args):
        return DtypeStub(code)

    return make


class ObjectArray:
    """An object array in numpy's list form: ``shape`` and the flat items."""

    __slots__ = ("shape", "items")

    def __init__(self, shape: tuple, items: list):
        self.shape = shape
        self.items = items

    def nested(self):
        """The items as nested lists of ``shape`` (C order)."""
        items = self.items
        for n in reversed(self.shape[1:]):
            items = [items[i:i + n] for i in range(0, len(items), n)] if n else []
        return items if self.shape else (items[0] if items else None)


def check_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    if (not isinstance(shape, tuple) or len(shape) > 64
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape)):
        raise Refusal(f"an array shape that is not a tuple of integers ({type(shape).__name__})")
    if any(n < 0 for n in shape):
        raise Refusal(f"an array with a negative dimension {shape}")
    return shape


def _raw_bytes(raw) -> bytes | bytearray | Payload:
    if isinstance(raw, str):  # Python 2 pickles: latin-1 text holding the bytes
        raw = raw.encode("latin-1")
    if not isinstance(raw, bytes | bytearray | Payload):
        raise Refusal(f"array data is a {type(raw).__name__}, not bytes")
    return raw


def array_from_bytes(raw, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    need = math.prod(shape) * dtype.itemsize
    if len(raw) != need:
        raise Refusal(
            f"an array of shape {shape} and dtype {dtype} needs {human(need)} of data "
            f"but the file gives {human(len(raw))}"
        )
    if need == 0:
        return np.zeros(shape, dtype)
    flat = np.frombuffer(raw.buf if isinstance(raw, Payload) else raw, dtype=dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


class ArrayStub:
    """What ``numpy.core.multiarray._reconstruct`` returns; ``BUILD`` fills it."""

    __slots__ = ("value", "limit")

    def __init__(self, limit: int):
        self.value: np.ndarray | ObjectArray | None = None
        self.limit = limit

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise Refusal("a numpy array with a state this reader does not know")
        if len(state) == 5:
            if state[0] != 1:
                raise Refusal(f"a numpy array state of version {state[0]!r}")
            state = state[1:]
        shape, dtype, fortran, raw = state
        shape = check_shape(shape)
        if not isinstance(dtype, DtypeStub):
            raise Refusal(f"a numpy array whose dtype is a {type(dtype).__name__}")
        if dtype.is_object:
            if not isinstance(raw, list):
                raise Refusal(
                    "an object array whose contents are raw bytes (they would be read "
                    "as memory addresses)", unsafe=True)
            if len(raw) != math.prod(shape):
                raise Refusal(f"an object array of shape {shape} with {len(raw)} items")
            self.value = ObjectArray(shape, raw)
            return
        self.value = array_from_bytes(_raw_bytes(raw), dtype.resolve(self.limit), shape,
                                      bool(fortran))


def _scalar(dtype, data=None):
    if not isinstance(dtype, DtypeStub) or dtype.is_object:
        raise Refusal("a numpy scalar that is not a number or a string", unsafe=True)
    return array_from_bytes(_raw_bytes(data), dtype.resolve(1 << 20), (1,), False)[0]


def _scalar_type(tp):
    def make(value=0):
        if not isinstance(value, int | float | str | bool):
            raise Refusal(f"numpy.{tp.__name__}() of a {type(value).__name__}")
        return tp(value)

    return make


def _empty_bytes(*args):
    if args:  # protocol 0-2 write only b"" this way (other bytes as _codecs.encode)
        raise Refusal("bytes() with arguments", unsafe=True)
    return b""


def latin1(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise Refusal("_codecs.encode is read only as numpy's latin-1 byte strings",
                      unsafe=True)
    return text.encode("latin-1")


# ---------------------------------------------------------------------------
# the allow-list


def _np_names(mod: str, name: str) -> list[tuple[str, str]]:
    return [(f"numpy.{sub}.{mod}", name) for sub in ("core", "_core")]


SAFE_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): NDARRAY,
    ("numpy", "dtype"): _make_dtype,
    **{k: "reconstruct" for k in _np_names("multiarray", "_reconstruct")},
    **{k: _scalar for k in _np_names("multiarray", "scalar")},
    **{k: "frombuffer" for k in _np_names("numeric", "_frombuffer")},
    ("numpy", "float32"): _scalar_type(np.float32),
    ("numpy", "float64"): _scalar_type(np.float64),
    ("numpy", "int64"): _scalar_type(np.int64),
    ("numpy", "str_"): _scalar_type(np.str_),
    ("numpy.dtypes", "Float32DType"): _dtype_class("f4"),
    ("numpy.dtypes", "Float64DType"): _dtype_class("f8"),
    ("numpy.dtypes", "Int64DType"): _dtype_class("i8"),
    ("numpy.dtypes", "StrDType"): _dtype_class("U"),
    ("numpy.dtypes", "ObjectDType"): _dtype_class("O8"),
    ("_codecs", "encode"): latin1,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): "bytearray",
    ("builtins", "bytes"): _empty_bytes,
}
"""Every name a pickle may mention, and what it gets instead of an import."""


# ---------------------------------------------------------------------------
# stubs -> data

_LEAVES = (str, bytes, bytearray, int, float, complex, type(None))


def resolve(data: object, path: str) -> object:
    """Replace the unpickler's stubs by arrays (object arrays by nested lists)
    and refuse anything that is not plain data or nests too deep."""
    memo: dict[int, object] = {}
    alive: list = []  # temporaries stay alive so that their ids are not reused

    def walk(obj, where: list, depth: int):
        out: Any  # the plain-data value that replaces obj
        key = id(obj)
        if key in memo:
            return memo[key]
        if depth > MAX_DEPTH:
            raise MMSAFormatError(
                f"{path}: {key_path(where)}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(obj, Payload):
            return bytes(obj.buf)
        if isinstance(obj, _LEAVES) or (
                isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind in ARRAY_KINDS):
            return obj
        if isinstance(obj, ArrayStub):
            if obj.value is None:
                raise UnsafePickleError(f"{path}: {key_path(where)}: a numpy array without data")
            out = obj.value
            if isinstance(out, ObjectArray):
                alive.append(out.nested())
                out = walk(alive[-1], where, depth)
        elif isinstance(obj, Mapping):
            out = {}
            memo[key] = out
            for k, v in obj.items():
                if not isinstance(k, _LEAVES) or isinstance(k, bytearray):
                    raise UnsafePickleError(
                        f"{path}: {key_path(where)}: a dict key that is a {type(k).__name__}")
                out[k] = walk(v, [*where, k], depth + 1)
            return out
        elif isinstance(obj, list | tuple):
            out = [] if isinstance(obj, list) else None
            if out is not None:
                memo[key] = out
                out.extend(walk(v, where, depth + 1) for v in obj)
                return out
            out = tuple(walk(v, where, depth + 1) for v in obj)
        elif isinstance(obj, set | frozenset):
            for v in obj:
                if not isinstance(v, _LEAVES):
                    raise UnsafePickleError(
                        f"{path}: {key_path(where)}: a set holding a {type(v).__name__}")
            out = obj
        else:
            name = getattr(obj, "name", None) if isinstance(obj, Token) else None
            what = name or ("a numpy dtype" if isinstance(obj, DtypeStub)
                            else f"a {type(obj).__name__}")
            raise UnsafePickleError(f"{path}: {key_path(where)}: holds {what}, which is not data")
        memo[key] = out
        return out

    return walk(data, [], 0)
