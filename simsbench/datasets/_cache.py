"""The on-disk cache of validated MMSA files: keyed by content, checked on
every load, repaired atomically.

Design
------
**Key.**  An entry is named by the SHA-256 of the feature file(s) (and the
``kind`` asked for), so a file rewritten in place -- even with the same size
and modification time -- gets a new entry, and the description of a dataset
always shows the digest of the bytes it was built from.

**Digest without rereading the file.**  Hashing a SIMS-sized pickle (0.7 GiB)
costs about 0.6-1.5 s, twice the whole cached load, so the digest of a file
is remembered in a small index (``digests/``) together with the file's
``(inode, size, mtime_ns, ctime_ns)``, and reused while all four are
unchanged.  ``mtime`` can be set back by anyone (``touch -d``, ``rsync -t``,
``os.utime``), but ``ctime`` cannot: the kernel sets it to the current time
on every write, rename or ``utime`` call.  So any change to the file's
bytes changes its recorded signature and forces a rehash.  The one gap is a
write within the same timestamp tick as the recorded ``ctime`` (the "racy
git" problem); a digest is therefore only remembered for files whose
``ctime`` is more than :data:`RACY_SECONDS` older than the moment hashing
started, and only if the signature did not change while hashing.  A file
younger than that is simply hashed again next time.

**Validation.**  Every cached array file's signature and SHA-256 are
recorded when it is written.  On every load the signature is compared (a
``stat`` call); where it differs -- the file was changed, truncated,
replaced or deleted, or merely copied or moved to another inode -- the
file's content is hashed: the same digest refreshes the recorded signature
(a moved cache is not rebuilt), another digest marks the entry damaged.
Every load then checks that each header gives the recorded shape and dtype
and that the data is what a validated load produces: finite features (one
``min``/``max`` pass over the memory map, about 0.1 s for SIMS), lengths
within ``[1, L]``, finite labels within the dataset's label range,
consistent sample counts and widths.  The metadata file carries its own
SHA-256.  A bad entry is rebuilt from the pickle with a warning.

**Atomic replacement.**  The arrays of an entry live in a fresh directory
``<key>.<token>/``; the entry is committed by atomically replacing
``<key>.json``, which names that directory; the previous directory is
removed afterwards.  A reader sees either the old or the new entry, never a
mixture; memory maps of removed files stay valid on POSIX systems.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from simsbench.datasets._base import MODALITIES, MultimodalDataset, Split

CACHE_FORMAT = 2
"""Bumped whenever the cache layout or the validation of the data changes."""

RACY_SECONDS = 2.0
"""Digests are remembered only for files whose ctime is older than this."""

_SPLIT_ARRAYS = ("text", "audio", "vision", "text_lengths", "audio_lengths",
                 "vision_lengths", "ids", "raw_text", "text_bert")
_MEMMAPPED = ("text", "audio", "vision", "text_bert")


class CacheDamaged(Exception):
    """A cache entry failed validation; the message says why.

    ``replaced`` is True when another process committed a new version of the
    entry while it was being read (reading again is enough).
    """

    def __init__(self, msg: str, replaced: bool = False):
        super().__init__(msg)
        self.replaced = replaced


def default_cache_dir() -> Path:
    """``$SIMSBENCH_CACHE_DIR`` or ``~/.cache/simsbench``."""
    env = os.environ.get("SIMSBENCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "simsbench"


def signature(st: os.stat_result) -> list[int]:
    """What changes whenever a file's bytes change (the device number is left
    out: it is not stable across remounts of network file systems)."""
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    """SHA-256 of a file, read in 16 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _atomic_write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=1))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


class DigestIndex:
    """Remembered SHA-256 digests of source files (see the module docstring).

    Parameters
    ----------
    folder : path-like or None
        Where the index lives; None hashes every time.
    """

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = Path(folder) if folder is not None else None

    def _entry(self, path: Path) -> Path:
        name = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self.folder / f"{name}.json"  # type: ignore[operator]

    def digest(self, path: str | os.PathLike) -> tuple[str, list[int]]:
        """``(sha256, signature)`` of ``path``, hashing only when needed."""
        path = Path(path).resolve()
        started = time.time_ns()
        sig = signature(path.stat())
        if self.folder is not None:
            try:
                entry = json.loads(self._entry(path).read_text())
                if entry["path"] == str(path) and entry["signature"] == sig:
                    return str(entry["sha256"]), sig
            except (OSError, ValueError, KeyError, TypeError):
                pass
        sha = sha256_file(path)
        after = signature(path.stat())
        settled = started - max(sig[2], sig[3]) > RACY_SECONDS * 1e9
        if self.folder is not None and after == sig and settled:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                _atomic_write_json(self._entry(path), {
                    "path": str(path), "signature": sig, "sha256": sha})
            except OSError:
                pass  # a read-only cache still works, it just hashes again
        return sha, after


def entry_key(digests: list[str], kind: str) -> str:
    """The cache entry of these file digests read with ``kind``."""
    text = f"mmsa-cache{CACHE_FORMAT}|{kind}|" + "|".join(digests)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _self_check(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "check"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_entry(root: Path, key: str, ds: MultimodalDataset, info: dict) -> Path:
    """Save ``ds`` as entry ``key`` under ``root``, replacing any previous one
    atomically; returns the entry's array directory."""
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{key}.{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    try:
        splits: dict[str, dict[str, Any]] = {}
        for sname, sp in ds.splits.items():
            arrays = {}
            values = {k: getattr(sp, k) for k in _SPLIT_ARRAYS}
            values.update({f"label_{lab}": v for lab, v in sp.labels.items()})
            for name, val in values.items():
                if val is None:
                    continue
                val = np.asarray(val)
                fname = f"{sname}.{name}.npy"
                np.save(folder / fname, val, allow_pickle=False)
                arrays[name] = {"file": fname, "shape": list(val.shape),
                                "dtype": val.dtype.str}
            splits[sname] = {"arrays": arrays, "labels": list(sp.labels)}
        # signatures after every file is closed (ctime settles at the last write)
        for entry in splits.values():
            for rec in entry["arrays"].values():
                rec["sha256"] = sha256_file(folder / rec["file"])
                rec["signature"] = signature((folder / rec["file"]).stat())
        meta = {**info, "format": CACHE_FORMAT, "key": key, "dir": folder.name,
                "name": ds.name, "kind": ds.kind, "description": ds.description,
                "fingerprint": ds.fingerprint, "label_range": list(ds.label_range),
                "cleanup_report": list(getattr(ds, "cleanup_report", [])),
                "splits": splits}
        meta["check"] = _self_check(meta)
        meta_path = root / f"{key}.json"
        old_dir = None
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            old_dir = json.loads(meta_path.read_text())["dir"]
        _atomic_write_json(meta_path, meta)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if old_dir and old_dir != folder.name and old_dir.startswith(f"{key}."):
        shutil.rmtree(root / old_dir, ignore_errors=True)
    _remove_abandoned(root, key, keep=folder.name)
    return folder


def cached_kind(paths: list[str], cache_dir: str | os.PathLike | None = None) -> str | None:
    """The kind recorded in the cache entry of these feature files (as
    :func:`~simsbench.datasets.load_mmsa` with ``kind="auto"`` guessed it),
    read from the entry's metadata without loading any array; None when the
    files were never cached."""
    root = Path(cache_dir or default_cache_dir()) / "mmsa"
    try:
        digests = [DigestIndex(root / "digests").digest(p)[0] for p in paths]
        meta = json.loads((root / f"{entry_key(digests, 'auto')}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("check") != _self_check(meta):
        return None
    return meta.get("kind")


def _remove_abandoned(root: Path, key: str, keep: str, age: float = 3600.0) -> None:
    """Array directories of ``key`` left by interrupted writers, and entries
    of the first cache format (``<32 hex digits>/meta.json``, keyed by path,
    size and mtime), which no load reads any more."""
    now = time.time()
    for d in root.glob(f"{key}.*"):
        if d.is_dir() and d.name != keep:
            with contextlib.suppress(OSError):
                if now - d.stat().st_mtime > age:
                    shutil.rmtree(d, ignore_errors=True)
    for d in root.iterdir():
        if (len(d.name) == 32 and all(c in "0123456789abcdef" for c in d.name)
                and (d / "meta.json").is_file()):
            shutil.rmtree(d, ignore_errors=True)


def read_entry(root: Path, key: str) -> MultimodalDataset | None:
    """The dataset cached as ``key``, validated; None when there is none.

    Raises
    ------
    CacheDamaged
        When the entry exists but fails any check.
    """
    meta_path = root / f"{key}.json"
    try:
        text = meta_path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CacheDamaged(f"cannot read {meta_path.name}: {exc}") from None
    try:
        meta = json.loads(text)
        if meta.get("check") != _self_check(meta):
            raise CacheDamaged(f"{meta_path.name} was modified (its checksum differs)")
        if meta["format"] != CACHE_FORMAT or meta["key"] != key:
            raise CacheDamaged(f"{meta_path.name} is of another format or entry")
        folder = root / meta["dir"]
        moved: list[dict] = []
        splits = {s: _read_split(folder, s, entry, moved) for s, entry in meta["splits"].items()}
        ds = MultimodalDataset(
            splits=splits, name=meta["name"], kind=meta["kind"],
            description=meta["description"], fingerprint=meta["fingerprint"],
            label_range=tuple(meta["label_range"]),
        )
        check_dataset(ds)
        if moved:  # same bytes under new signatures: remember them
            for rec in moved:
                rec["signature"] = rec.pop("new_signature")
            meta["check"] = _self_check(meta)
            with contextlib.suppress(OSError):
                _atomic_write_json(meta_path, meta)
    except CacheDamaged as exc:
        with contextlib.suppress(OSError):
            if meta_path.read_text() != text:
                raise CacheDamaged(str(exc), replaced=True) from None
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CacheDamaged(f"{meta_path.name} is malformed ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:120]})") from None
    ds.cleanup_report = list(meta.get("cleanup_report", []))  # type: ignore[attr-defined]
    return ds


def _read_split(folder: Path, sname: str, entry: dict, moved: list) -> Split:
    values: dict[str, Any] = {}
    for name, rec in entry["arrays"].items():
        f = folder / rec["file"]
        try:
            sig = signature(f.stat())
        except FileNotFoundError:
            raise CacheDamaged(f"{rec['file']} is missing") from None
        if sig != rec["signature"]:
            if sig[1] != rec["signature"][1] or sha256_file(f) != rec["sha256"]:
                raise CacheDamaged(f"{rec['file']} changed after it was written")
            rec["new_signature"] = sig
            moved.append(rec)
        try:
            # copy-on-write maps: writable arrays (torch uses them without a
            # copy) whose writes never reach the cache file
            arr = np.load(f, mmap_mode="c" if name in _MEMMAPPED else None,
                          allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise CacheDamaged(f"{rec['file']} cannot be read "
                               f"({' '.join(str(exc).split())[:120]})") from None
        if list(arr.shape) != rec["shape"] or arr.dtype.str != rec["dtype"]:
            raise CacheDamaged(f"{rec['file']} holds a {arr.dtype} array of shape "
                               f"{arr.shape}, not {rec['dtype']} {tuple(rec['shape'])}")
        values[name] = arr
    missing = [k for k in ("text", "audio", "vision", "text_lengths", "audio_lengths",
                           "vision_lengths", "ids") if k not in values]
    if missing:
        raise CacheDamaged(f"split {sname!r} lacks {missing}")
    labels = {}
    for lab in entry["labels"]:
        if f"label_{lab}" not in values:
            raise CacheDamaged(f"split {sname!r} lacks label {lab}")
        labels[lab] = values.pop(f"label_{lab}")
    arrays: dict[str, Any] = {k: values.get(k) for k in _SPLIT_ARRAYS}
    return Split(labels=labels, **arrays)


def _all_finite(a: np.ndarray) -> bool:
    """One ``min`` and one ``max`` pass: NaN propagates, inf shows."""
    if a.size == 0:
        return True
    return bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def check_dataset(ds: MultimodalDataset) -> None:
    """The invariants a validated load guarantees, checked cheaply.

    Raises
    ------
    CacheDamaged
        Naming the split and array that break one.
    """
    lo, hi = ds.label_range
    widths: dict[str, int] = {}
    for sname, sp in ds.splits.items():
        n = sp.n_samples
        if n < 1:
            raise CacheDamaged(f"{sname}: no samples")
        for m in MODALITIES:
            a, lengths = sp.features(m), sp.lengths(m)
            if a.ndim != 3 or a.dtype != np.float32 or a.shape[0] != n or min(a.shape) < 1:
                raise CacheDamaged(f"{sname}/{m}: a {a.dtype} array of shape {a.shape}")
            if widths.setdefault(m, a.shape[2]) != a.shape[2]:
                raise CacheDamaged(f"{sname}/{m}: width {a.shape[2]}, not {widths[m]}")
            if not _all_finite(a):
                raise CacheDamaged(f"{sname}/{m}: non-finite values")
            if (lengths.shape != (n,) or lengths.dtype != np.int64
                    or lengths.min() < 1 or lengths.max() > a.shape[1]):
                raise CacheDamaged(f"{sname}/{m}_lengths: outside [1, {a.shape[1]}]")
        if sp.text_bert is not None and (
                sp.text_bert.shape[:2] != (n, 3) or not _all_finite(sp.text_bert)):
            raise CacheDamaged(f"{sname}/text_bert: shape {sp.text_bert.shape} or "
                               "non-finite values")
        if sp.ids is None or sp.ids.shape != (n,) or sp.ids.dtype.kind != "U":
            raise CacheDamaged(f"{sname}/ids: not {n} strings")
        if sp.raw_text is not None and sp.raw_text.shape != (n,):
            raise CacheDamaged(f"{sname}/raw_text: not {n} strings")
        for lab, y in sp.labels.items():
            if y.shape != (n,) or y.dtype != np.float32:
                raise CacheDamaged(f"{sname}/label {lab}: a {y.dtype} array of shape {y.shape}")
            if not _all_finite(y) or y.min() < lo - 1e-6 or y.max() > hi + 1e-6:
                raise CacheDamaged(f"{sname}/label {lab}: values outside [{lo:g}, {hi:g}]")
