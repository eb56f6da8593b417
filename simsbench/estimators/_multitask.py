"""The base of the multi-task deep estimators (M head plus T/A/V heads)."""

from __future__ import annotations

import numpy as np
import torch

from simsbench.estimators._constraints import MULTITASK as MULTITASK_CONSTRAINTS
from simsbench.estimators._deep import DeepRegressor

__all__ = ["MultiTaskRegressor"]


class MultiTaskRegressor(DeepRegressor):
    """Base of the multi-task estimators (M head plus T/A/V heads).

    ``y`` is the ``(n, 4)`` M/T/A/V matrix (a 1-D ``y`` trains M only).  The
    module's ``forward`` returns ``(M, T, A, V)`` tensors of shape (B,), with
    ``None`` for the head of a modality that is not in ``modalities``, and
    ``representations(**inputs)`` returns a dict of unimodal representations.
    Subclasses have ``tasks`` and ``loss_weights`` parameters.
    """

    _multitask = True
    _parameter_constraints: dict = dict(MULTITASK_CONSTRAINTS)

    def _loss_weights(self):
        tasks = (self.tasks,) if isinstance(self.tasks, str) else tuple(self.tasks)
        w = [float(x) for x in self.loss_weights]
        for i, lab in enumerate(("T", "A", "V"), start=1):
            if lab not in tasks:
                w[i] = 0.0
        return tuple(w)

    def predict_all(self, X):
        """Predictions of every head.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, 4)
            Columns M, T, A, V; NaN for heads of absent modalities.
        """
        outs = self._forward_all(X)
        n_heads = 4
        cols = []
        for k in range(n_heads):
            parts = [o[k] for o in outs]
            if any(p is None for p in parts):
                n = sum(int(o[0].shape[0]) for o in outs)
                cols.append(np.full(n, np.nan))
            else:
                cols.append(torch.cat([p.reshape(-1) for p in parts]).double().cpu().numpy())
        return np.stack(cols, axis=1)

    def get_representations(self, X):
        """Learned unimodal representations (for the papers' t-SNE figures).

        Returns
        -------
        reps : dict of str to ndarray of shape (n_samples, d)
            One entry per modality in ``modalities``.
        """
        outs = self._forward_all(X, method="representations")
        return {k: torch.cat([o[k] for o in outs]).double().cpu().numpy() for k in outs[0]}

    def transform(self, X):
        """The unimodal representations, concatenated (scikit-learn's transform).

        Lets a fitted multi-task model feed a pipeline step or
        :class:`sklearn.manifold.TSNE` (the papers' t-SNE figures,
        ``simsbench figure tsne``).  :meth:`get_representations` gives the
        same arrays one per modality.

        Returns
        -------
        X_new : ndarray of shape (n_samples, sum of the representation sizes)
            The representations of the modalities in ``modalities`` order
            (float64).
        """
        reps = self.get_representations(X)
        order = [m for m in self._modalities() if m in reps]
        order += [m for m in reps if m not in order]
        return np.concatenate([reps[m] for m in order], axis=1)
