"""The data contract of simsbench: one container for every dataset.

A :class:`MultimodalDataset` holds the ``train``/``valid``/``test`` splits
(and optionally an ``unlabelled`` part) of an MMSA-format dataset.  Each
:class:`Split` carries zero-padded ``(N, L, D)`` float32 feature arrays per
modality, the real sequence lengths, the labels (``M`` and, where annotated,
the unimodal ``T``/``A``/``V``), clip ids and raw transcripts.

Estimators see a split through :meth:`MultimodalDataset.X` (a sliceable dict
of arrays, :class:`MultimodalX`) and :meth:`MultimodalDataset.y` (``M`` alone
or the ``(N, 4)`` ``M``/``T``/``A``/``V`` matrix).  Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

MODALITIES: tuple[str, ...] = ("text", "audio", "vision")
"""Feature keys of the MMSA format, in the papers' (text, audio, vision) order."""

LABELS: tuple[str, ...] = ("M", "T", "A", "V")
"""Label names: multimodal ``M`` and the unimodal text/audio/vision labels."""

SPLITS: tuple[str, ...] = ("train", "valid", "test")
"""The supervised splits of an MMSA-format file."""

UNLABELLED = "unlabelled"
"""Name of the optional unlabelled part (CH-SIMS v2.0 (u))."""

LENGTH_KEYS: dict[str, str] = {m: f"{m}_lengths" for m in MODALITIES}
"""Key of the real-length array of each modality in ``X``."""

LABEL_OF_MODALITY: dict[str, str] = {"text": "T", "audio": "A", "vision": "V"}
"""The unimodal label that annotates each modality."""


class MultimodalX(dict):
    """A dict of equal-length arrays that scikit-learn can slice.

    Behaves like :class:`skorch.helper.SliceDict` (and is accepted wherever
    skorch expects one) without importing torch: indexing with a string
    returns a value, indexing with a slice, boolean mask or index array returns
    a new ``MultimodalX`` with every value indexed along axis 0.  ``shape`` is
    ``(n_samples,)``, which is what scikit-learn's splitters need.

    Parameters
    ----------
    **arrays : array-like
        Values with a common first dimension.

    Examples
    --------
    >>> import numpy as np
    >>> X = MultimodalX(text=np.zeros((4, 3, 2)), text_lengths=np.ones(4))
    >>> X[1:3].shape
    (2,)
    """

    def __init__(self, **arrays):
        lengths = {np.shape(v)[0] for v in arrays.values()}
        if len(lengths) > 1:
            raise ValueError(
                "MultimodalX values must have the same number of samples, got "
                + ", ".join(f"{k}={np.shape(v)[0]}" for k, v in arrays.items())
            )
        self._len = lengths.pop() if lengths else 0
        super().__init__(**arrays)

    def __len__(self) -> int:
        return self._len

    @property
    def shape(self) -> tuple[int]:
        return (self._len,)

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(key)
        if isinstance(key, int | np.integer):
            raise ValueError("MultimodalX cannot be indexed by an integer; use [i:i+1].")
        return type(self)(**{k: v[key] for k, v in self.items()})

    def __setitem__(self, key, value):
        if not isinstance(key, str):
            raise TypeError(f"MultimodalX keys must be str, not {type(key).__name__}")
        if len(self) and np.shape(value)[0] != self._len:
            raise ValueError(
                f"cannot set {key!r} with {np.shape(value)[0]} samples "
                f"in a MultimodalX of {self._len}"
            )
        if not dict.__len__(self):
            self._len = np.shape(value)[0]
        super().__setitem__(key, value)

    def copy(self) -> MultimodalX:
        return type(self)(**self)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}: {getattr(v, 'shape', '?')}" for k, v in self.items())
        return f"MultimodalX({inner})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Mapping) or self.keys() != other.keys():
            return False
        return all(np.array_equal(np.asarray(v), np.asarray(other[k])) for k, v in self.items())

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Split:
    """One split of a multimodal dataset.

    Attributes
    ----------
    text, audio, vision : ndarray of shape (n_samples, L, D), float32
        Zero-padded frame-level features.  ``text`` holds BERT token features
        whose first position is the [CLS] vector.
    text_lengths, audio_lengths, vision_lengths : ndarray of shape (n_samples,)
        Real (unpadded) lengths, int64, each within ``[1, L]``.
    labels : dict of str to ndarray of shape (n_samples,), float32
        ``"M"`` always; ``"T"``, ``"A"``, ``"V"`` where annotated.  Empty for
        the unlabelled part.
    ids : ndarray of str
        Clip ids (``"<video>$_$<clip>"`` in MMSA files).
    raw_text : ndarray of str or None
        Transcripts.
    text_bert : ndarray of shape (n_samples, 3, L_t) or None
        BERT input ids, attention mask and segment ids.
    """

    text: np.ndarray
    audio: np.ndarray
    vision: np.ndarray
    text_lengths: np.ndarray
    audio_lengths: np.ndarray
    vision_lengths: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    ids: np.ndarray | None = None
    raw_text: np.ndarray | None = None
    text_bert: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return int(self.text.shape[0])

    def features(self, modality: str) -> np.ndarray:
        return getattr(self, modality)

    def lengths(self, modality: str) -> np.ndarray:
        return getattr(self, LENGTH_KEYS[modality])


def _check_names(values: Iterable[str], allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    values = tuple(values)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"unknown {what} {bad or values!r}; choose from {list(allowed)}")
    return values


@dataclass
class MultimodalDataset:
    """A multimodal sentiment dataset in the MMSA layout.

    Parameters
    ----------
    splits : dict of str to Split
        ``"train"``, ``"valid"``, ``"test"`` and optionally ``"unlabelled"``.
    name : str
        Short name, e.g. ``"synthetic:sims"`` or the file name.
    kind : {"sims", "simsv2", "mosi", "mosei"}
        Which paper's conventions apply (metrics, label range, tables).
    description : str
        One line saying exactly which data this is (generator parameters, or
        the file path and its SHA-256).  Printed in every table header.
    fingerprint : str
        A stable hash of the data's identity, used in cache keys.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> ds = make_synthetic(n_samples=(40, 12, 12), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> ds.X("train").shape, ds.y("train", labels=("M", "T", "A", "V")).shape
    ((40,), (40, 4))
    """

    splits: dict[str, Split]
    name: str
    kind: str = "sims"
    description: str = ""
    fingerprint: str = ""
    label_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = self._content_hash()

    def __getitem__(self, split: str) -> Split:
        try:
            return self.splits[split]
        except KeyError:
            raise KeyError(
                f"{self.name} has no split {split!r}; it has {sorted(self.splits)}"
            ) from None

    @property
    def available_labels(self) -> tuple[str, ...]:
        """Labels present in every supervised split."""
        present = [set(self.splits[s].labels) for s in SPLITS if s in self.splits]
        common = set.intersection(*present) if present else set()
        return tuple(lab for lab in LABELS if lab in common)

    @property
    def has_unlabelled(self) -> bool:
        return UNLABELLED in self.splits and self.splits[UNLABELLED].n_samples > 0

    @property
    def feature_dims(self) -> tuple[int, int, int]:
        tr = self["train"]
        return tuple(int(tr.features(m).shape[2]) for m in MODALITIES)  # type: ignore[return-value]

    @property
    def seq_lens(self) -> tuple[int, int, int]:
        tr = self["train"]
        return tuple(int(tr.features(m).shape[1]) for m in MODALITIES)  # type: ignore[return-value]

    def X(
        self,
        split: str = "train",
        modalities: Iterable[str] = MODALITIES,
        *,
        text_bert: bool = False,
    ) -> MultimodalX:
        """Features of ``split`` as a sliceable dict.

        Keys are the chosen modalities and their ``<modality>_lengths``;
        ``text_bert`` (BERT ids/mask/segments) is added on request.
        """
        modalities = _check_names(modalities, MODALITIES, "modality")
        sp = self[split]
        out = MultimodalX()
        for m in modalities:
            out[m] = sp.features(m)
            out[LENGTH_KEYS[m]] = sp.lengths(m)
        if text_bert:
            if sp.text_bert is None:
                raise ValueError(f"{self.name}: split {split!r} has no 'text_bert' key")
            out["text_bert"] = sp.text_bert
        return out

    def y(self, split: str = "train", labels: str | Iterable[str] = "M") -> np.ndarray:
        """Labels of ``split``: ``(N,)`` for one label, ``(N, k)`` for several.

        For the unlabelled part every label is NaN.
        """
        single = isinstance(labels, str)
        names = _check_names(labels, LABELS, "label")
        sp = self[split]
        cols = []
        for lab in names:
            if split == UNLABELLED:
                cols.append(np.full(sp.n_samples, np.nan))
                continue
            if lab not in sp.labels:
                raise ValueError(
                    f"{self.name}: split {split!r} has no label {lab!r} "
                    f"(available: {sorted(sp.labels)}); unimodal labels exist only "
                    "in CH-SIMS and CH-SIMS v2 files"
                )
            cols.append(sp.labels[lab].astype(np.float64))
        arr = np.stack(cols, axis=1)
        return arr[:, 0] if single else arr

    def X_semi(self, modalities: Iterable[str] = MODALITIES) -> MultimodalX:
        """Training features followed by the unlabelled part (AV-MC (Semi))."""
        X = self.X("train", modalities)
        if not self.has_unlabelled:
            return X
        U = self.X(UNLABELLED, modalities)
        for k in X:
            if X[k].shape[1:] != U[k].shape[1:]:
                raise ValueError(
                    f"{self.name}: unlabelled {k!r} has shape {U[k].shape[1:]} per "
                    f"sample but train has {X[k].shape[1:]}"
                )
        return MultimodalX(**{k: np.concatenate([X[k], U[k]]) for k in X})

    def y_semi(self, labels: str | Iterable[str] = LABELS) -> np.ndarray:
        """Training labels followed by all-NaN rows for the unlabelled part."""
        y = self.y("train", labels)
        if not self.has_unlabelled:
            return y
        return np.concatenate([y, self.y(UNLABELLED, labels)])

    def subsample(
        self, max_train: int | None = None, max_unlabelled: int | None = None,
        random_state: int = 0, max_eval: int | None = None,
    ) -> MultimodalDataset:
        """A copy whose training (and unlabelled) part is a seeded random
        subset of at most ``max_train`` (``max_unlabelled``) clips.

        Validation and test splits are kept whole unless ``max_eval`` caps
        each of them too.  Used by ``--quick`` smoke runs; the description
        says so.
        """
        import dataclasses

        rng = np.random.RandomState(random_state)
        splits = dict(self.splits)
        notes = []
        for name, cap in (("train", max_train), (UNLABELLED, max_unlabelled),
                          ("valid", max_eval), ("test", max_eval)):
            if cap is None or name not in splits or splits[name].n_samples <= cap:
                continue
            sp = splits[name]
            idx = np.sort(rng.choice(sp.n_samples, size=cap, replace=False))
            splits[name] = Split(
                **{f.name: _take(getattr(sp, f.name), idx) for f in dataclasses.fields(Split)}
            )
            notes.append(f"{name} subsampled to {cap} of {sp.n_samples} clips")
        if not notes:
            return self
        return MultimodalDataset(
            splits=splits, name=self.name, kind=self.kind,
            description=f"{self.description} [{'; '.join(notes)}]",
            fingerprint=hashlib.sha256(
                f"{self.fingerprint}|{'; '.join(notes)}|{random_state}".encode()
            ).hexdigest(),
            label_range=self.label_range,
        )

    def summary(self) -> str:
        parts = [f"{s}={self.splits[s].n_samples}" for s in self.splits]
        return (
            f"{self.name} ({self.kind}): " + ", ".join(parts)
            + f"; seq_lens={self.seq_lens}, feature_dims={self.feature_dims}"
            + f"; labels={''.join(self.available_labels)}"
        )

    def _content_hash(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.splits):
            sp = self.splits[name]
            h.update(name.encode())
            for m in MODALITIES:
                a = np.ascontiguousarray(sp.features(m))
                h.update(str(a.shape).encode())
                # A strided sample keeps hashing fast on SIMS-sized arrays.
                h.update(a.reshape(-1)[:: max(1, a.size // 100_000)].tobytes())
                h.update(np.ascontiguousarray(sp.lengths(m)).tobytes())
            for lab in sorted(sp.labels):
                h.update(lab.encode() + np.ascontiguousarray(sp.labels[lab]).tobytes())
        return h.hexdigest()



def _take(value, idx):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: np.asarray(v)[idx] for k, v in value.items()}
    return np.asarray(value)[idx]
