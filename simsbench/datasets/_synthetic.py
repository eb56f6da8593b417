"""SIMS-shaped synthetic data: the embedded default dataset.

The generator writes an MMSA-format dictionary (the layout of the released
pickles, including the ``-inf`` values that real audio features contain) and
turns it into a :class:`~simsbench.datasets.MultimodalDataset` through the
same validation and clean-up code that reads real files.

What carries signal, and how strong
-----------------------------------
1. ``M`` is drawn on the CH-SIMS label grid {-1.0, -0.8, ..., 1.0} with the
   five-class shares of the paper's Table 3 (SIMS) or Table 1 (v2): the class
   first, then a grid value uniformly within the class.
2. Each unimodal label is ``y_m = clip(grid(M + s_m * e_m), -1, 1)`` with
   independent standard normal ``e_m`` and spreads ``s_A < s_T < s_V``
   (``label_spread``), so that, as in the CH-SIMS paper's Figure 2, the audio
   label is closest to ``M`` and text and vision disagree most.  The labels
   differ from ``M`` often (CH-SIMS's annotators labelled each modality
   alone): with the ``"sims"`` defaults a unimodal label falls in a
   different five-class bin from ``M`` for roughly half the clips.
3. The features of modality ``m`` carry **its own label** ``y_m``, not ``M``:
   every real frame is ``(z_signal, z_nuisance) @ P_m + noise`` where
   ``z_signal = strength_m * (y_m + a_m * u)`` (``u`` per clip, standard
   normal: irreducible ambiguity ``a_m`` = ``ambiguity``), ``z_nuisance`` is
   ``n_latent - 1`` per-clip standard normal factors, ``P_m`` is a fixed
   random projection to ``D_m`` dims and ``noise`` is per-frame standard
   normal times ``frame_noise``.  Frames past the clip's real length are zero.
   A pooled linear model therefore recovers ``y_m`` with correlation about
   ``1 / sqrt(1 + (a_m / sd(y))**2)``, and ``M`` is best predicted by fusing
   all three modalities (each ``y_m`` is a noisy view of ``M``).
4. Why 32 latent factors: only one of the ``n_latent`` per-clip factors
   carries the label, so after the projection the label direction is about
   1/32 of each modality's clip-level variance; the rest is nuisance shared
   across frames (frame averaging does not remove it), as speaker, scene and
   lexical content dominate real features.  At this level 1,368 training
   clips are not enough for a fusion network supervised by M alone to find
   each modality's label direction, and the unimodal labels T/A/V point each
   encoder at it -- the premise of the CH-SIMS paper.  With 8 factors each
   direction was easy to find from M alone; with 64 the 33-d audio keeps
   almost no usable signal.  A model on one modality tracks that modality's
   own label more closely than M.
5. Why these spreads and ambiguities (the ``"sims"`` preset, generator 3):
   the unimodal labels help only where they carry information that ``M``
   does not, i.e. where each modality's feature signal (its own label) sits
   farther from ``M`` than the features' own ambiguity.  With generator 2's
   spreads (T/A/V 0.30/0.18/0.34) and ambiguities (text/audio/vision
   0.6/1.0/0.75) the features' ambiguity dominated, and MLF-DNN trained on
   M alone and on M+T+A+V differed by less than the seed-to-seed spread
   (test MAE 0.366 vs 0.368, five seeds).  The ``"sims"`` preset therefore
   doubles the spreads (0.60/0.36/0.68) and halves the ambiguities
   (0.30/0.50/0.375); the overall difficulty stays about the same (MLF-DNN
   on M alone: MAE 0.374, Corr 0.71), and the unimodal tasks now help
   (M+T+A+V: MAE 0.344, Corr 0.76; four seeds).  The ``"simsv2"`` preset
   keeps generator 2's values, on which its AV-MC and MISA figures were
   measured.
6. ``text`` position 0 (the [CLS] slot) holds the clean clip summary; ``audio``
   column 0 holds ``-inf`` in a few frames of ~2 % of clips, as the
   zero-crossing/F0 column of real CH-SIMS files does.  ``text_bert`` holds
   token ids whose sentiment words follow ``y_T`` (for BERT-mode tests).

Numbers made from this data are **not** CH-SIMS results.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import numpy as np

from simsbench.datasets._base import LABEL_OF_MODALITY, MODALITIES, MultimodalDataset

# The grid values of the five sentiment classes (NG, WN, NU, WP, PS).
_CLASS_VALUES = (
    (-1.0, -0.8),
    (-0.6, -0.4, -0.2),
    (0.0,),
    (0.2, 0.4, 0.6),
    (0.8, 1.0),
)

# The presets side by side, (CH-SIMS, CH-SIMS v2): shapes, per-split class
# counts of the papers (SIMS Table 3; SIMS v2 Table 1), and each preset's label
# spreads and feature ambiguities.  "generator" is the version of the
# generator that last changed the preset's data: bump it when they change (it
# is part of the data fingerprint, hence of every cache key), so that
# unchanged presets keep their fingerprints.
_PRESET_KINDS = ("sims", "simsv2")
_PRESET_TABLE: dict[str, tuple] = {
    "n_samples": ((1368, 456, 457), (2722, 647, 1034)),
    "seq_lens": ((39, 400, 55), (50, 925, 232)),
    "feature_dims": ((768, 33, 709), (768, 25, 177)),
    "class_counts": (
        ((452, 290, 207, 208, 211), (151, 97, 69, 69, 70), (151, 97, 69, 69, 71)),
        ((921, 433, 232, 318, 818), (224, 110, 62, 83, 168), (291, 211, 93, 183, 256)),
    ),
    "n_unlabelled": (0, 2000),
    "label_spread": ({"T": 0.60, "A": 0.36, "V": 0.68}, {"T": 0.30, "A": 0.18, "V": 0.34}),
    "ambiguity": (
        {"text": 0.30, "audio": 0.50, "vision": 0.375},
        {"text": 0.6, "audio": 1.0, "vision": 0.75},
    ),
    "generator": (3, 2),
}
PRESETS: dict[str, dict] = {
    kind: {field: values[i] for field, values in _PRESET_TABLE.items()}
    for i, kind in enumerate(_PRESET_KINDS)
}

DEFAULT_STRENGTH = {"text": 1.0, "audio": 1.0, "vision": 1.0}
BERT_VOCAB_SIZE = 21128  # bert-base-chinese
_CLS, _SEP = 101, 102


def _counts(shares: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder rounding of ``shares * n`` to integers summing to n."""
    raw = shares / shares.sum() * n
    out = np.floor(raw).astype(int)
    out[np.argsort(raw - out)[::-1][: n - out.sum()]] += 1
    return out


def _grid(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 5) / 5, -1.0, 1.0).round(1)


def _draw_m(counts: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    vals = [rng.choice(_CLASS_VALUES[c], size=k) for c, k in enumerate(counts)]
    m = np.concatenate(vals).astype(np.float64)
    rng.shuffle(m)
    return m


def _draw_lengths(n: int, L: int, rng: np.random.RandomState) -> np.ndarray:
    # Real lengths ~ mean L/2, spread L/6, clipped to [1, L]; some reach L,
    # as padding to mean + 3 sd does in the real files.
    lengths = np.round(rng.normal(L / 2, L / 6, size=n)).astype(np.int64)
    return np.clip(lengths, max(1, L // 8), L)


def _features(
    y: np.ndarray,
    lengths: np.ndarray,
    L: int,
    D: int,
    proj: np.ndarray,
    strength: float,
    ambiguity: float,
    frame_noise: float,
    rng: np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame features (n, L, D) and the noise-free clip summary (n, D)."""
    n, k = y.shape[0], proj.shape[0]
    z = rng.standard_normal((n, k)).astype(np.float32)
    z[:, 0] = strength * (y + ambiguity * z[:, 0])
    out = np.empty((n, L, D), dtype=np.float32)
    noise_rng = np.random.default_rng(rng.randint(2**31))
    chunk = max(1, 2_000_000 // (L * D))
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        block = np.einsum("nk,kd->nd", z[sl], proj)[:, None, :]
        noise = noise_rng.standard_normal((block.shape[0], L, D), dtype=np.float32)
        out[sl] = block + frame_noise * noise
    out *= (np.arange(L)[None, :] < lengths[:, None])[:, :, None]
    return out, z @ proj


def _text_bert(y_t: np.ndarray, lengths: np.ndarray, L: int, rng) -> np.ndarray:
    """Token ids, mask and segments; 'sentiment words' follow the text label."""
    n = y_t.shape[0]
    ids = rng.randint(1000, BERT_VOCAB_SIZE, size=(n, L))
    pos_words = np.arange(200, 300)
    neg_words = np.arange(300, 400)
    p_word = 0.3 * np.abs(y_t)[:, None]
    is_word = rng.random_sample((n, L)) < p_word
    words = np.where(
        (y_t[:, None] > 0), rng.choice(pos_words, (n, L)), rng.choice(neg_words, (n, L))
    )
    ids = np.where(is_word, words, ids)
    pos = np.arange(L)[None, :]
    ids[:, 0] = _CLS
    ids = np.where(pos == (lengths[:, None] - 1), _SEP, ids)
    mask = (pos < lengths[:, None]).astype(np.float64)
    ids = ids * mask
    return np.stack([ids, mask, np.zeros_like(mask)], axis=1).astype(np.float64)


def make_synthetic_mmsa(
    kind: str = "sims",
    *,
    n_samples: tuple[int, int, int] | None = None,
    seq_lens: tuple[int, int, int] | None = None,
    feature_dims: tuple[int, int, int] | None = None,
    n_unlabelled: int | None = None,
    label_spread: dict[str, float] | None = None,
    ambiguity: dict[str, float] | None = None,
    strength: dict[str, float] | None = None,
    frame_noise: float = 1.0,
    n_latent: int = 32,
    random_state: int | None = 0,
) -> tuple[dict, dict | None]:
    """Generate a synthetic dataset as raw MMSA-format dictionaries.

    :func:`make_synthetic` turns them into a dataset; this is the generator
    itself, for writing feature files (:func:`write_mmsa`).

    Parameters
    ----------
    kind : {"sims", "simsv2"}, default="sims"
        Shape preset: ``"sims"`` is CH-SIMS (2281 clips split 1368/456/457,
        sequence lengths 39/400/55, feature dims 768/33/709); ``"simsv2"`` is
        CH-SIMS v2.0 (2722/647/1034, lengths 50/925/232, dims 768/25/177) with
        an unlabelled part.
    n_samples : tuple of 3 int, default=None
        Train/valid/test sizes; the preset's when None.  Class shares follow
        the paper's split table.
    seq_lens, feature_dims : tuple of 3 int, default=None
        (text, audio, vision) padded lengths and feature dimensions.
    n_unlabelled : int, default=None
        Size of the unlabelled part (0 for ``"sims"``, 2000 for ``"simsv2"``).
    label_spread : dict, default=None
        Spread of each unimodal label around ``M`` (keys ``"T"``, ``"A"``,
        ``"V"``); the preset's when None: 0.60, 0.36, 0.68 for ``"sims"``,
        0.30, 0.18, 0.34 for ``"simsv2"``.
    ambiguity : dict, default=None
        Per-modality irreducible noise on the label signal in the features
        (keys ``"text"``, ``"audio"``, ``"vision"``); larger is weaker.
    strength : dict, default=None
        Per-modality scale of the label signal in the features.
    frame_noise : float, default=1.0
        Standard deviation of the per-frame feature noise.
    n_latent : int, default=32
        Latent factors per clip (one carries the label; the others are
        nuisance variation shared by the clip's frames).
    random_state : int, RandomState instance or None, default=0
        Makes the dataset deterministic.

    Returns
    -------
    supervised : dict
        ``train``, ``valid`` and ``test`` splits laid out like
        ``unaligned_39.pkl``.
    unlabelled : dict or None
        The flat dict of the CH-SIMS v2 unlabelled release (None when
        ``n_unlabelled`` is 0).
    """
    if kind not in PRESETS:
        raise ValueError(f"unknown synthetic kind {kind!r}; choose from {sorted(PRESETS)}")
    preset = PRESETS[kind]
    n_samples = tuple(n_samples or preset["n_samples"])
    seq_lens = tuple(seq_lens or preset["seq_lens"])
    feature_dims = tuple(feature_dims or preset["feature_dims"])
    n_unlabelled = preset["n_unlabelled"] if n_unlabelled is None else n_unlabelled
    if len(n_samples) != 3 or min(n_samples) < 1:
        raise ValueError(f"n_samples must be 3 positive split sizes, got {n_samples}")
    if len(seq_lens) != 3 or len(feature_dims) != 3 or min(seq_lens + feature_dims) < 1:
        raise ValueError("seq_lens and feature_dims must be 3 positive ints each")
    spread = {**preset["label_spread"], **(label_spread or {})}
    amb = {**preset["ambiguity"], **(ambiguity or {})}
    stren = {**DEFAULT_STRENGTH, **(strength or {})}
    from sklearn.utils import check_random_state  # lazily: loading a file needs no sklearn

    rng = check_random_state(random_state)
    projections = {
        m: (rng.standard_normal((n_latent, D)) / np.sqrt(n_latent)).astype(np.float32)
        for m, D in zip(MODALITIES, feature_dims)
    }

    def make_part(n: int, counts: np.ndarray | None, prefix: str) -> dict:
        m = _draw_m(counts, rng) if counts is not None else _draw_m(
            _counts(np.asarray(preset["class_counts"][0], float), n), rng
        )
        labels = {"M": m}
        for lab in ("T", "A", "V"):
            labels[lab] = _grid(m + spread[lab] * rng.standard_normal(n))
        part: dict = {}
        for mod, L, D in zip(MODALITIES, seq_lens, feature_dims):
            lengths = _draw_lengths(n, L, rng)
            y_mod = labels[LABEL_OF_MODALITY[mod]]
            part[mod], summary = _features(
                y_mod, lengths, L, D, projections[mod], stren[mod], amb[mod],
                frame_noise, rng,
            )
            part[f"{mod}_lengths"] = lengths
            if mod == "text":  # the [CLS] slot holds the clip summary
                part[mod][:, 0, :] = summary
        bad = rng.random_sample(n) < 0.02
        for i in np.flatnonzero(bad):
            t = rng.randint(part["audio_lengths"][i])
            part["audio"][i, t, 0] = -np.inf
        part["text_bert"] = _text_bert(labels["T"], part["text_lengths"], seq_lens[0], rng)
        part["raw_text"] = np.array([f"synthetic clip {prefix}{i}" for i in range(n)])
        part["id"] = np.array([f"{prefix}{i // 8:04d}$_${i % 8}" for i in range(n)])
        part["regression_labels"] = labels["M"].astype(np.float32)
        for lab in ("T", "A", "V"):
            part[f"regression_labels_{lab}"] = labels[lab].astype(np.float32)
        part["annotations"] = np.where(
            m < 0, "Negative", np.where(m > 0, "Positive", "Neutral")
        )
        return part

    supervised = {}
    for split, n, counts in zip(("train", "valid", "test"), n_samples, preset["class_counts"]):
        if n == sum(counts):
            c = np.asarray(counts)
        else:
            c = _counts(np.asarray(counts, dtype=float), n)
        supervised[split] = make_part(n, c, f"{split}_")
    unlabelled = None
    if n_unlabelled:
        part = make_part(n_unlabelled, None, "u_")
        keep = ("text", "audio", "vision", "text_bert", "audio_lengths",
                "vision_lengths", "text_lengths", "id", "raw_text")
        unlabelled = {k: part[k] for k in keep}
    for part in [*supervised.values(), *([unlabelled] if unlabelled else [])]:
        # MMSA files carry audio/vision lengths only; text length is in text_bert.
        part.pop("text_lengths")
    return supervised, unlabelled


def make_synthetic(
    kind: str = "sims", *, verbose: bool = False, **params: Any,
) -> MultimodalDataset:
    """Make a SIMS-shaped synthetic multimodal sentiment dataset.

    Parameters
    ----------
    kind : {"sims", "simsv2"}, default="sims"
        The preset: CH-SIMS or CH-SIMS v2.0 shapes, splits and class shares
        (the latter with an unlabelled part); see :func:`make_synthetic_mmsa`.
    verbose : bool, default=False
        Report the clean-up of non-finite features.
    **params
        The generator's other parameters (``n_samples``, ``seq_lens``,
        ``feature_dims``, ``n_unlabelled``, ``label_spread``, ``ambiguity``,
        ``strength``, ``frame_noise``, ``n_latent``, ``random_state``), as in
        :func:`make_synthetic_mmsa`; its defaults when absent.

    Returns
    -------
    dataset : MultimodalDataset

    Notes
    -----
    See the module docstring of ``simsbench.datasets._synthetic`` for what
    carries signal and how strongly.  Numbers computed on this data are not
    CH-SIMS results and must never be presented as such.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> ds = make_synthetic(n_samples=(50, 20, 20), seq_lens=(8, 12, 10),
    ...                     feature_dims=(16, 6, 9), random_state=0)
    >>> ds.available_labels
    ('M', 'T', 'A', 'V')
    """
    from simsbench.datasets._mmsa import from_mmsa_dict

    try:  # every generator parameter, in its order, with its default when absent
        bound = inspect.signature(make_synthetic_mmsa).bind(kind, **params)
    except TypeError as exc:
        raise TypeError(f"make_synthetic() {exc}") from None
    bound.apply_defaults()
    params = {k: v for k, v in bound.arguments.items() if k != "kind"}
    supervised, unlabelled = make_synthetic_mmsa(kind, **params)
    shown = {k: v for k, v in params.items() if v is not None}
    shown.setdefault("n_samples", PRESETS[kind]["n_samples"])
    desc = "synthetic:{} ({}) -- simulated data, NOT CH-SIMS results".format(
        kind, ", ".join(f"{k}={v}" for k, v in shown.items())
    )
    version = PRESETS[kind]["generator"]
    fingerprint = hashlib.sha256(f"{desc}|generator v{version}".encode())
    return from_mmsa_dict(
        supervised,
        unlabelled=unlabelled,
        fingerprint=fingerprint.hexdigest(),
        name=f"synthetic:{kind}",
        kind=kind,
        description=desc,
        source=f"synthetic:{kind}",
        verbose=verbose,
    )
