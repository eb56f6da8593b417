"""The papers' figures of the data: CH-SIMS Fig. 2 (label distributions and
discrepancy) and CH-SIMS Fig. 4 / v2 Fig. 7 (t-SNE of a fitted multi-task
model's unimodal representations), with the model fit the t-SNE needs.

Re-exported by :mod:`simsbench.figures`.  Imports no torch (the model's
estimator does, when it is fitted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from simsbench.figure_canvas import new_figure

__all__ = [
    "fit_representations",
    "labels_figure",
    "tsne_embeddings",
    "tsne_figure",
    "tsne_payload",
]

_CLASS_NAMES = ("negative", "neutral", "positive")
_CLASS_COLOURS = ("#d62728", "#7f7f7f", "#1f77b4")


# ---------------------------------------------------------------------------
# CH-SIMS Fig. 2

def labels_figure(data_info: Mapping[str, Any]):
    """CH-SIMS Fig. 2: label histograms (one panel per label) and ``D_ij``.

    Parameters
    ----------
    data_info : mapping
        A stored data record (``simsbench data describe`` / any run writes
        it) with ``label_histograms`` and ``label_difference``.
    """
    hist = data_info.get("label_histograms")
    diff = data_info.get("label_difference")
    if not hist or not diff:
        raise ValueError(
            "the data record has no label statistics (data without unimodal labels?); "
            "run 'simsbench data describe DATA' on data with M/T/A/V labels"
        )
    labels = list(hist["columns"])
    grid = [float(v) for v in hist["index"]]
    counts = np.asarray(hist["values"], dtype=float)
    fig = new_figure(2.2 * len(labels) + 3.4, 3.4, "Label distributions and discrepancy "
                      "(CH-SIMS Fig. 2)", data_info)
    gs = fig.add_gridspec(1, len(labels) + 1, width_ratios=[1] * len(labels) + [1.5])
    share = None
    for j, lab in enumerate(labels):
        ax = fig.add_subplot(gs[0, j], sharey=share)
        share = share or ax
        ax.bar(grid, counts[:, j], width=0.16, color="#4c72b0")
        ax.set_title(f"label {lab}")
        ax.set_xlabel("label value")
        if j == 0:
            ax.set_ylabel("clips")
        ax.set_xticks([-1.0, -0.5, 0.0, 0.5, 1.0])
    ax = fig.add_subplot(gs[0, -1])
    d_labels = list(diff["labels"])
    d = np.asarray(diff["values"], dtype=float)
    im = ax.imshow(d, cmap="viridis")
    ax.set_xticks(range(len(d_labels)), d_labels)
    ax.set_yticks(range(len(d_labels)), d_labels)
    ax.set_title("D_ij = mean((y_i - y_j)^2)")
    ax.set_xlabel("label j")
    ax.set_ylabel("label i")
    hi = float(np.nanmax(d)) if d.size else 0.0
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            ax.text(j, i, f"{d[i, j]:.3f}", ha="center", va="center", fontsize=7,
                    color="white" if d[i, j] < hi * 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


# ---------------------------------------------------------------------------
# CH-SIMS Fig. 4 / v2 Fig. 7

def tsne_embeddings(representations: Mapping[str, np.ndarray], random_state: int = 0,
                    perplexity: float = 30.0) -> dict[str, np.ndarray]:
    """2-D t-SNE of each modality's representations (scikit-learn's TSNE).

    ``perplexity`` is lowered to ``(n - 1) / 3`` for small ``n`` (TSNE needs
    it below ``n``).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    order = [m for m in ("text", "audio", "vision") if m in representations]
    order += [m for m in representations if m not in order]
    out = {}
    for mod in order:
        rep = np.asarray(representations[mod], dtype=np.float64)
        n = rep.shape[0]
        if n < 4:
            raise ValueError(f"t-SNE needs at least 4 clips, got {n}")
        perp = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
        tsne = TSNE(n_components=2, perplexity=perp, init="pca", random_state=random_state)
        # one thread: OpenMP workers of scikit-learn's Barnes-Hut code spin against
        # torch's (seconds -> minutes on a loaded machine, for a few hundred points)
        with threadpool_limits(limits=1):
            out[mod] = tsne.fit_transform(rep)
    return out


def _three_class(y: np.ndarray) -> np.ndarray:
    # the SIMS Acc-3 bins: (-1.01, -0.1], (-0.1, 0.1], (0.1, 1.01]
    y = np.clip(np.asarray(y, dtype=float), -1.0, 1.0)
    return np.searchsorted(np.asarray([-0.1, 0.1]), y, side="left")


def tsne_figure(embeddings: Mapping[str, np.ndarray], labels, data_info: Mapping[str, Any],
                model: str = "MLF-DNN", label_name: str = "M"):
    """CH-SIMS Fig. 4 / v2 Fig. 7: one scatter per modality, coloured by class.

    Parameters
    ----------
    embeddings : mapping modality -> array of shape (n, 2)
    labels : array of shape (n,)
        The clips' sentiment scores (coloured by their three-class bin).
    data_info : mapping
        The data record (named in the footer; banner when synthetic).
    model, label_name : str
        Named in the title.
    """
    classes = _three_class(labels)
    mods = list(embeddings)
    fig = new_figure(3.2 * len(mods) + 0.6, 3.8,
                      f"t-SNE of the unimodal representations of {model} "
                      f"(CH-SIMS Fig. 4 / v2 Fig. 7)", data_info,
                      extra=f"test clips, coloured by label {label_name}")
    axes = fig.subplots(1, len(mods), squeeze=False)[0]
    for ax, mod in zip(axes, mods):
        xy = np.asarray(embeddings[mod])
        for k, (name, colour) in enumerate(zip(_CLASS_NAMES, _CLASS_COLOURS)):
            sel = classes == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=8, c=colour, label=name, alpha=0.8,
                       linewidths=0)
        ax.set_title(f"{mod} representation")
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].legend(title=f"label {label_name}", loc="best", fontsize=7, title_fontsize=7)
    return fig


# ---------------------------------------------------------------------------
# fitting a model for the t-SNE figure

def fit_representations(dataset, spec, *, random_state: int = 1, max_epochs: int | None = None,
                        tiny: bool = False, max_train: int | None = None):
    """Fit a multi-task estimator spec on train (valid for early stopping)
    and return its unimodal representations of the test clips.

    Parameters
    ----------
    dataset : MultimodalDataset
    spec : EstimatorSpec
        A multi-task model (its estimator has ``get_representations``).
    random_state : int, default=1
    max_epochs : int, optional
        Cap on the spec's epochs (quick figures).
    tiny : bool, default=False
        Use the class's tiny sizes (tests).
    max_train : int, optional
        Train on a seeded subset of at most this many clips.

    Returns
    -------
    (dict of str to ndarray, ndarray)
        The representations per modality and the test clips' M labels.
    """
    cls = spec.estimator_class()
    extra: dict[str, Any] = dict(getattr(cls, "_tiny_params", {})) if tiny else {}
    defaults = cls().get_params(deep=False)
    if max_epochs is not None and "max_epochs" in defaults:
        current = extra.get("max_epochs", spec.overrides(dataset.kind).get(
            "max_epochs", defaults["max_epochs"]))
        # the reference configuration has no cap (None)
        extra["max_epochs"] = (int(max_epochs) if current is None
                               else min(int(current), int(max_epochs)))
    if "random_state" in defaults:
        extra["random_state"] = random_state
    est = spec.build(dataset.kind, extra)
    if not hasattr(est, "get_representations"):
        raise ValueError(f"{spec.name} ({type(est).__name__}) has no unimodal representations; "
                         "the t-SNE figure needs a multi-task model such as mlf_dnn")
    if max_train is not None:
        dataset = dataset.subsample(max_train, max_train)
    labels = [lab for lab in ("M", "T", "A", "V") if lab in dataset.available_labels]
    est.fit(dataset.X("train"), dataset.y("train", labels),
            X_valid=dataset.X("valid"), y_valid=dataset.y("valid", labels))
    return est.get_representations(dataset.X("test")), dataset.y("test", "M")


def tsne_payload(embeddings: Mapping[str, np.ndarray], labels, data_info: Mapping,
                 model: str, seed: int) -> dict:
    """A JSON-able record of a t-SNE figure's data (the report redraws it)."""
    return {
        "model": model, "seed": int(seed), "label": "M",
        "labels": [float(v) for v in np.asarray(labels).reshape(-1)],
        "embeddings": {m: np.asarray(e, dtype=float).round(5).tolist()
                       for m, e in embeddings.items()},
        "data": {k: data_info.get(k) for k in
                 ("spec", "slug", "kind", "fingerprint", "description", "synthetic")},
    }
