"""The training shell shared by every deep estimator.

A deep estimator is a plain ``RegressorMixin, BaseEstimator`` with flat
hyperparameters.  ``fit`` validates the dict ``X``, prepares the model's
inputs once as tensors (pooling/alignment happen here, not per batch), builds
the torch module sized from the data, and trains it with a private skorch
net (:class:`SimsNet`) composed inside the estimator:

* loss: :class:`TaskLoss` -- L1 (MSE for MISA) on column M, or the weighted
  sum over the M/T/A/V heads for multi-task models; NaN labels are skipped;
* optimizer: Adam (coupled L2 weight decay, torch's fused kernel) with
  per-group learning rates and weight decay (``_param_groups``);
* model selection (MMSA ``src/MMSA/trains/singleTask/*.py``): train on train, evaluate the
  validation loss each epoch, stop after ``early_stop`` epochs without an
  improvement of ``tol``, restore the best epoch's weights
  (:class:`LeanEarlyStopping`: weights over ``SPILL_BYTES`` wait in a
  temporary file under ``tempfile.gettempdir()``, i.e. ``$TMPDIR``; gradients
  and optimizer state are freed when training ends);
* validation data: explicit (``fit(X, y, X_valid=..., y_valid=...)``, the
  paper splits) or, inside ``cross_val_score``/``GridSearchCV``, a seeded
  internal split of ``validation_fraction`` of the labelled rows;
* optional gradient accumulation and clipping (MulT, MISA, Self-MM); the last
  partial accumulation group of an epoch is applied, not dropped.

Subclasses implement ``_build_module(dims, seq_lens)`` and, when they need
other inputs than the padded sequences, ``_prepare_inputs(X)``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import signal
import tempfile
import threading
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping

from simsbench.datasets import LENGTH_KEYS, MODALITIES
from simsbench.estimators._constraints import MULTITASK as MULTITASK_CONSTRAINTS
from simsbench.estimators._constraints import SHARED as SHARED_CONSTRAINTS
from simsbench.estimators._constraints import validate_params
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import check_X, check_y, lengths_of, masked_mean

__all__ = [
    "DeepRegressor",
    "MultiTaskRegressor",
    "SimsNet",
    "TaskLoss",
    "TensorDictDataset",
    "BatchIterator",
    "count_parameters",
]


# ---------------------------------------------------------------------------
# data plumbing: whole tensors, sliced per batch (no per-sample collation)

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


class PredefinedSplit:
    """skorch ``train_split`` that returns a fixed validation dataset."""

    def __init__(self, valid_dataset):
        self.valid_dataset = valid_dataset

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid_dataset


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


# ---------------------------------------------------------------------------
# loss

class TaskLoss(torch.nn.Module):
    """Weighted sum of per-head losses over the M/T/A/V label columns.

    Parameters
    ----------
    weights : tuple of 4 float
        Weights of the M, T, A and V heads.  Single-task models use
        ``(1, 0, 0, 0)``.  A 1-D target means M only.
    kind : {"l1", "mse"}
        L1 (every model but MISA) or mean squared error.

    Missing labels (NaN, e.g. the unlabelled rows of AV-MC (Semi)) are left
    out of each head's mean.
    """

    def __init__(self, weights=(1.0, 0.0, 0.0, 0.0), kind="l1"):
        super().__init__()
        self.weights = tuple(float(w) for w in weights)
        self.kind = kind

    def _one(self, pred, target):
        mask = ~torch.isnan(target)
        if not bool(mask.all()):
            if not bool(mask.any()):
                return None
            pred, target = pred[mask], target[mask]
        diff = pred - target
        return diff.abs().mean() if self.kind == "l1" else (diff * diff).mean()

    def forward(self, y_pred, y_true):
        outs = y_pred if isinstance(y_pred, tuple | list) else (y_pred,)
        y = y_true if y_true.ndim == 2 else y_true[:, None]
        total = None
        for k in range(min(y.shape[1], len(outs), len(self.weights))):
            w = self.weights[k]
            if w == 0 or outs[k] is None:  # None: head of an absent modality
                continue
            term = self._one(outs[k].reshape(-1), y[:, k])
            if term is not None:
                total = w * term if total is None else total + w * term
        if total is None:  # nothing labelled in this batch
            total = sum(o.sum() * 0.0 for o in outs if o is not None)
        return total


# ---------------------------------------------------------------------------
# the private skorch net

class SimsNet(NeuralNet):
    """skorch net with fast tensor batches, gradient accumulation/clipping.

    Internal to the estimators; customise training through ``get_loss``,
    ``train_step_single`` or ``run_single_epoch`` in a subclass.
    """

    def __init__(self, *args, accumulation_steps=1, grad_clip_value=None,
                 grad_clip_norm=None, clip_per="step", accumulation_tail="apply", **kwargs):
        super().__init__(*args, **kwargs)
        self.accumulation_steps = accumulation_steps
        self.grad_clip_value = grad_clip_value
        self.grad_clip_norm = grad_clip_norm
        self.clip_per = clip_per
        self.accumulation_tail = accumulation_tail

    def get_dataset(self, X, y=None):
        if isinstance(X, TensorDictDataset):
            return X
        return TensorDictDataset(X, y)

    def _clip(self):
        params = [p for g in self.optimizer_.param_groups for p in g["params"]
                  if p.grad is not None]
        if self.grad_clip_value is not None and self.grad_clip_value > 0:
            torch.nn.utils.clip_grad_value_(params, self.grad_clip_value)
        if self.grad_clip_norm is not None and self.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip_norm)

    def _apply_step(self):
        if self.clip_per == "step":
            self._clip()
        self.optimizer_.step()
        self.optimizer_.zero_grad(set_to_none=True)

    def train_step(self, batch, **fit_params):
        step = self.train_step_single(batch, **fit_params)
        if self.clip_per == "backward":
            # MMSA trainers (e.g. MMSA src/MMSA/trains/singleTask/MULT.py)
            # clip the *accumulated* gradients after every backward.
            self._clip()
        self._pending += 1
        if self._pending >= max(1, int(self.accumulation_steps)):
            self._apply_step()
            self._pending = 0
        return step

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training:
            self.optimizer_.zero_grad(set_to_none=True)
            self._pending = 0
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training and self._pending:
            if self.accumulation_tail == "apply":
                self._apply_step()
            else:
                # The reference's end-of-epoch flush never fires: the last
                # (n_batches mod U) batches' gradients are discarded.
                self.optimizer_.zero_grad(set_to_none=True)
            self._pending = 0


#: Best-epoch weights larger than this are kept in a temporary file rather
#: than in memory (MTFN's 141M parameters: 564 MB).
SPILL_BYTES = 256 * 2**20


def release_training_state(net) -> None:
    """Free what only training needs: gradients and optimizer state.

    Called when training ends; a fitted estimator keeps just its weights
    (smaller in memory and in pickles).
    """
    net.module_.zero_grad(set_to_none=True)
    for name in getattr(net, "_optimizers", ()):
        opt = getattr(net, name + "_", None)
        if isinstance(opt, torch.optim.Optimizer):
            opt.state.clear()
    for m in net.module_.modules():
        release = getattr(m, "release_buffers", None)
        if callable(release):
            release()


class LeanEarlyStopping(EarlyStopping):
    """skorch's EarlyStopping that never holds two copies of the weights.

    Decisions and restored weights are those of skorch's callback; memory is
    lower:

    * on a new best epoch the previous copy is dropped before the new one is
      taken (skorch takes the new copy first, briefly doubling the memory of
      a large model such as MTFN);
    * weights larger than ``SPILL_BYTES`` are saved to a temporary file
      (under ``tempfile.gettempdir()``, removed when training ends) instead
      of being copied in memory;
    * when training ends, gradients and optimizer state are freed *before*
      the best weights are loaded back.
    """

    def __init__(self, *args, rule="skorch", **kwargs):
        super().__init__(*args, **kwargs)
        self.rule = rule

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.cleanup()
        return self

    def _is_score_improved(self, score):
        if self.rule == "reference":
            # MMSA trainers: ``isBetter = cur_valid <= best_valid - 1e-6``
            # (an improvement of exactly ``threshold`` counts).
            return score <= self.dynamic_threshold_
        return super()._is_score_improved(score)

    def on_epoch_end(self, net, **kwargs):
        score = net.history[-1, self.monitor]
        if not self._is_score_improved(score):
            self.misses_ += 1
        else:
            self.misses_ = 0
            self.dynamic_threshold_ = self._calc_new_threshold(score)
            self.best_epoch_ = net.history[-1, "epoch"]
            if self.load_best:
                self._keep(net.module_.state_dict())
        if self.misses_ == self.patience:
            if net.verbose:
                self._sink(f"Stopping since {self.monitor} has not improved in the last "
                           f"{self.patience} epochs.", verbose=net.verbose)
            raise KeyboardInterrupt

    def _keep(self, state):
        self.best_model_weights_ = None  # drop the previous copy first
        nbytes = sum(t.numel() * t.element_size() for t in state.values())
        if nbytes <= SPILL_BYTES:
            self.best_model_weights_ = {k: v.detach().clone() for k, v in state.items()}
            return
        path = getattr(self, "best_weights_path_", None)
        if path is None:
            fd, path = tempfile.mkstemp(prefix="simsbench-best-", suffix=".pt")
            os.close(fd)
            self.best_weights_path_ = path
        torch.save(state, path)

    def on_train_end(self, net, **kwargs):
        try:
            release_training_state(net)
            if self.load_best and self.best_epoch_ != net.history[-1, "epoch"]:
                path = getattr(self, "best_weights_path_", None)
                if path is not None:
                    state = torch.load(path, map_location=net.device, weights_only=True,
                                       mmap=True)
                    net.module_.load_state_dict(state)
                    del state
                elif self.best_model_weights_ is not None:
                    net.module_.load_state_dict(self.best_model_weights_)
                self._sink(f"Restoring best model from epoch {self.best_epoch_}.",
                           verbose=net.verbose)
        finally:
            self.cleanup()

    def cleanup(self):
        """Drop the kept weights and remove the temporary file, if any."""
        self.best_model_weights_ = None
        path = getattr(self, "best_weights_path_", None)
        self.best_weights_path_ = None
        if path is not None:
            with contextlib.suppress(OSError):
                os.remove(path)


class ReferenceValidLoss(Callback):
    """Record the reference implementation's validation loss each epoch.

    The MMSA trainers (e.g. ``MMSA src/MMSA/trains/singleTask/LF_DNN.py``,
    ``do_test``) average the per-batch mean losses -- the last, smaller batch
    weighs as much as a full one -- and round the result to 4 decimals;
    that number selects the epoch.  skorch's ``valid_loss`` is the
    sample-weighted mean, unrounded.  This callback writes the reference
    number to the history as ``name`` (``"valid_loss_reference"``).
    """

    def __init__(self, name="valid_loss_reference", decimals=4):
        self.name = name
        self.decimals = decimals

    def on_epoch_end(self, net, **kwargs):
        batches = net.history[-1, "batches"]
        losses = [b["valid_loss"] for b in batches if "valid_loss" in b]
        if losses:
            net.history.record(self.name, round(sum(losses) / len(losses), self.decimals))


#: ``max_epochs=None`` (the reference: no cap) runs at most this many epochs.
NO_CAP = 10**6


# ---------------------------------------------------------------------------
# the estimator base

@contextlib.contextmanager
def _torch_threads(n):
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _user_interrupt():
    """Tell a user's Ctrl-C from early stopping.

    skorch ends training on ``KeyboardInterrupt`` -- early stopping raises
    one -- and returns normally, so a Ctrl-C during ``fit`` would silently
    give a half-trained model (and the runner would store its scores as a
    finished run).  While training runs in the main thread with Python's
    default SIGINT handler, a SIGINT is noted here; yields a function that
    says whether one arrived, so ``fit`` can raise ``KeyboardInterrupt``
    once skorch has returned.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield lambda: False
        return
    hit: list[bool] = []

    def handler(signum, frame):
        hit.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hit)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def count_parameters(module: torch.nn.Module, trainable: bool = True) -> int:
    """Number of (trainable) parameters of a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def _to_tensors(inputs: dict) -> dict:
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


_COMMON_DOC = """
    modalities : tuple of str, default=("text", "audio", "vision")
        Modalities the model uses; ``X`` must hold them.  A subset gives a
        unimodal or bimodal variant of the architecture.
    batch_size : int
        Mini-batch size.
    learning_rate : float
        Adam learning rate.
    weight_decay : float
        Adam (coupled L2) weight decay.
    max_epochs : int or None, default=None
        Cap on training epochs; None trains until early stopping, as the
        reference does (correction ``epoch_cap``: 100).
    early_stop : int, default=8
        Stop after this many epochs without a validation-loss improvement.
    tol : float, default=1e-6
        Decrease of the validation loss that counts as an improvement.
    selection : {"reference", "weighted"}, default="reference"
        How the validation loss that selects the epoch is computed.
        ``"reference"`` (MMSA's trainers): the unweighted mean of the
        per-batch mean losses over freshly shuffled validation batches,
        rounded to 4 decimals; an epoch improves when its loss is
        ``<= best - tol``.  ``"weighted"`` (correction ``selection``): the
        sample-weighted mean in a fixed order, unrounded, improving when
        ``< best - tol``.
    validation_fraction : float, default=0.2
        Share of the labelled training rows held out for model selection
        when ``fit`` gets no ``X_valid``.
    device : str, default="cpu"
        Torch device.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, dropout and the internal split; the same
        int gives bit-identical predictions on CPU.
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    n_threads : int or None, default=None
        Torch intra-op threads during fit/predict (None: torch's default).
"""

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted private skorch net (``net_.module_`` is the torch module).
    n_epochs_, best_epoch_ : int
        Epochs trained and the epoch whose weights were restored.
    train_loss_curve_, valid_loss_curve_ : list of float
        Per-epoch losses.
    feature_dims_, seq_lens_ : dict
        Input shapes seen in ``fit``.
    n_params_ : int
        Trainable parameters.
"""
"""The fitted attributes every deep estimator has (docstring text)."""


class DeepRegressor(RegressorMixin, BaseEstimator):
    """Base class of the deep estimators (not used directly).

    Subclasses define ``__init__`` with their hyperparameters (including the
    common ones documented in ``_COMMON_DOC``) and implement
    ``_build_module``.  See the module docstring for the training protocol.
    """

    _multitask = False
    _loss_kind = "l1"
    _net_class = SimsNet

    #: The shell's parameters, checked in ``fit`` (subclasses add their own;
    #: :mod:`simsbench.estimators._constraints`).
    _parameter_constraints: dict = dict(SHARED_CONSTRAINTS)

    #: The training protocol's corrections, shared by every deep model
    #: (reference: MMSA's trainers, e.g. ``MMSA src/MMSA/trains/singleTask/TFN.py``).
    _corrections = (
        Correction(
            "selection",
            "The reference selects the epoch on the unweighted mean of per-batch validation "
            "losses over shuffled batches, rounded to 4 decimals (improvement: <= best - tol); "
            "corrected: the sample-weighted mean, unrounded (improvement: < best - tol).",
            {"selection": ("reference", "weighted")},
        ),
        Correction(
            "epoch_cap",
            "The reference trains until early stopping with no epoch cap; corrected: at most "
            "100 epochs.",
            {"max_epochs": (None, 100)},
        ),
    )

    # -- hooks ----------------------------------------------------------
    def _build_module(self, dims: dict, seq_lens: dict) -> torch.nn.Module:
        raise NotImplementedError

    def _prepare_inputs(self, X) -> dict:
        """Model inputs from the dict ``X`` (numpy arrays).

        The default passes each modality's padded sequence and its lengths.
        """
        out = {}
        for m in self._modalities():
            out[m] = X[m]
            out[LENGTH_KEYS[m]] = lengths_of(X, m)
        return out

    def _loss_weights(self) -> tuple[float, float, float, float]:
        return (1.0, 0.0, 0.0, 0.0)

    def _param_groups(self) -> list:
        """skorch ``param_groups``: (fnmatch pattern, options) pairs."""
        return []

    def _callbacks(self) -> list:
        return []

    def _net_kwargs(self) -> dict:
        return {}

    # -- helpers for subclasses -------------------------------------------
    def _modalities(self) -> tuple[str, ...]:
        mods = self.modalities
        if isinstance(mods, str):
            mods = (mods,)
        mods = tuple(mods)
        bad = [m for m in mods if m not in MODALITIES]
        if bad or not mods or len(set(mods)) != len(mods):
            raise ValueError(
                f"{type(self).__name__}: modalities must be a non-empty subset of "
                f"{MODALITIES}, got {self.modalities!r}"
            )
        # Always in canonical order so that modules are built consistently.
        return tuple(m for m in MODALITIES if m in mods)

    def _pooled(self, X, m, padded=False):
        return masked_mean(X[m], lengths_of(X, m), padded=padded)

    # -- public API ---------------------------------------------------------
    def build_module(self, feature_dims=(768, 33, 709), seq_lens=(39, 400, 55)):
        """Build the (untrained) torch module for the given data shapes.

        Parameters
        ----------
        feature_dims, seq_lens : tuple of 3 int
            (text, audio, vision) feature dimensions and padded lengths; the
            defaults are CH-SIMS's.

        Returns
        -------
        module : torch.nn.Module
        """
        validate_params(self)
        mods = self._modalities()
        dims = {m: int(d) for m, d in zip(MODALITIES, feature_dims) if m in mods}
        lens = {m: int(s) for m, s in zip(MODALITIES, seq_lens) if m in mods}
        return self._build_module(dims, lens)

    def _selection(self) -> str:
        """The ``selection`` rule (checked with the other parameters in ``fit``)."""
        return self.selection

    def _check_y(self, y, n, what="y"):
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim not in (1, 2) or y.shape[0] != n:
            raise ValueError(
                f"{type(self).__name__}: {what} must have shape (n,) or (n, 4) with "
                f"n={n}, got {y.shape}"
            )
        if y.ndim == 2 and y.shape[1] > 4:
            raise ValueError(f"{type(self).__name__}: {what} has {y.shape[1]} columns; "
                             "expected M or M/T/A/V")
        col_m = y if y.ndim == 1 else y[:, 0]
        if np.isnan(col_m).all():
            raise ValueError(f"{type(self).__name__}: {what} has no labelled row")
        check_y(y, n, type(self).__name__, what=what,
                semi_supervised=bool(getattr(type(self), "_semi_supervised", False)))
        return y

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def fit(self, X, y, X_valid=None, y_valid=None):
        """Train on ``(X, y)``, selecting the epoch on the validation loss.

        Parameters
        ----------
        X : dict of arrays
            ``dataset.X("train")``: each modality ``(n, L, D)`` and its
            ``<modality>_lengths``.
        y : array of shape (n,) or (n, 4)
            M labels, or the M/T/A/V matrix.  Rows whose M is NaN are
            unlabelled (used only by semi-supervised models).
        X_valid, y_valid : optional
            Validation data (the paper's valid split).  Without them a seeded
            ``validation_fraction`` holdout of the labelled rows is used.

        Returns
        -------
        self
        """
        validate_params(self)
        mods = self._modalities()
        name = type(self).__name__
        check_X(X, mods, name)
        y = self._check_y(y, int(np.shape(X[mods[0]])[0]))
        if (X_valid is None) != (y_valid is None):
            raise ValueError(f"{name}: pass both X_valid and y_valid, or neither")
        seed = self._seed()
        with _torch_threads(self.n_threads):
            torch.manual_seed(seed)
            np_state = np.random.get_state()
            np.random.seed(seed % (2**32 - 1))
            try:
                self._fit(X, y, X_valid, y_valid, seed, mods)
            finally:
                np.random.set_state(np_state)
        return self

    def _fit(self, X, y, X_valid, y_valid, seed, mods):
        self.feature_dims_ = {m: int(np.shape(X[m])[2]) for m in mods}
        self.seq_lens_ = {m: int(np.shape(X[m])[1]) for m in mods}
        inputs = _to_tensors(self._prepare_inputs(X))
        y_t = torch.from_numpy(y)
        if X_valid is not None:
            check_X(X_valid, mods, type(self).__name__)
            self._check_dims(X_valid)
            y_valid = self._check_y(y_valid, int(np.shape(X_valid[mods[0]])[0]), "y_valid")
            valid_ds = TensorDictDataset(
                _to_tensors(self._prepare_inputs(X_valid)), torch.from_numpy(y_valid)
            )
            split = PredefinedSplit(valid_ds)
        else:
            split = HoldoutSplit(self.validation_fraction, seed)
        module = self._build_module(self.feature_dims_, self.seq_lens_)
        reference = self._selection() == "reference"
        monitor = "valid_loss_reference" if reference else "valid_loss"
        stopper = LeanEarlyStopping(
            monitor=monitor, patience=self.early_stop, threshold=self.tol,
            threshold_mode="abs", lower_is_better=True, load_best=True,
            sink=print if self.verbose else _noop,
            rule="reference" if reference else "skorch",
        )
        callbacks = [("reference_valid_loss", ReferenceValidLoss()),
                     *self._callbacks(), ("early_stopping", stopper)]
        kwargs = dict(
            module=module,
            criterion=TaskLoss(self._effective_weights(y), kind=self._loss_kind),
            optimizer=torch.optim.Adam,
            lr=self.learning_rate,
            optimizer__weight_decay=self.weight_decay,
            optimizer__param_groups=self._param_groups(),
            optimizer__fused=True,  # one kernel per step instead of a loop of small ops
            max_epochs=NO_CAP if self.max_epochs is None else int(self.max_epochs),
            batch_size=self.batch_size,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=BatchIterator,
            # MMSA's validation DataLoader shuffles too (MMSA
            # src/MMSA/data_loader.py), which moves the short last batch
            # around and so the batch-mean loss that selects the epoch.
            iterator_valid__shuffle=reference,
            iterator_valid__merge_single_tail=False,
            train_split=split,
            callbacks=callbacks,
            device=self.device,
            verbose=int(self.verbose),
        )
        kwargs.update(self._net_kwargs())
        net = self._net_class(**kwargs)
        try:
            with warnings.catch_warnings(), _user_interrupt() as interrupted:
                warnings.filterwarnings("ignore", message=".*train_split.*")
                net.fit(inputs, y_t)
            if interrupted():
                raise KeyboardInterrupt(f"{type(self).__name__}.fit interrupted by the user")
        finally:  # an error mid-fit must not leave a spilled weights file behind
            stopper.cleanup()
        net.train_split = None  # do not keep (and pickle) the validation data
        self.net_ = net
        hist = net.history
        self.n_epochs_ = len(hist)
        losses = [float(h.get(monitor, np.inf)) for h in hist]
        # The epoch whose weights were restored: the stopper's last best one.
        self.best_epoch_ = int(stopper.best_epoch_) if stopper.best_epoch_ else (
            int(np.argmin(losses)) + 1)
        self.best_valid_loss_ = losses[self.best_epoch_ - 1]
        self.train_loss_curve_ = [float(h["train_loss"]) for h in hist]
        self.valid_loss_curve_ = losses
        self.n_params_ = count_parameters(net.module_)

    def _effective_weights(self, y):
        w = tuple(self._loss_weights())
        if y.ndim == 1:  # M only
            return (1.0 if w[0] == 0 else w[0], 0.0, 0.0, 0.0)
        return w

    def _check_dims(self, X):
        for m, d in self.feature_dims_.items():
            if np.shape(X[m])[2] != d:
                raise ValueError(
                    f"{type(self).__name__}: X[{m!r}] has {np.shape(X[m])[2]} features, "
                    f"but the model was fitted with {d}"
                )

    def _forward_all(self, X, method=None):
        check_is_fitted(self, "net_")
        mods = self._modalities()
        check_X(X, mods, type(self).__name__)
        self._check_dims(X)
        inputs = _to_tensors(self._prepare_inputs(X))
        ds = TensorDictDataset(inputs)
        module = self.net_.module_
        was_training = module.training
        module.eval()
        outs = []
        device = self.net_.device
        with _torch_threads(self.n_threads), torch.inference_mode():
            for Xi, _ in BatchIterator(ds, batch_size=max(self.batch_size, 256)):
                Xi = {k: v.to(device) for k, v in Xi.items()}
                out = module(**Xi) if method is None else getattr(module, method)(**Xi)
                outs.append(out)
        module.train(was_training)
        return outs

    def predict(self, X):
        """Predict the multimodal sentiment score M.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,), float64
        """
        outs = self._forward_all(X)
        first = [o[0] if isinstance(o, tuple | list) else o for o in outs]
        return torch.cat([f.reshape(-1) for f in first]).double().cpu().numpy()

    def score(self, X, y, sample_weight=None):
        """R² of the M prediction (column M when ``y`` is the M/T/A/V matrix)."""
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2:
            y = y[:, 0]
        return r2_score(y, self.predict(X), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.dict = True
        tags.input_tags.two_d_array = False
        tags.target_tags.multi_output = self._multitask
        return tags


def _noop(*args, **kwargs):
    return None


_MULTITASK_DOC = """
    tasks : tuple of str, default=("T", "A", "V")
        Active unimodal tasks, any subset of ``"T"``, ``"A"``, ``"V"``; the M
        task is always trained.  ``()`` trains M alone (the CH-SIMS paper's
        Table 5 rows).  Inactive heads still exist but get no loss.
    loss_weights : tuple of 4 float
        Weights of the M, T, A and V losses (training and validation).
"""


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
