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
The result is then validated (:mod:`simsbench.datasets._mmsa_validate`)
against everything a run relies on: 3-D features with ``L >= 1`` and
``D >= 1``, numeric dtypes, non-empty splits, equal sample counts within a
split and equal widths across splits, lengths, labels within range, ids.
Every refusal is one line, ``path: split/key: what is wrong``.

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
from simsbench.datasets._mmsa_validate import (
    LABEL_KEYS,
    Context,
    check_label_range,
    match_shapes,
    split_from_dict,
    unlabelled_from_mix,
)
from simsbench.datasets._plain_data import Budget
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


def _guess_kind(data: Mapping, path: str, train: Split) -> str:
    name = os.path.basename(path).lower()
    if "regression_labels_T" in data["train"] or "v2" in name or "sims" in name:
        has_mix = "train_mix" in data
        audio_dim = train.audio.shape[2]
        return "simsv2" if ("v2" in name or has_mix or audio_dim == 25) else "sims"
    if "mosei" in name or train.audio.shape[0] > 5000:
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
    ctx = Context(source, report, budget)
    if not isinstance(data, Mapping):
        raise MMSAFormatError(f"{source}: (top level): is a {type(data).__name__}, not a dict")
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise MMSAFormatError(
            f"{source}: missing split(s) {missing}; found keys {sorted(map(fmt_key, data))}"
        )
    splits: dict[str, Split] = {}
    raw_labels: dict[str, dict] = {}
    splits["train"], raw_labels["train"] = split_from_dict(data["train"], ctx, "train")
    text_dim = splits["train"].text.shape[2]
    for s in SPLITS[1:]:
        splits[s], raw_labels[s] = split_from_dict(data[s], ctx, s, text_dim=text_dim)
    for s in SPLITS[1:]:
        for m in MODALITIES:
            D, ref = splits[s].features(m).shape[2], splits["train"].features(m).shape[2]
            if D != ref:
                raise ctx.err(s, m, f"feature width D = {D} differs from train's {ref}")
    if kind == "auto":
        kind = _guess_kind(data, source, splits["train"])
    bound = 3.0 if kind in ("mosi", "mosei") else 1.0
    for s in SPLITS:
        splits[s].labels = {lab: check_label_range(y, ctx, s, LABEL_KEYS[lab], bound)
                            for lab, y in raw_labels[s].items()}
    if unlabelled is None and "train_mix" in data:
        unlabelled = unlabelled_from_mix(data["train_mix"], ctx)
    if unlabelled is not None:
        uctx = Context(unlabelled_source or source, report, budget)
        u, _ = split_from_dict(unlabelled, uctx, UNLABELLED, labelled=False,
                               text_dim=text_dim)
        splits[UNLABELLED] = match_shapes(u, splits["train"], uctx)
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
