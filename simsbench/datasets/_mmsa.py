"""Reading MMSA-format feature pickles safely, with validation and a cache.

The MMSA format (CH-SIMS ``unaligned_39.pkl``, CH-SIMS v2 ``ch-simsv2s.pkl``
plus the unlabelled ``ch-simsv2u.pkl``, MOSI/MOSEI ``aligned_50.pkl`` and
``unaligned_50.pkl``) is a pickle of ``{"train": {...}, "valid": {...},
"test": {...}}`` whose splits hold parallel arrays (the layout MMSA's
``src/MMSA/data_loader.py`` reads).

Pickles can execute code when loaded, so :func:`load_mmsa` never calls
:func:`pickle.load`: :mod:`simsbench.datasets._safe_pickle` builds plain
numeric and string arrays and containers only, with every size checked
against the file (:class:`UnsafePickleError`, :class:`MMSAFormatError`).
The result is then validated against everything a run relies on: 3-D
features with ``L >= 1`` and ``D >= 1``, numeric dtypes, non-empty splits,
equal sample counts within a split and equal widths across splits, lengths,
labels within range, ids.  Every refusal is one line,
``path: split/key: what is wrong``.

A validated file is cached as ``.npy`` files (:mod:`simsbench.datasets._cache`:
keyed by the file's SHA-256, validated on every load, rebuilt atomically when
damaged) that later loads memory-map copy-on-write: pages are read from disk
as they are used and shared with the operating system's file cache, writes
to the arrays stay private to the process, and the cache files are never
modified.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from simsbench.datasets._base import (
    MODALITIES,
    SPLITS,
    UNLABELLED,
    MultimodalDataset,
    Split,
)
from simsbench.datasets._cache import (
    CACHE_FORMAT,
    CacheDamaged,
    DigestIndex,
    default_cache_dir,
    entry_key,
    read_entry,
    signature,
    write_entry,
)
from simsbench.datasets._format_errors import MMSAFormatError, UnsafePickleError, fmt_key
from simsbench.datasets._plain_data import Budget, to_array
from simsbench.datasets._safe_pickle import safe_load_pickle

__all__ = [
    "CACHE_FORMAT",
    "MMSAFormatError",
    "UnsafePickleError",
    "default_cache_dir",
    "from_mmsa_dict",
    "load_mmsa",
    "safe_load_pickle",
    "write_mmsa",
]

_LABEL_KEYS = {"M": "regression_labels", **{lab: f"regression_labels_{lab}" for lab in "TAV"}}


class _Context:
    """Where values come from (for messages), the clean-up report and the
    allocation budget of one load."""

    def __init__(self, where: str, report: list, budget: Budget):
        self.where = where
        self.report = report
        self.budget = budget

    def err(self, split: str, key: str | None, msg: str) -> MMSAFormatError:
        place = split if key is None else f"{split}/{fmt_key(key)}"
        return MMSAFormatError(f"{self.where}: {place}: {msg}")

    def array(self, value, split: str, key: str) -> tuple[np.ndarray, bool]:
        return to_array(value, f"{self.where}: {split}/{fmt_key(key)}", self.budget)

    def note(self, split: str, key: str, msg: str) -> None:
        self.report.append(f"{split}/{key}: {msg}")


def _numeric(a: np.ndarray, ctx: _Context, split: str, key: str, what: str,
             allow_bool: bool = True) -> None:
    kind = a.dtype.kind
    if kind in "US":
        raise ctx.err(split, key, f"holds text ({a.dtype}), not {what}")
    if kind == "c":
        raise ctx.err(split, key, f"holds complex numbers, not {what}")
    if kind not in ("biuf" if allow_bool else "iuf"):
        raise ctx.err(split, key, f"has dtype {a.dtype}, not {what}")


def _as_features(value, ctx: _Context, split: str, key: str) -> np.ndarray:
    a, converted = ctx.array(value, split, key)
    _numeric(a, ctx, split, key, "feature numbers")
    if a.ndim != 3:
        raise ctx.err(split, key, f"expected a 3-D array (N, L, D), got shape {a.shape}")
    n, L, D = a.shape
    if n == 0:
        raise ctx.err(split, key, f"has no samples (shape {a.shape})")
    if L == 0 or D == 0:
        axis = "sequence length L" if L == 0 else "feature width D"
        raise ctx.err(split, key, f"has {axis} = 0 (shape {a.shape}); every run needs "
                                  "L >= 1 and D >= 1")
    if converted:
        ctx.note(split, key, f"stored as nested lists or an object array; converted to "
                             f"float32 {a.shape}")
    elif a.dtype.kind in "biu":
        ctx.note(split, key, f"{a.dtype} features cast to float32")
    a = a.astype(np.float32, copy=False)
    if not a.flags.writeable:
        a = a.copy()
    bad = ~np.isfinite(a)
    n_bad = int(bad.sum())
    if n_bad:
        a[bad] = 0.0
        ctx.note(split, key, f"replaced {n_bad} non-finite values (inf/NaN) by 0")
    return a


def _lengths_from_padding(a: np.ndarray) -> np.ndarray:
    nonzero = np.any(a != 0, axis=2)
    last = a.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, a.shape[1]).astype(np.int64)


def _lengths(raw, n: int, L: int, ctx: _Context, split: str, key: str) -> np.ndarray:
    lengths, _ = ctx.array(raw, split, key)
    _numeric(lengths, ctx, split, key, "lengths", allow_bool=False)
    if lengths.ndim == 2 and lengths.shape[1] == 1:
        lengths = lengths[:, 0]
    if lengths.shape != (n,):
        raise ctx.err(split, key, f"expected {n} lengths, got shape {lengths.shape}")
    if lengths.dtype.kind == "f" and not np.all(np.isfinite(lengths)):
        raise ctx.err(split, key, "lengths are NaN or inf")
    lengths = np.clip(lengths, -1, L + 1).astype(np.int64)
    out = np.clip(lengths, 1, L)
    n_clip = int((out != lengths).sum())
    if n_clip:
        ctx.note(split, key, f"clipped {n_clip} lengths into [1, {L}]")
    return out


def _labels(raw, n: int, ctx: _Context, split: str, key: str) -> np.ndarray:
    y, _ = ctx.array(raw, split, key)
    _numeric(y, ctx, split, key, "label numbers", allow_bool=False)
    y = y.astype(np.float64).reshape(-1)
    if y.shape != (n,):
        raise ctx.err(split, key, f"expected {n} labels, got {y.shape[0]}")
    if not np.all(np.isfinite(y)):
        raise ctx.err(split, key, f"{int((~np.isfinite(y)).sum())} labels are NaN or inf")
    return y


def _check_label_range(y: np.ndarray, ctx: _Context, split: str, key: str, bound: float):
    if np.abs(y).max(initial=0) > bound + 1e-6:
        raise ctx.err(split, key,
                      f"labels outside [-{bound:g}, {bound:g}] (found {y.min():g}..{y.max():g})")
    return y.astype(np.float32)


_SCALARS = (str, bytes, int, float, complex, type(None), np.generic)


def _strings(raw, n: int, ctx: _Context, split: str, key: str) -> np.ndarray:
    if isinstance(raw, list | tuple) and all(isinstance(x, _SCALARS) for x in raw):
        # ids and transcripts as written: any scalar becomes its text
        items = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in raw]
        width = max(map(len, items), default=1)
        ctx.budget.take(len(items) * 4 * width, f"{ctx.where}: {split}/{fmt_key(key)}",
                        f"{len(items)} strings of up to {width} characters")
        raw = np.array(items, dtype=f"U{max(width, 1)}")
    a, _ = ctx.array(raw, split, key)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.shape != (n,):
        raise ctx.err(split, key, f"expected {n} entries, got shape {a.shape}")
    if a.dtype.kind != "U":
        ctx.budget.take(n * 4 * 64, f"{ctx.where}: {split}/{key}", "text of the entries")
        a = a.astype(str)
    return a


def _split_from_dict(
    d, ctx: _Context, split: str, labelled: bool = True, text_dim: int = 768,
) -> tuple[Split, dict[str, np.ndarray]]:
    """Validate one split; returns it without labels, and the raw labels
    (checked against the label range once the kind is known)."""
    if not isinstance(d, Mapping):
        raise MMSAFormatError(f"{ctx.where}: {split}: is a {type(d).__name__}, not a dict")
    missing = [k for k in ("audio", "vision") if k not in d]
    if "text" not in d and "text_bert" not in d:
        missing.insert(0, "text")
    if labelled and "regression_labels" not in d:
        missing.append("regression_labels")
    if missing:
        found = sorted(map(fmt_key, d))
        raise MMSAFormatError(f"{ctx.where}: {split}: lacks key(s) {missing}; found {found}")
    text_bert = None
    if "text_bert" in d:
        text_bert, _ = ctx.array(d["text_bert"], split, "text_bert")
        _numeric(text_bert, ctx, split, "text_bert", "token ids")
        if text_bert.ndim != 3 or text_bert.shape[1] != 3:
            raise ctx.err(split, "text_bert", f"expected (N, 3, L), got {text_bert.shape}")
        if text_bert.shape[0] == 0:
            raise ctx.err(split, "text_bert", f"has no samples (shape {text_bert.shape})")
        if text_bert.shape[2] == 0:
            raise ctx.err(split, "text_bert", f"has sequence length L = 0 (shape "
                                              f"{text_bert.shape})")
        text_bert = text_bert.astype(np.float32)
        if not np.all(np.isfinite(text_bert)):
            raise ctx.err(split, "text_bert", "token ids are NaN or inf")
    feats = {}
    for m in MODALITIES:
        if m == "text" and "text" not in d:
            assert text_bert is not None  # a part without text has text_bert (checked above)
            n_bert, L_bert = text_bert.shape[0], text_bert.shape[2]
            ctx.note(split, "text", "no precomputed BERT features; text is zero "
                                    "(only text_bert-mode models can use this part's text)")
            ctx.budget.take(n_bert * L_bert * text_dim * 4, f"{ctx.where}: {split}/text",
                            "the zero text features")
            feats[m] = np.zeros((n_bert, L_bert, text_dim), np.float32)
            continue
        feats[m] = _as_features(d[m], ctx, split, m)
    n = feats["text"].shape[0]
    for m in MODALITIES:
        if feats[m].shape[0] != n:
            raise ctx.err(split, m, f"has {feats[m].shape[0]} samples but 'text' has {n}")
    if text_bert is not None and text_bert.shape[0] != n:
        raise ctx.err(split, "text_bert", f"has {text_bert.shape[0]} samples, expected {n}")
    lengths = {}
    for m in MODALITIES:
        L = feats[m].shape[1]
        key = f"{m}_lengths"
        if key in d:
            lengths[m] = _lengths(d[key], n, L, ctx, split, key)
        elif m == "text" and text_bert is not None:
            raw = text_bert[:, 1, :].sum(axis=1)
            lengths[m] = np.clip(raw, 1, L).astype(np.int64)
        else:
            lengths[m] = _lengths_from_padding(feats[m])
    labels = {}
    if labelled:
        for lab, key in _LABEL_KEYS.items():
            if key in d:
                labels[lab] = _labels(d[key], n, ctx, split, key)
    if "id" in d:
        ids = _strings(d["id"], n, ctx, split, "id")
    else:
        ids = np.array([f"{split}_{i}" for i in range(n)])
    raw_text = _strings(d["raw_text"], n, ctx, split, "raw_text") if "raw_text" in d else None
    sp = Split(
        text=feats["text"],
        audio=feats["audio"],
        vision=feats["vision"],
        text_lengths=lengths["text"],
        audio_lengths=lengths["audio"],
        vision_lengths=lengths["vision"],
        labels={},
        ids=ids,
        raw_text=raw_text,
        text_bert=text_bert,
    )
    return sp, labels


def _guess_kind(data: Mapping, path: str, train: Split) -> str:
    name = os.path.basename(path).lower()
    if "regression_labels_T" in data["train"] or "v2" in name or "sims" in name:
        has_mix = "train_mix" in data
        audio_dim = train.audio.shape[2]
        return "simsv2" if ("v2" in name or has_mix or audio_dim == 25) else "sims"
    if "mosei" in name or train.audio.shape[0] > 5000:
        return "mosei"
    return "mosi"


_MIX_KEYS = ("text", "text_bert", "audio", "vision", "text_lengths", "audio_lengths",
             "vision_lengths", "id", "raw_text")


def _unlabelled_from_mix(mix, ctx: _Context) -> dict | None:
    """AV-MC's internal ``train_mix``: labelled rows (mask 1), then unlabelled
    rows (mask 0); the unlabelled rows become the unlabelled part."""
    if not isinstance(mix, Mapping):
        raise MMSAFormatError(f"{ctx.where}: train_mix: is a {type(mix).__name__}, not a dict")
    if "mask" not in mix:
        return None
    mask, _ = ctx.array(mix["mask"], "train_mix", "mask")
    _numeric(mask, ctx, "train_mix", "mask", "a 0/1 mask")
    mask = mask.reshape(-1)
    keep = np.flatnonzero(mask == 0)
    if keep.size == 0:
        return None
    out = {}
    for k in _MIX_KEYS:
        if k in mix:
            arr, _ = ctx.array(mix[k], "train_mix", k)
            if arr.ndim == 0 or arr.shape[0] != mask.shape[0]:
                raise ctx.err("train_mix", k, f"has shape {arr.shape} but 'mask' has "
                                              f"{mask.shape[0]} rows")
            out[k] = arr[keep]
    return out


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
    unlabelled_source: str | None = None,
    budget: Budget | None = None,
) -> MultimodalDataset:
    """Validate an MMSA-format dict and build a :class:`MultimodalDataset`.

    Non-finite feature values become 0, out-of-range lengths are clipped and
    integer or list-valued features are converted; all are reported (a
    warning, and ``dataset.cleanup_report``).  Anything a run cannot use
    raises :class:`MMSAFormatError` with a one-line
    ``source: split/key: what is wrong``.

    Parameters
    ----------
    data : mapping
        ``{"train": {...}, "valid": {...}, "test": {...}}``.
    unlabelled : mapping, default=None
        A flat dict of the unlabelled part (CH-SIMS v2 (u)).
    name, kind, description, fingerprint : str
        As in :class:`MultimodalDataset`; ``kind="auto"`` guesses.
    source : str, default="<dict>"
        Where ``data`` came from, for messages.
    verbose : bool, default=False
        Print the clean-up report instead of warning once.
    unlabelled_source : str, default=None
        Where ``unlabelled`` came from (``source`` when None).
    budget : Budget, default=None
        What conversions may allocate (unlimited when None).

    Returns
    -------
    dataset : MultimodalDataset
    """
    return _from_dict(data, unlabelled=unlabelled, name=name, kind=kind,
                      description=description, source=source, fingerprint=fingerprint,
                      verbose=verbose, unlabelled_source=unlabelled_source, budget=budget,
                      stacklevel=4)


def _from_dict(data, *, unlabelled, name, kind, description, source, fingerprint, verbose,
               unlabelled_source, budget, stacklevel) -> MultimodalDataset:
    budget = budget if budget is not None else Budget(None)
    report: list[str] = []
    ctx = _Context(source, report, budget)
    if not isinstance(data, Mapping):
        raise MMSAFormatError(f"{source}: (top level): is a {type(data).__name__}, not a dict")
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise MMSAFormatError(
            f"{source}: missing split(s) {missing}; found keys {sorted(map(fmt_key, data))}"
        )
    splits: dict[str, Split] = {}
    raw_labels: dict[str, dict] = {}
    splits["train"], raw_labels["train"] = _split_from_dict(data["train"], ctx, "train")
    text_dim = splits["train"].text.shape[2]
    for s in SPLITS[1:]:
        splits[s], raw_labels[s] = _split_from_dict(data[s], ctx, s, text_dim=text_dim)
    for s in SPLITS[1:]:
        for m in MODALITIES:
            D, ref = splits[s].features(m).shape[2], splits["train"].features(m).shape[2]
            if D != ref:
                raise ctx.err(s, m, f"feature width D = {D} differs from train's {ref}")
    if kind == "auto":
        kind = _guess_kind(data, source, splits["train"])
    bound = 3.0 if kind in ("mosi", "mosei") else 1.0
    for s in SPLITS:
        splits[s].labels = {lab: _check_label_range(y, ctx, s, _LABEL_KEYS[lab], bound)
                            for lab, y in raw_labels[s].items()}
    if unlabelled is None and "train_mix" in data:
        unlabelled = _unlabelled_from_mix(data["train_mix"], ctx)
    if unlabelled is not None:
        uctx = _Context(unlabelled_source or source, report, budget)
        u, _ = _split_from_dict(unlabelled, uctx, UNLABELLED, labelled=False,
                                text_dim=text_dim)
        splits[UNLABELLED] = _match_shapes(u, splits["train"], uctx)
    for line in report:
        if verbose:
            print(f"[simsbench] {source}: {line}")
    if report and not verbose and not source.startswith("synthetic"):
        warnings.warn(f"{source}: " + "; ".join(report), stacklevel=stacklevel)
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


def _match_shapes(u: Split, train: Split, ctx: _Context) -> Split:
    """Pad or cut the unlabelled part's time axes to the supervised lengths."""
    for m in MODALITIES:
        a, ref = u.features(m), train.features(m)
        if a.shape[2] != ref.shape[2]:
            raise ctx.err(UNLABELLED, m,
                          f"feature width D = {a.shape[2]} differs from train's {ref.shape[2]}")
        L = ref.shape[1]
        if a.shape[1] != L:
            ctx.note(UNLABELLED, m, f"time axis {a.shape[1]} -> {L} to match train")
            if a.shape[1] > L:
                a = a[:, :L]
            else:
                ctx.budget.take(a.shape[0] * L * a.shape[2] * 4,
                                f"{ctx.where}: {UNLABELLED}/{m}", "padding to train's length")
                a = np.concatenate(
                    [a, np.zeros((a.shape[0], L - a.shape[1], a.shape[2]), a.dtype)], axis=1
                )
            setattr(u, m, np.ascontiguousarray(a))
            setattr(u, f"{m}_lengths", np.clip(u.lengths(m), 1, L))
    return u


# ---------------------------------------------------------------------------
# loading from files


def _parse(paths: list[Path], kind: str, verbose: bool, digests: list[str] | None):
    """Unpickle and validate; returns the dataset and the files' digests."""
    budget = Budget.for_files(sum(p.stat().st_size for p in paths))
    hashers = [None if digests else hashlib.sha256() for _ in paths]
    raw = [safe_load_pickle(p, hasher=h) for p, h in zip(paths, hashers, strict=True)]
    if not digests:
        digests = [h.hexdigest() for h in hashers]  # type: ignore[union-attr]
    path = paths[0]
    desc = f"{path.name} (sha256 {digests[0]})"
    fingerprint = digests[0]
    unl = None
    if len(paths) > 1:
        unl = raw[1]
        desc += f" + unlabelled {paths[1].name} (sha256 {digests[1]})"
        fingerprint = hashlib.sha256((digests[0] + digests[1]).encode()).hexdigest()
    ds = _from_dict(
        raw[0], unlabelled=unl, name=path.name, kind=kind, description=desc,
        source=str(path), fingerprint=fingerprint, verbose=verbose,
        unlabelled_source=str(paths[1]) if unl is not None else None, budget=budget,
        stacklevel=5,
    )
    return ds, digests


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
        Keep a validated copy as ``.npy`` files, keyed by the SHA-256 of the
        file(s), and memory-map it (copy-on-write) on later loads.  The
        digest is recomputed only when a file's inode, size, mtime or ctime
        changed; every load re-checks the cached arrays (file signatures,
        shapes, dtypes, finite values, lengths, label range) and rebuilds a
        damaged entry with a warning.  See :mod:`simsbench.datasets._cache`.
    cache_dir : path-like, default=None
        Where the cache lives; :func:`default_cache_dir` when None.
    verbose : bool, default=False
        Print the clean-up report (non-finite values replaced, lengths
        clipped, dtypes cast) instead of warning once.

    Returns
    -------
    dataset : MultimodalDataset
        Its ``description`` names the file and its SHA-256.

    Raises
    ------
    UnsafePickleError
        If the pickle holds anything but plain numeric/str data (it is never
        executed, and no object array is ever built).
    MMSAFormatError
        For a truncated file, sizes the file does not hold, a missing split
        or key, ragged or non-numeric arrays, inconsistent sample counts or
        widths, empty splits or axes, or labels out of range; the message is
        one line, ``path: split/key: what is wrong``.
    """
    paths = [Path(path)] + ([Path(unlabelled)] if unlabelled else [])
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such feature file")
    if not cache:
        return _parse(paths, kind, verbose, None)[0]
    root = Path(cache_dir or default_cache_dir()) / "mmsa"
    index = DigestIndex(root / "digests")
    found = [index.digest(p) for p in paths]
    digests = [sha for sha, _ in found]
    key = entry_key(digests, kind)
    ds = None
    for attempt in range(2):
        try:
            ds = read_entry(root, key)
            break
        except CacheDamaged as exc:
            if exc.replaced and attempt == 0:
                continue  # another process has just rebuilt it: read its version
            warnings.warn(f"{paths[0]}: the feature cache entry {root / key} is damaged "
                          f"({exc}); rebuilding it from the pickle", stacklevel=2)
    if ds is not None:
        if verbose:
            for line in ds.cleanup_report:  # type: ignore[attr-defined]
                print(f"[simsbench] {paths[0]}: {line} (cached)")
        return ds
    ds, _ = _parse(paths, kind, verbose, digests)
    for p, (_, sig) in zip(paths, found, strict=True):
        if signature(p.resolve().stat()) != sig:
            raise MMSAFormatError(f"{p}: (top level): the file changed while it was being "
                                  "read; load it again")
    try:
        write_entry(root, key, ds, {"sources": [
            {"path": str(p.resolve()), "sha256": d} for p, d in zip(paths, digests, strict=True)
        ]})
    except OSError as exc:
        warnings.warn(f"could not write the feature cache under {root}: {exc}", stacklevel=2)
    return ds


def write_mmsa(data: Mapping, path: str | os.PathLike) -> Path:
    """Write an MMSA-format dict (e.g. from :func:`make_synthetic_mmsa`) as a
    pickle, the way the released files are laid out."""
    path = Path(path)
    with open(path, "wb") as fh:
        pickle.dump(dict(data), fh, protocol=4)
    return path
