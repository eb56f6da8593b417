"""Reading MMSA-format feature pickles safely, with validation and a cache.

The MMSA format (CH-SIMS ``unaligned_39.pkl``, CH-SIMS v2 ``ch-simsv2s.pkl``
plus the unlabelled ``ch-simsv2u.pkl``, MOSI/MOSEI ``aligned_50.pkl`` and
``unaligned_50.pkl``) is a pickle of ``{"train": {...}, "valid": {...},
"test": {...}}`` whose splits hold parallel arrays (reference-facts §1).

Pickles can execute code when loaded, so :func:`load_mmsa` never calls
:func:`pickle.load`: a restricted unpickler admits numpy arrays, dtypes and
scalars and the builtin containers, and refuses every other global with
:class:`UnsafePickleError`.  A validated file is cached as ``.npy`` files
that later loads memory-map copy-on-write: pages are read from disk as they
are used and shared with the operating system's file cache, writes to the
arrays stay private to the process, and the cache files are never modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from simsbench.datasets._base import (
    LABELS,
    MODALITIES,
    SPLITS,
    UNLABELLED,
    MultimodalDataset,
    Split,
)

CACHE_FORMAT = 1


class MMSAFormatError(ValueError):
    """A feature file is not a valid MMSA-format pickle.  The message names
    the file, split and key."""


class UnsafePickleError(MMSAFormatError, pickle.UnpicklingError):
    """A pickle asked to import something other than numpy data."""


_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "float32"),
    ("numpy", "float64"),
    ("numpy", "int64"),
    ("numpy", "str_"),
    ("numpy.dtypes", "Float32DType"),
    ("numpy.dtypes", "Float64DType"),
    ("numpy.dtypes", "Int64DType"),
    ("numpy.dtypes", "StrDType"),
    ("numpy.dtypes", "ObjectDType"),
    ("_codecs", "encode"),  # numpy's protocol-2 array payloads
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self._path}: refused to load: the pickle references {module}.{name}, "
            "which is not numpy data (MMSA feature files hold only arrays, lists and "
            "dicts); the file was not executed"
        )


def safe_load_pickle(path: str | os.PathLike) -> object:
    """Unpickle ``path`` admitting only numpy data and builtin containers.

    Raises
    ------
    UnsafePickleError
        If the pickle references any other global (it is never executed).
    MMSAFormatError
        If the file is truncated or not a pickle.
    """
    path = str(path)
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh, path).load()
    except UnsafePickleError:
        raise
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such feature file") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError) as exc:
        raise MMSAFormatError(
            f"{path}: cannot read the pickle (truncated or not an MMSA file): "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _sha256(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _err(where: str, split: str, key: str, msg: str) -> MMSAFormatError:
    return MMSAFormatError(f"{where}: split {split!r}, key {key!r}: {msg}")


def _as_features(arr, where, split, key, report) -> np.ndarray:
    try:
        a = np.asarray(arr)
        if a.dtype == object:
            a = a.astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise _err(where, split, key, f"not a numeric array ({exc})") from None
    if a.ndim != 3:
        raise _err(where, split, key, f"expected a 3-D array (N, L, D), got shape {a.shape}")
    a = a.astype(np.float32, copy=False)
    bad = ~np.isfinite(a)
    n_bad = int(bad.sum())
    if n_bad:
        if not a.flags.writeable:
            a = a.copy()
        a[bad] = 0.0
        report.append(f"{split}/{key}: replaced {n_bad} non-finite values (inf/NaN) by 0")
    return a


def _lengths_from_padding(a: np.ndarray) -> np.ndarray:
    nonzero = np.any(a != 0, axis=2)
    last = a.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, a.shape[1]).astype(np.int64)


def _lengths(raw, n, L, where, split, key, report) -> np.ndarray:
    lengths = np.asarray(raw)
    if lengths.shape != (n,):
        raise _err(where, split, key, f"expected {n} lengths, got shape {lengths.shape}")
    try:
        lengths = lengths.astype(np.int64)
    except (TypeError, ValueError):
        raise _err(where, split, key, "lengths are not integers") from None
    out = np.clip(lengths, 1, L)
    n_clip = int((out != lengths).sum())
    if n_clip:
        report.append(f"{split}/{key}: clipped {n_clip} lengths into [1, {L}]")
    return out


def _labels(raw, n, where, split, key, bound) -> np.ndarray:
    try:
        y = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise _err(where, split, key, "labels are not numbers") from None
    if y.shape != (n,):
        raise _err(where, split, key, f"expected {n} labels, got {y.shape[0]}")
    if not np.all(np.isfinite(y)):
        raise _err(where, split, key, f"{int((~np.isfinite(y)).sum())} labels are NaN or inf")
    if np.abs(y).max(initial=0) > bound + 1e-6:
        raise _err(
            where, split, key,
            f"labels outside [-{bound:g}, {bound:g}] (found {y.min():g}..{y.max():g})",
        )
    return y.astype(np.float32)


def _split_from_dict(
    d: Mapping, where: str, split: str, bound: float, report: list, labelled: bool = True,
    text_dim: int = 768,
) -> Split:
    if not isinstance(d, Mapping):
        raise MMSAFormatError(f"{where}: split {split!r} is a {type(d).__name__}, not a dict")
    missing = [k for k in ("audio", "vision") if k not in d]
    if "text" not in d and "text_bert" not in d:
        missing.insert(0, "text")
    if labelled and "regression_labels" not in d:
        missing.append("regression_labels")
    if missing:
        raise MMSAFormatError(
            f"{where}: split {split!r} lacks key(s) {missing}; found {sorted(d)}"
        )
    text_bert = None
    if "text_bert" in d:
        text_bert = np.asarray(d["text_bert"])
        if text_bert.ndim != 3 or text_bert.shape[1] != 3:
            raise _err(where, split, "text_bert", f"expected (N, 3, L), got {text_bert.shape}")
    feats = {}
    for m in MODALITIES:
        if m == "text" and "text" not in d:
            n_bert, L_bert = text_bert.shape[0], text_bert.shape[2]
            report.append(
                f"{split}/text: no precomputed BERT features; text is zero "
                "(only text_bert-mode models can use this part's text)"
            )
            feats[m] = np.zeros((n_bert, L_bert, text_dim), np.float32)
            continue
        feats[m] = _as_features(d[m], where, split, m, report)
    n = feats["text"].shape[0]
    for m in MODALITIES:
        if feats[m].shape[0] != n:
            raise _err(
                where, split, m,
                f"has {feats[m].shape[0]} samples but 'text' has {n}",
            )
    if text_bert is not None and text_bert.shape[0] != n:
        raise _err(where, split, "text_bert", f"has {text_bert.shape[0]} samples, expected {n}")
    lengths = {}
    for m in MODALITIES:
        L = feats[m].shape[1]
        key = f"{m}_lengths"
        if key in d:
            lengths[m] = _lengths(d[key], n, L, where, split, key, report)
        elif m == "text" and text_bert is not None:
            raw = text_bert[:, 1, :].sum(axis=1)
            lengths[m] = np.clip(raw.astype(np.int64), 1, L)
        else:
            lengths[m] = _lengths_from_padding(feats[m])
    labels = {}
    if labelled:
        labels["M"] = _labels(d["regression_labels"], n, where, split, "regression_labels", bound)
        for lab in LABELS[1:]:
            key = f"regression_labels_{lab}"
            if key in d:
                labels[lab] = _labels(d[key], n, where, split, key, bound)
    ids = np.asarray(d["id"]).astype(str) if "id" in d else np.array(
        [f"{split}_{i}" for i in range(n)]
    )
    if ids.shape != (n,):
        raise _err(where, split, "id", f"expected {n} ids, got shape {ids.shape}")
    raw_text = np.asarray(d["raw_text"]).astype(str) if "raw_text" in d else None
    return Split(
        text=feats["text"],
        audio=feats["audio"],
        vision=feats["vision"],
        text_lengths=lengths["text"],
        audio_lengths=lengths["audio"],
        vision_lengths=lengths["vision"],
        labels=labels,
        ids=ids,
        raw_text=raw_text,
        text_bert=None if text_bert is None else text_bert.astype(np.float32),
    )


def _guess_kind(data: Mapping, path: str) -> str:
    train = data["train"]
    name = os.path.basename(path).lower()
    if "regression_labels_T" in train or "v2" in name or "sims" in name:
        audio_dim = np.shape(train.get("audio", np.zeros((0, 0, 0))))[-1]
        has_mix = "train_mix" in data
        return "simsv2" if ("v2" in name or has_mix or audio_dim == 25) else "sims"
    if "mosei" in name or np.shape(train["audio"])[0] > 5000:
        return "mosei"
    return "mosi"


def from_mmsa_dict(
    data: Mapping,
    *,
    unlabelled: Mapping | None = None,
    name: str = "mmsa",
    kind: str = "auto",
    description: str = "",
    source: str = "<dict>",
    fingerprint: str = "",
    verbose: bool = False,
) -> MultimodalDataset:
    """Validate an MMSA-format dict and build a :class:`MultimodalDataset`.

    Non-finite feature values become 0 and out-of-range lengths are clipped;
    both are reported (a warning, and ``dataset.cleanup_report``).
    """
    where = source
    if not isinstance(data, Mapping):
        raise MMSAFormatError(f"{where}: top level is a {type(data).__name__}, not a dict")
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise MMSAFormatError(
            f"{where}: missing split(s) {missing}; found keys {sorted(map(str, data))}"
        )
    if kind == "auto":
        kind = _guess_kind(data, source)
    bound = 3.0 if kind in ("mosi", "mosei") else 1.0
    report: list[str] = []
    splits = {s: _split_from_dict(data[s], where, s, bound, report) for s in SPLITS}
    if unlabelled is None and "train_mix" in data:
        # AV-MC's internal layout: labelled rows (mask 1) then unlabelled (mask 0).
        mix = data["train_mix"]
        mask = np.asarray(mix.get("mask", []))
        if mask.size:
            keep = np.flatnonzero(mask == 0)
            unlabelled = {
                k: np.asarray(v)[keep] for k, v in mix.items()
                if k in ("text", "text_bert", "audio", "vision", "audio_lengths",
                         "vision_lengths", "id", "raw_text")
            }
    if unlabelled is not None:
        u = _split_from_dict(unlabelled, where, UNLABELLED, bound, report, labelled=False,
                             text_dim=splits["train"].text.shape[2])
        splits[UNLABELLED] = _match_shapes(u, splits["train"], where, report)
    for line in report:
        if verbose:
            print(f"[simsbench] {where}: {line}")
    if report and not verbose and not source.startswith("synthetic"):
        warnings.warn(f"{where}: " + "; ".join(report), stacklevel=3)
    if not fingerprint and source.startswith("synthetic"):
        fingerprint = hashlib.sha256(description.encode()).hexdigest()
    ds = MultimodalDataset(
        splits=splits,
        name=name,
        kind=kind,
        description=description or f"{source}",
        fingerprint=fingerprint,
        label_range=(-bound, bound),
    )
    ds.cleanup_report = report  # type: ignore[attr-defined]
    return ds


def _match_shapes(u: Split, train: Split, where: str, report: list) -> Split:
    """Pad or cut the unlabelled part's time axes to the supervised lengths."""
    for m in MODALITIES:
        a, ref = u.features(m), train.features(m)
        if a.shape[2] != ref.shape[2]:
            raise _err(
                where, UNLABELLED, m,
                f"feature dim {a.shape[2]} differs from train's {ref.shape[2]}",
            )
        L = ref.shape[1]
        if a.shape[1] != L:
            report.append(f"{UNLABELLED}/{m}: time axis {a.shape[1]} -> {L} to match train")
            if a.shape[1] > L:
                a = a[:, :L]
            else:
                a = np.concatenate(
                    [a, np.zeros((a.shape[0], L - a.shape[1], a.shape[2]), a.dtype)], axis=1
                )
            setattr(u, m, np.ascontiguousarray(a))
            setattr(u, f"{m}_lengths", np.clip(u.lengths(m), 1, L))
    return u


# ---------------------------------------------------------------------------
# on-disk cache

def default_cache_dir() -> Path:
    """``$SIMSBENCH_CACHE_DIR`` or ``~/.cache/simsbench``."""
    env = os.environ.get("SIMSBENCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "simsbench"


_SPLIT_ARRAYS = ("text", "audio", "vision", "text_lengths", "audio_lengths",
                 "vision_lengths", "ids", "raw_text", "text_bert")


def _cache_key(paths: list[Path]) -> str:
    h = hashlib.sha256(f"format{CACHE_FORMAT}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def _write_cache(ds: MultimodalDataset, folder: Path, meta: dict) -> None:
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for sname, sp in ds.splits.items():
        for key in _SPLIT_ARRAYS:
            val = getattr(sp, key)
            if val is not None:
                np.save(tmp / f"{sname}.{key}.npy", np.asarray(val), allow_pickle=False)
        for lab, val in sp.labels.items():
            np.save(tmp / f"{sname}.label_{lab}.npy", val, allow_pickle=False)
    meta = {**meta, "splits": list(ds.splits), "labels": {
        s: list(sp.labels) for s, sp in ds.splits.items()}}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process won the race: keep theirs
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _read_cache(folder: Path) -> MultimodalDataset:
    meta = json.loads((folder / "meta.json").read_text())

    def arr(name, mmap=True):
        f = folder / name
        if not f.exists():
            return None
        # copy-on-write: writable arrays (torch uses them without a copy) whose
        # writes never reach the cache file
        return np.load(f, mmap_mode="c" if mmap else None, allow_pickle=False)

    splits = {}
    for s in meta["splits"]:
        splits[s] = Split(
            text=arr(f"{s}.text.npy"),
            audio=arr(f"{s}.audio.npy"),
            vision=arr(f"{s}.vision.npy"),
            text_lengths=arr(f"{s}.text_lengths.npy", False),
            audio_lengths=arr(f"{s}.audio_lengths.npy", False),
            vision_lengths=arr(f"{s}.vision_lengths.npy", False),
            labels={lab: arr(f"{s}.label_{lab}.npy", False) for lab in meta["labels"][s]},
            ids=arr(f"{s}.ids.npy", False),
            raw_text=arr(f"{s}.raw_text.npy", False),
            text_bert=arr(f"{s}.text_bert.npy"),
        )
    ds = MultimodalDataset(
        splits=splits,
        name=meta["name"],
        kind=meta["kind"],
        description=meta["description"],
        fingerprint=meta["fingerprint"],
        label_range=tuple(meta["label_range"]),
    )
    ds.cleanup_report = meta.get("cleanup_report", [])  # type: ignore[attr-defined]
    return ds


def load_mmsa(
    path: str | os.PathLike,
    *,
    unlabelled: str | os.PathLike | None = None,
    kind: str = "auto",
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = False,
) -> MultimodalDataset:
    """Load an MMSA-format feature pickle.

    Parameters
    ----------
    path : path-like
        ``unaligned_39.pkl`` (CH-SIMS), ``ch-simsv2s.pkl`` (CH-SIMS v2
        supervised), or a MOSI/MOSEI ``aligned_50.pkl``/``unaligned_50.pkl``.
    unlabelled : path-like, default=None
        The CH-SIMS v2 unlabelled file (``ch-simsv2u.pkl``, a flat dict of
        ``text_bert``/``audio``/``vision``...); joined as the ``"unlabelled"``
        part.  AV-MC's internal ``train_mix`` split is recognised too.
    kind : {"auto", "sims", "simsv2", "mosi", "mosei"}, default="auto"
        Dataset conventions; guessed from the keys, shapes and file name.
    cache : bool, default=True
        Keep a validated copy as ``.npy`` files and memory-map it
        (copy-on-write) on later loads of the same, unchanged file (keyed on
        path, size and mtime).
    cache_dir : path-like, default=None
        Where the cache lives; :func:`default_cache_dir` when None.
    verbose : bool, default=False
        Print the clean-up report (non-finite values replaced, lengths
        clipped) instead of warning once.

    Returns
    -------
    dataset : MultimodalDataset
        Its ``description`` names the file and its SHA-256.

    Raises
    ------
    UnsafePickleError
        If the pickle references anything but numpy data (never executed).
    MMSAFormatError
        For a truncated file, a missing split or key, inconsistent sample
        counts, non-3-D features or labels out of range; the message names
        the file, split and key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such feature file")
    paths = [path] + ([Path(unlabelled)] if unlabelled else [])
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such feature file")
    folder = Path(cache_dir or default_cache_dir()) / "mmsa" / _cache_key(paths)
    if cache and (folder / "meta.json").exists():
        try:
            ds = _read_cache(folder)
            if ds.cleanup_report and verbose:  # type: ignore[attr-defined]
                for line in ds.cleanup_report:  # type: ignore[attr-defined]
                    print(f"[simsbench] {path}: {line} (cached)")
            return ds
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # a damaged cache is rebuilt from the file below
    data = safe_load_pickle(path)
    udata = safe_load_pickle(unlabelled) if unlabelled else None
    sha = _sha256(path)
    desc = f"{path.name} (sha256 {sha})"
    if unlabelled:
        usha = _sha256(unlabelled)
        desc += f" + unlabelled {Path(unlabelled).name} (sha256 {usha})"
        sha = hashlib.sha256((sha + usha).encode()).hexdigest()
    ds = from_mmsa_dict(
        data, unlabelled=udata, name=path.name, kind=kind, description=desc,
        source=str(path), fingerprint=sha, verbose=verbose,
    )
    if cache:
        try:
            _write_cache(ds, folder, {
                "name": ds.name, "kind": ds.kind, "description": ds.description,
                "fingerprint": ds.fingerprint, "label_range": list(ds.label_range),
                "cleanup_report": ds.cleanup_report,  # type: ignore[attr-defined]
                "source": str(path.resolve()),
            })
        except OSError as exc:
            warnings.warn(f"could not write the feature cache {folder}: {exc}", stacklevel=2)
    return ds


def write_mmsa(data: Mapping, path: str | os.PathLike) -> Path:
    """Write an MMSA-format dict (e.g. from :func:`make_synthetic_mmsa`) as a
    pickle, the way the released files are laid out."""
    path = Path(path)
    with open(path, "wb") as fh:
        pickle.dump(dict(data), fh, protocol=4)
    return path
