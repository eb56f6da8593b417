"""Data plumbing of the deep shell: datasets, batches and validation splits.

The counterpart of skorch's ``skorch/dataset.py``: the model inputs are whole
tensors, sliced per batch (no per-sample collation).  The validation data of
a fit is either the paper's valid split, handed to skorch through
:func:`skorch.helper.predefined_split`, or :class:`HoldoutSplit`, a seeded
holdout of the labelled rows.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["BatchIterator", "HoldoutSplit", "TensorDictDataset", "to_tensors"]


class TensorDictDataset(torch.utils.data.Dataset):
    """A dict of tensors and an optional target, indexed by index tensors."""

    def __init__(self, X: dict, y: torch.Tensor | None = None):
        self.X = X
        self.y = y
        self.n = int(next(iter(X.values())).shape[0])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx):
        Xi = {k: v[idx] for k, v in self.X.items()}
        yi = None if self.y is None else self.y[idx]
        return Xi, yi

    def subset(self, idx) -> TensorDictDataset:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return TensorDictDataset(*self[idx])


class BatchIterator:
    """Yield ``(X_batch, y_batch)`` slices of a :class:`TensorDictDataset`.

    Shuffles with torch's global generator (seeded by the estimator).  A
    trailing batch of one sample is merged into the previous batch when
    shuffling, because BatchNorm cannot train on a single sample.
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, merge_single_tail=None,
                 **kwargs):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        # Training batches only: evaluation has no BatchNorm statistics to learn.
        self.merge_single_tail = shuffle if merge_single_tail is None else merge_single_tail

    def _bounds(self):
        n, b = len(self.dataset), self.batch_size
        starts = list(range(0, n, b))
        if self.merge_single_tail and len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]

    def __len__(self) -> int:
        return len(self._bounds())

    def __iter__(self):
        n = len(self.dataset)
        order = torch.randperm(n) if self.shuffle else None
        for start, stop in self._bounds():
            idx = order[start:stop] if order is not None else slice(start, stop)
            yield self.dataset[idx]


class HoldoutSplit:
    """skorch ``train_split``: a seeded random holdout of the labelled rows."""

    def __init__(self, fraction: float, seed: int):
        self.fraction = fraction
        self.seed = seed

    def __call__(self, dataset, y=None, **kwargs):
        y_all = dataset.y
        labelled = torch.ones(len(dataset), dtype=torch.bool)
        if y_all is not None:
            yy = y_all if y_all.ndim == 2 else y_all[:, None]
            labelled = ~torch.isnan(yy[:, 0])
        lab_idx = torch.nonzero(labelled).reshape(-1)
        unl_idx = torch.nonzero(~labelled).reshape(-1)
        g = torch.Generator().manual_seed(self.seed)
        perm = lab_idx[torch.randperm(len(lab_idx), generator=g)]
        n_valid = max(1, int(round(self.fraction * len(perm))))
        if len(perm) - n_valid < 2:
            raise ValueError(
                f"too few labelled samples ({len(perm)}) for validation_fraction="
                f"{self.fraction}; pass X_valid/y_valid"
            )
        valid = perm[:n_valid]
        train = torch.cat([perm[n_valid:], unl_idx]).sort().values
        return dataset.subset(train), dataset.subset(valid.sort().values)


def to_tensors(inputs: dict) -> dict:
    """Tensors of the model inputs: ``*_lengths`` as int64, the rest as float32.

    Arrays that are already float32 and C-contiguous are shared, not copied
    (a read-only array is copied once).
    """
    out = {}
    for k, v in inputs.items():
        v = np.asarray(v)
        if k.endswith("_lengths"):
            out[k] = torch.as_tensor(v, dtype=torch.long)
        else:
            arr = np.ascontiguousarray(v, dtype=np.float32)
            if not arr.flags.writeable:  # a read-only array: copy once
                arr = arr.copy()
            out[k] = torch.from_numpy(arr)
    return out
