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

* No global is imported.  The allow-list
  (:data:`simsbench.datasets._pickle_stubs.SAFE_GLOBALS`) maps the few names
  numpy arrays, dtypes and scalars pickle as to small functions written
  there; every other name is refused with :class:`UnsafePickleError`.
* Arrays are rebuilt from their pickled state by
  :class:`~simsbench.datasets._pickle_stubs.ArrayStub`: the dtype must be
  boolean, integer, floating, complex, ``str`` or ``bytes`` (plain, native
  or byte-swapped; no fields, sub-arrays or metadata), the data must be
  exactly ``prod(shape) * itemsize`` bytes, and the array is a C- or
  Fortran-ordered view that covers that buffer -- no caller-chosen buffer,
  offset or strides.  An object-dtype array is accepted only in numpy's own
  list form (its items are ordinary unpickled objects) and comes back as
  nested lists, never as an object array.
* Every length the stream declares is checked against what is left of the
  file before anything is allocated (:class:`_BoundedReader`), so a file can
  never make the reader allocate more than its own size at a time.
* ``BUILD`` sets state only on the stubs above, and ``NEWOBJ``, ``INST``,
  ``OBJ``, persistent ids and out-of-band buffers are refused.
* :func:`~simsbench.datasets._pickle_stubs.resolve` turns the stubs into
  arrays and checks the result: only dicts, lists, tuples, sets, strings,
  bytes, numbers, ``None``, numpy scalars and the arrays above, nested at
  most :data:`~simsbench.datasets._plain_data.MAX_DEPTH` levels.

:func:`simsbench.datasets._plain_data.to_array` then turns such a value into
one array, within a budget sized from the file.  Every refusal is one line,
``path: split/key: what is wrong``.  While the stream is read, the split and
key come from the unpickler's stack (the dict keys pushed above the value
being built); ``resolve`` and ``to_array`` know them exactly.

This is the same idea as torch's ``weights_only`` unpickler (pytorch
``torch/_weights_only_unpickler.py``): build only known data types, never
call what the file names.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct

from simsbench.datasets._format_errors import (
    MMSAFormatError,
    UnsafePickleError,
    key_path,
)
from simsbench.datasets._pickle_stubs import (
    LARGE,
    NDARRAY,
    SAFE_GLOBALS,
    ArrayStub,
    DtypeStub,
    Payload,
    Refusal,
    array_from_bytes,
    check_shape,
    latin1,
    resolve,
)


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
            raise Refusal(
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
        found = SAFE_GLOBALS.get((module, name))
        if found is None:
            raise Refusal(
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
        if subtype is not NDARRAY:
            raise Refusal("numpy _reconstruct of something other than numpy.ndarray",
                          unsafe=True)
        return ArrayStub(self._limit)

    def _frombuffer(self, buf=None, dtype=None, shape=None, order="C"):
        if not isinstance(dtype, DtypeStub) or dtype.is_object:
            raise Refusal("numpy _frombuffer with an object or unknown dtype", unsafe=True)
        if not isinstance(buf, bytes | bytearray | Payload):
            raise Refusal(f"numpy _frombuffer over a {type(buf).__name__}", unsafe=True)
        return array_from_bytes(buf, dtype.resolve(self._limit), check_shape(shape),
                                order == "F")

    def _bytearray(self, source=b"", encoding=None):
        if isinstance(source, int) and not isinstance(source, bool):
            if source > self._reader.size:
                raise Refusal(f"bytearray({source:,}) declares more bytes than the whole "
                              f"file holds ({self._reader.size:,})")
            raise Refusal(f"bytearray({source:,}): a zero-filled buffer is not data",
                          unsafe=True)
        if isinstance(source, str):
            return bytearray(latin1(source, encoding or "latin1"))
        if isinstance(source, Payload):
            return bytearray(source.buf)
        if isinstance(source, bytes | bytearray):
            return bytearray(source)
        raise Refusal(f"bytearray() of a {type(source).__name__}", unsafe=True)

    # -- opcodes -----------------------------------------------------------
    def _read_payload(self, n: int, what: str, mutable: bool):
        frame = self._unframer.current_frame
        if frame is not None:
            pos = frame.tell()
            end = frame.seek(0, io.SEEK_END)
            frame.seek(pos)
            if pos < end:  # inside a frame: at most what the frame holds
                if n > end - pos:
                    raise Refusal(f"{what} declares {n:,} bytes but its frame has "
                                  f"{end - pos:,} left")
                data = self.read(n)
                return bytearray(data) if mutable else data
            self._unframer.current_frame = None
        self._reader.check(n, what)
        if n < LARGE:
            data = self._reader.read(n)
            return bytearray(data) if mutable else data
        payload = Payload(n)
        if self._reader.readinto(payload.buf) != n:
            raise Refusal(f"{what}: the file ended early")
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
        if not isinstance(inst, ArrayStub | DtypeStub):
            raise Refusal(f"the pickle sets the state of a {type(inst).__name__} "
                          "(only numpy arrays and dtypes have one)", unsafe=True)
        inst.__setstate__(state)

    def _refuse_instance(self):
        raise Refusal("the pickle creates a class instance (NEWOBJ/INST/OBJ); "
                      "MMSA files hold only arrays, lists and dicts", unsafe=True)

    def persistent_load(self, pid):
        raise Refusal("the pickle refers to a persistent id", unsafe=True)

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
        return key_path(keys)


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
        except Refusal as exc:
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
