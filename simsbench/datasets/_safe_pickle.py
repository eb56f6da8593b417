"""A pickle reader that builds data and nothing else.

MMSA feature files are pickles, and a pickle is a program: its ``REDUCE``
opcode calls whatever its ``GLOBAL`` opcode imported.  :func:`pickle.load`
must therefore never see them, and restricting the imports is not enough:
``numpy.ndarray(shape, dtype("O"), buffer)`` imports nothing dangerous yet
builds an object array whose element pointers are bytes the file chose, and
touching it reads arbitrary memory (a segmentation fault at best).  The same
call with zero strides turns one kilobyte into gigabytes, and a declared
length (``BINBYTES8``, ``FRAME``, ``bytearray(n)``) makes the reader allocate
before it reads.

:class:`SafeUnpickler` closes these holes by construction:

* No global is imported.  :data:`_SAFE_GLOBALS` maps the few names numpy
  arrays, dtypes and scalars pickle as (under their numpy 1.x, 2.x and
  protocol-2 ``__builtin__`` spellings) to small functions written here;
  every other name is refused with :class:`UnsafePickleError`.
* Arrays are rebuilt from their pickled state by :class:`_ArrayStub`: the
  dtype must be boolean, integer, floating, complex, ``str`` or ``bytes``
  (plain, native or byte-swapped; no fields, sub-arrays or metadata), the
  data must be exactly ``prod(shape) * itemsize`` bytes, and the array is a
  C- or Fortran-ordered view that covers that buffer -- no caller-chosen
  buffer, offset or strides.  An object-dtype array is accepted only in
  numpy's own list form (its items are ordinary unpickled objects) and comes
  back as nested lists, never as an object array.
* Every length the stream declares is checked against what is left of the
  file before anything is allocated (:class:`_BoundedReader`), so a file can
  never make the reader allocate more than its own size at a time.
* ``BUILD`` sets state only on the stubs above, and ``NEWOBJ``, ``INST``,
  ``OBJ``, persistent ids and out-of-band buffers are refused.
* :func:`resolve` turns the stubs into arrays and checks the result: only
  dicts, lists, tuples, sets, strings, bytes, numbers, ``None``, numpy
  scalars and the arrays above, nested at most :data:`MAX_DEPTH` levels.

:func:`to_array` then turns such a value into one array, refusing ragged
lists and charging what it allocates to a :class:`Budget` sized from the
file, so shared references (one list referenced a million times) cannot
multiply a small file into a large allocation.

Every refusal is one line, ``path: split/key: what is wrong``.  While the
stream is read, the split and key come from the unpickler's stack (the dict
keys pushed above the value being built); :func:`resolve` and
:func:`to_array` know them exactly.

This is the same idea as torch's ``weights_only`` unpickler (pytorch
``torch/_weights_only_unpickler.py``): build only known data types, never
call what the file names.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import mmap
import os
import pickle
import re
import struct
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

MAX_DEPTH = 32
"""Deepest container nesting accepted (numpy arrays have at most 64 axes;
an MMSA file nests dict -> dict -> array, or a few list levels)."""

_LARGE = 1 << 16
"""Payloads of at least this many bytes are read straight into fresh
(uninitialised) memory, a :class:`_Payload`, so the arrays built on them are
writable views of it: no zero fill, no copy."""

_ARRAY_KINDS = frozenset("biufcUS")


class MMSAFormatError(ValueError):
    """A feature file is not a valid MMSA-format pickle.

    The message is one line, ``path: split/key: what is wrong``.
    """


class UnsafePickleError(MMSAFormatError, pickle.UnpicklingError):
    """A pickle asked for something other than plain data (never executed)."""


class _Refusal(Exception):
    """Raised inside the unpickler; :func:`safe_load_pickle` adds the place."""

    def __init__(self, msg: str, unsafe: bool = False):
        super().__init__(msg)
        self.unsafe = unsafe


def fmt_key(key: object) -> str:
    """A dict key as it appears in a ``split/key`` location."""
    if isinstance(key, str) and key.isprintable() and "/" not in key and 0 < len(key) <= 60:
        return key
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def human(n: int) -> str:
    """``n`` bytes for a message: ``"1.5 GiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


# ---------------------------------------------------------------------------
# stubs built by the allowed globals


class _Payload:
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


class _Token:
    """A name the pickle may mention but never call (``numpy.ndarray``)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise _Refusal(
            f"the pickle calls {self.name} directly (an array over a buffer, offset "
            "and strides the file chose); only numpy's own array pickles are read",
            unsafe=True,
        )


_NDARRAY = _Token("numpy.ndarray")

_DTYPE_CODE = re.compile(r"^[<>|=]?(b1|\?|[iu][1248]|f[248]|c(8|16)|[US]\d*|O\d*)$")


class _DtypeStub:
    """``numpy.dtype(code, align, copy)`` and its ``BUILD`` state, checked."""

    __slots__ = ("code", "order", "elsize")

    def __init__(self, code: str):
        self.code = code
        self.order = "="
        self.elsize = -1

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise _Refusal("a numpy dtype with a state this reader does not know")
        _, order, subarray, names, fields, elsize = state[:6]
        if subarray is not None or names is not None or fields is not None:
            raise _Refusal("a structured numpy dtype (fields or sub-arrays); "
                           "only plain numeric and string arrays are read", unsafe=True)
        if len(state) == 9 and state[8]:
            raise _Refusal("a numpy dtype with metadata", unsafe=True)
        if order not in ("<", ">", "|", "=") or not isinstance(elsize, int):
            raise _Refusal("a malformed numpy dtype state")
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
                raise _Refusal(f"a string dtype of {size} bytes per item")
            chars = size // 4 if kind == "U" else size
            dt = np.dtype(f"{kind}{chars}")
        else:
            dt = np.dtype(code)
        order = self.order if self.order in "<>" else "="
        return dt.newbyteorder(order) if dt.itemsize > 1 and kind != "S" else dt


def _make_dtype(code=None, align=False, copy=True, *rest):
    if not isinstance(code, str) or not _DTYPE_CODE.match(code) or rest:
        raise _Refusal(f"numpy.dtype({code!r}): only plain numeric, bool, str and "
                       "bytes dtypes are read", unsafe=True)
    return _DtypeStub(code)


def _dtype_class(code: str):
    def make(*args):
        return _DtypeStub(code)

    return make


class _ObjectArray:
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


def _check_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    if (not isinstance(shape, tuple) or len(shape) > 64
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape)):
        raise _Refusal(f"an array shape that is not a tuple of integers ({type(shape).__name__})")
    if any(n < 0 for n in shape):
        raise _Refusal(f"an array with a negative dimension {shape}")
    return shape


def _raw_bytes(raw) -> bytes | bytearray:
    if isinstance(raw, str):  # Python 2 pickles: latin-1 text holding the bytes
        raw = raw.encode("latin-1")
    if not isinstance(raw, bytes | bytearray | _Payload):
        raise _Refusal(f"array data is a {type(raw).__name__}, not bytes")
    return raw


def _array_from_bytes(raw, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    need = math.prod(shape) * dtype.itemsize
    if len(raw) != need:
        raise _Refusal(
            f"an array of shape {shape} and dtype {dtype} needs {human(need)} of data "
            f"but the file gives {human(len(raw))}"
        )
    if need == 0:
        return np.zeros(shape, dtype)
    flat = np.frombuffer(raw.buf if isinstance(raw, _Payload) else raw, dtype=dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


class _ArrayStub:
    """What ``numpy.core.multiarray._reconstruct`` returns; ``BUILD`` fills it."""

    __slots__ = ("value", "limit")

    def __init__(self, limit: int):
        self.value = None
        self.limit = limit

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refusal("a numpy array with a state this reader does not know")
        if len(state) == 5:
            if state[0] != 1:
                raise _Refusal(f"a numpy array state of version {state[0]!r}")
            state = state[1:]
        shape, dtype, fortran, raw = state
        shape = _check_shape(shape)
        if not isinstance(dtype, _DtypeStub):
            raise _Refusal(f"a numpy array whose dtype is a {type(dtype).__name__}")
        if dtype.is_object:
            if not isinstance(raw, list):
                raise _Refusal(
                    "an object array whose contents are raw bytes (they would be read "
                    "as memory addresses)", unsafe=True)
            if len(raw) != math.prod(shape):
                raise _Refusal(f"an object array of shape {shape} with {len(raw)} items")
            self.value = _ObjectArray(shape, raw)
            return
        self.value = _array_from_bytes(_raw_bytes(raw), dtype.resolve(self.limit), shape,
                                       bool(fortran))


def _scalar(dtype, data=None):
    if not isinstance(dtype, _DtypeStub) or dtype.is_object:
        raise _Refusal("a numpy scalar that is not a number or a string", unsafe=True)
    return _array_from_bytes(_raw_bytes(data), dtype.resolve(1 << 20), (1,), False)[0]


def _scalar_type(tp):
    def make(value=0):
        if not isinstance(value, int | float | str | bool):
            raise _Refusal(f"numpy.{tp.__name__}() of a {type(value).__name__}")
        return tp(value)

    return make


def _empty_bytes(*args):
    if args:  # protocol 0-2 write only b"" this way (other bytes as _codecs.encode)
        raise _Refusal("bytes() with arguments", unsafe=True)
    return b""


def _latin1(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise _Refusal("_codecs.encode is read only as numpy's latin-1 byte strings",
                       unsafe=True)
    return text.encode("latin-1")


# ---------------------------------------------------------------------------
# the unpickler


class _BoundedReader:
    """Read from a file, refusing any request longer than what is left."""

    def __init__(self, fh, size: int, hasher=None):
        self.fh = fh
        self.size = size
        self.pos = 0
        self.hasher = hasher

    @property
    def left(self) -> int:
        return self.size - self.pos

    def check(self, n: int, what: str) -> None:
        if n > self.left:
            raise _Refusal(
                f"{what} declares {n:,} bytes at byte {self.pos:,} but the file has only "
                f"{self.left:,} left (truncated, or a size meant to exhaust memory)"
            )

    def _took(self, data) -> None:
        self.pos += len(data)
        if self.hasher is not None:
            self.hasher.update(data)

    def read(self, n: int) -> bytes:
        self.check(n, "the stream")
        data = self.fh.read(n)
        self._took(data)
        return data

    def readinto(self, buf) -> int:
        self.check(len(buf), "the stream")
        n = self.fh.readinto(buf)
        self._took(memoryview(buf)[:n])
        return n

    def readline(self) -> bytes:
        data = self.fh.readline()
        self._took(data)
        return data

    def finish(self) -> None:
        """Hash what follows ``STOP`` (the digest covers the whole file)."""
        if self.hasher is not None:
            while block := self.fh.read(1 << 24):
                self._took(block)


def _np_names(mod: str, name: str) -> list[tuple[str, str]]:
    return [(f"numpy.{sub}.{mod}", name) for sub in ("core", "_core")]


_SAFE_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): _NDARRAY,
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
    ("_codecs", "encode"): _latin1,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): "bytearray",
    ("builtins", "bytes"): _empty_bytes,
}
"""Every name a pickle may mention, and what it gets instead of an import."""


class SafeUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with every way to run code or over-allocate
    closed; see the module docstring.  Use :func:`safe_load_pickle`."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, reader: _BoundedReader, limit: int):
        super().__init__(reader, encoding="latin1")
        self._reader = reader
        self._limit = limit

    # -- names -------------------------------------------------------------
    def find_class(self, module: str, name: str):
        if self.proto < 3:  # protocol 2 spells builtins as __builtin__
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        found = _SAFE_GLOBALS.get((module, name))
        if found is None:
            raise _Refusal(
                f"refused to load: the pickle references {module}.{name}, which is not "
                "numpy data (MMSA feature files hold only arrays, lists and dicts); the "
                "file was not executed", unsafe=True)
        if found == "reconstruct":
            return self._reconstruct
        if found == "frombuffer":
            return self._frombuffer
        if found == "bytearray":
            return self._bytearray
        return found

    def _reconstruct(self, subtype=None, shape=None, typecode=None):
        if subtype is not _NDARRAY:
            raise _Refusal("numpy _reconstruct of something other than numpy.ndarray",
                           unsafe=True)
        return _ArrayStub(self._limit)

    def _frombuffer(self, buf=None, dtype=None, shape=None, order="C"):
        if not isinstance(dtype, _DtypeStub) or dtype.is_object:
            raise _Refusal("numpy _frombuffer with an object or unknown dtype", unsafe=True)
        if not isinstance(buf, bytes | bytearray | _Payload):
            raise _Refusal(f"numpy _frombuffer over a {type(buf).__name__}", unsafe=True)
        return _array_from_bytes(buf, dtype.resolve(self._limit), _check_shape(shape),
                                 order == "F")

    def _bytearray(self, source=b"", encoding=None):
        if isinstance(source, int) and not isinstance(source, bool):
            if source > self._reader.size:
                raise _Refusal(f"bytearray({source:,}) declares more bytes than the whole "
                               f"file holds ({self._reader.size:,})")
            raise _Refusal(f"bytearray({source:,}): a zero-filled buffer is not data",
                           unsafe=True)
        if isinstance(source, str):
            return bytearray(_latin1(source, encoding or "latin1"))
        if isinstance(source, _Payload):
            return bytearray(source.buf)
        if isinstance(source, bytes | bytearray):
            return bytearray(source)
        raise _Refusal(f"bytearray() of a {type(source).__name__}", unsafe=True)

    # -- opcodes -----------------------------------------------------------
    def _read_payload(self, n: int, what: str, mutable: bool):
        frame = self._unframer.current_frame
        if frame is not None:
            pos = frame.tell()
            end = frame.seek(0, io.SEEK_END)
            frame.seek(pos)
            if pos < end:  # inside a frame: at most what the frame holds
                if n > end - pos:
                    raise _Refusal(f"{what} declares {n:,} bytes but its frame has "
                                   f"{end - pos:,} left")
                data = self.read(n)
                return bytearray(data) if mutable else data
            self._unframer.current_frame = None
        self._reader.check(n, what)
        if n < _LARGE:
            data = self._reader.read(n)
            return bytearray(data) if mutable else data
        payload = _Payload(n)
        if self._reader.readinto(payload.buf) != n:
            raise _Refusal(f"{what}: the file ended early")
        return payload

    def _load_binbytes(self):
        (n,) = struct.unpack("<I", self.read(4))
        self.append(self._read_payload(n, "BINBYTES", False))

    def _load_binbytes8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        self.append(self._read_payload(n, "BINBYTES8", False))

    def _load_bytearray8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        self.append(self._read_payload(n, "BYTEARRAY8", True))

    def _load_frame(self):
        (n,) = struct.unpack("<Q", self.read(8))
        self._reader.check(n, "FRAME")
        self._unframer.load_frame(n)

    def _load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if not isinstance(inst, _ArrayStub | _DtypeStub):
            raise _Refusal(f"the pickle sets the state of a {type(inst).__name__} "
                           "(only numpy arrays and dtypes have one)", unsafe=True)
        inst.__setstate__(state)

    def _refuse_instance(self):
        raise _Refusal("the pickle creates a class instance (NEWOBJ/INST/OBJ); "
                       "MMSA files hold only arrays, lists and dicts", unsafe=True)

    def persistent_load(self, pid):
        raise _Refusal("the pickle refers to a persistent id", unsafe=True)

    dispatch[pickle.BINBYTES[0]] = _load_binbytes
    dispatch[pickle.BINBYTES8[0]] = _load_binbytes8
    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8
    dispatch[pickle.FRAME[0]] = _load_frame
    dispatch[pickle.BUILD[0]] = _load_build
    for _op in (pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.INST, pickle.OBJ):
        dispatch[_op[0]] = _refuse_instance
    del _op

    # -- where in the file ---------------------------------------------------
    def location(self) -> str:
        """The ``split/key`` path of the value being built, from the stack.

        A ``SETITEMS`` batch is a stack frame above its dict that holds
        ``key, value, key, ...``; ``SETITEM`` leaves ``dict, key`` on the
        stack.  Best effort: exact for the dicts of arrays MMSA files are.
        """
        frames = [*getattr(self, "metastack", []), getattr(self, "stack", [])]
        keys = []
        for i, frame in enumerate(frames):
            if i and frames[i - 1] and isinstance(frames[i - 1][-1], dict):
                key = None
                for j in range(0, len(frame), 2):
                    if not isinstance(frame[j], str):
                        break
                    key = frame[j]
                if key is not None:
                    keys.append(key)
            else:
                keys += [b for a, b in zip(frame, frame[1:], strict=False)
                         if isinstance(a, dict) and isinstance(b, str)]
        return "/".join(fmt_key(k) for k in keys) or "(top level)"


def safe_load_pickle(path: str | os.PathLike, *, hasher=None) -> object:
    """Unpickle ``path`` building only plain data (see the module docstring).

    Parameters
    ----------
    path : path-like
        The pickle.
    hasher : hashlib object, default=None
        Updated with every byte of the file as it is read (one pass computes
        the file's digest too).

    Returns
    -------
    data : object
        Dicts, lists, tuples, sets, str, bytes, numbers, None, numpy scalars
        and numeric/bool/str arrays; numpy object arrays come back as nested
        lists.

    Raises
    ------
    UnsafePickleError
        If the pickle names anything else or builds an array over a buffer it
        chose (it is never executed).
    MMSAFormatError
        If the file is truncated, not a pickle, declares sizes it does not
        hold, or nests deeper than :data:`MAX_DEPTH`.
    """
    path = str(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 -- closed below
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such feature file") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        reader = _BoundedReader(fh, size, hasher)
        up = SafeUnpickler(reader, limit=size)
        try:
            data = up.load()
            reader.finish()
        except _Refusal as exc:
            cls = UnsafePickleError if exc.unsafe else MMSAFormatError
            raise cls(f"{path}: {up.location()}: {exc}") from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError,
                KeyError, AttributeError, OverflowError, UnicodeDecodeError, struct.error,
                MemoryError, RecursionError) as exc:
            what = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise MMSAFormatError(
                f"{path}: {up.location()}: cannot read the pickle (truncated or not an "
                f"MMSA file): {type(exc).__name__}: {what}"
            ) from None
        finally:
            up.stack = up.metastack = []  # free the partial objects before reporting
    return resolve(data, path)


_LEAVES = (str, bytes, bytearray, int, float, complex, type(None))


def resolve(data: object, path: str) -> object:
    """Replace the unpickler's stubs by arrays (object arrays by nested lists)
    and refuse anything that is not plain data or nests too deep."""
    memo: dict[int, object] = {}
    alive: list = []  # temporaries stay alive so that their ids are not reused

    def walk(obj, where: list, depth: int):
        key = id(obj)
        if key in memo:
            return memo[key]
        if depth > MAX_DEPTH:
            raise MMSAFormatError(
                f"{path}: {_where(where)}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(obj, _Payload):
            return bytes(obj.buf)
        if isinstance(obj, _LEAVES) or (
                isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind in _ARRAY_KINDS):
            return obj
        if isinstance(obj, _ArrayStub):
            if obj.value is None:
                raise UnsafePickleError(f"{path}: {_where(where)}: a numpy array without data")
            out = obj.value
            if isinstance(out, _ObjectArray):
                alive.append(out.nested())
                out = walk(alive[-1], where, depth)
        elif isinstance(obj, Mapping):
            out = {}
            memo[key] = out
            for k, v in obj.items():
                if not isinstance(k, _LEAVES) or isinstance(k, bytearray):
                    raise UnsafePickleError(
                        f"{path}: {_where(where)}: a dict key that is a {type(k).__name__}")
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
                        f"{path}: {_where(where)}: a set holding a {type(v).__name__}")
            out = obj
        else:
            name = getattr(obj, "name", None) if isinstance(obj, _Token) else None
            what = name or ("a numpy dtype" if isinstance(obj, _DtypeStub)
                            else f"a {type(obj).__name__}")
            raise UnsafePickleError(f"{path}: {_where(where)}: holds {what}, which is not data")
        memo[key] = out
        return out

    return walk(data, [], 0)


def _where(keys: list) -> str:
    return "/".join(fmt_key(k) for k in keys) or "(top level)"


# ---------------------------------------------------------------------------
# values -> arrays


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


_NUMBER = (bool, int, float, complex, np.bool_, np.number)


def _leaf_kind(x) -> str:
    if isinstance(x, str | np.str_):
        return "U"
    if isinstance(x, bytes | np.bytes_):
        return "S"
    if isinstance(x, bool | np.bool_):
        return "b"
    if isinstance(x, int | np.integer):
        return "i"
    if isinstance(x, float | np.floating):
        return "f"
    if isinstance(x, complex | np.complexfloating):
        return "c"
    return ""


def _describe(value) -> tuple[tuple[int, ...], set, int]:
    """Shape, leaf kinds and longest string of a nested list, without building it."""
    memo: dict[int, tuple] = {}

    def walk(x, depth):
        if isinstance(x, np.ndarray):
            kind = x.dtype.kind
            if kind not in _ARRAY_KINDS:
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
        if value.dtype.kind in _ARRAY_KINDS:
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
