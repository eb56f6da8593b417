"""Validating the parts of an MMSA-format dict: one split, and the unlabelled part.

:func:`split_from_dict` checks everything a run relies on in one split of a
feature file (the layout MMSA's ``src/MMSA/data_loader.py`` reads): 3-D
numeric features with ``L >= 1`` and ``D >= 1``, equal sample counts, lengths,
labels, ids and transcripts.  It repairs what can be repaired (non-finite
features become 0, out-of-range lengths are clipped, integer or list-valued
features are converted) and notes each repair in the load's report; anything
else raises :class:`~simsbench.datasets.MMSAFormatError` naming
``path: split/key``.  :func:`unlabelled_from_mix` and :func:`match_shapes`
do the same for the CH-SIMS v2 unlabelled part.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from simsbench.datasets._base import MODALITIES, UNLABELLED, Split
from simsbench.datasets._format_errors import MMSAFormatError, fmt_key
from simsbench.datasets._plain_data import Budget, to_array

LABEL_KEYS = {"M": "regression_labels", **{lab: f"regression_labels_{lab}" for lab in "TAV"}}


class Context:
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


def _numeric(a: np.ndarray, ctx: Context, split: str, key: str, what: str,
             allow_bool: bool = True) -> None:
    kind = a.dtype.kind
    if kind in "US":
        raise ctx.err(split, key, f"holds text ({a.dtype}), not {what}")
    if kind == "c":
        raise ctx.err(split, key, f"holds complex numbers, not {what}")
    if kind not in ("biuf" if allow_bool else "iuf"):
        raise ctx.err(split, key, f"has dtype {a.dtype}, not {what}")


def _as_features(value, ctx: Context, split: str, key: str) -> np.ndarray:
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


def _lengths(raw, n: int, L: int, ctx: Context, split: str, key: str) -> np.ndarray:
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


def _labels(raw, n: int, ctx: Context, split: str, key: str) -> np.ndarray:
    y, _ = ctx.array(raw, split, key)
    _numeric(y, ctx, split, key, "label numbers", allow_bool=False)
    y = y.astype(np.float64).reshape(-1)
    if y.shape != (n,):
        raise ctx.err(split, key, f"expected {n} labels, got {y.shape[0]}")
    if not np.all(np.isfinite(y)):
        raise ctx.err(split, key, f"{int((~np.isfinite(y)).sum())} labels are NaN or inf")
    return y


def check_label_range(y: np.ndarray, ctx: Context, split: str, key: str, bound: float):
    if np.abs(y).max(initial=0) > bound + 1e-6:
        raise ctx.err(split, key,
                      f"labels outside [-{bound:g}, {bound:g}] (found {y.min():g}..{y.max():g})")
    return y.astype(np.float32)


_SCALARS = (str, bytes, int, float, complex, type(None), np.generic)


def _strings(raw, n: int, ctx: Context, split: str, key: str) -> np.ndarray:
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


def split_from_dict(
    d, ctx: Context, split: str, labelled: bool = True, text_dim: int = 768,
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
        for lab, key in LABEL_KEYS.items():
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


_MIX_KEYS = ("text", "text_bert", "audio", "vision", "text_lengths", "audio_lengths",
             "vision_lengths", "id", "raw_text")


def unlabelled_from_mix(mix, ctx: Context) -> dict | None:
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


def match_shapes(u: Split, train: Split, ctx: Context) -> Split:
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
