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

The shell is cut as skorch cuts its own code: the estimator base here (and
:class:`~simsbench.estimators._multitask.MultiTaskRegressor`), the net and
its loss in :mod:`simsbench.estimators._net`, the callbacks in
:mod:`simsbench.estimators._callbacks`, the datasets, batches and splits in
:mod:`simsbench.estimators._dataset`.  Their names stay importable from here.
"""

from __future__ import annotations

import numbers
import warnings
from abc import ABCMeta, abstractmethod

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.helper import predefined_split

from simsbench.datasets import LENGTH_KEYS, MODALITIES
from simsbench.estimators._callbacks import (
    SPILL_BYTES,
    LeanEarlyStopping,
    ReferenceValidLoss,
    release_training_state,
)
from simsbench.estimators._constraints import SHARED as SHARED_CONSTRAINTS
from simsbench.estimators._constraints import validate_params
from simsbench.estimators._dataset import BatchIterator, HoldoutSplit, TensorDictDataset
from simsbench.estimators._dataset import to_tensors as _to_tensors
from simsbench.estimators._docstrings import _ATTRIBUTES_DOC, _COMMON_DOC, _MULTITASK_DOC
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import check_X, check_y, lengths_of, masked_mean
from simsbench.estimators._net import (
    SimsNet,
    TaskLoss,
    count_parameters,
    mixed_precision,
    to_float32,
)
from simsbench.estimators._net import torch_threads as _torch_threads
from simsbench.estimators._net import user_interrupt as _user_interrupt
from simsbench.utils.tags import as_simsbench_tags, declared_modalities

__all__ = [
    "DeepRegressor",
    # the shell's parts, importable from here as before the split:
    "SPILL_BYTES",
    "BatchIterator",
    "HoldoutSplit",
    "LeanEarlyStopping",
    "ReferenceValidLoss",
    "SimsNet",
    "TaskLoss",
    "TensorDictDataset",
    "_ATTRIBUTES_DOC",
    "_COMMON_DOC",
    "_MULTITASK_DOC",
    "count_parameters",
    "release_training_state",
]


#: ``max_epochs=None`` (the reference: no cap) runs at most this many epochs.
NO_CAP = 10**6


# ---------------------------------------------------------------------------
# the estimator base

class DeepRegressor(RegressorMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the deep estimators (not used directly).

    Subclasses define ``__init__`` with their hyperparameters (including the
    common ones documented in ``_COMMON_DOC``) and implement
    ``_build_module``.  See the module docstring for the training protocol.
    """

    _multitask = False
    _semi_supervised = False  # learns from unlabelled rows (the tag semi_supervised)
    _loss_kind = "l1"
    _net_class = SimsNet

    #: The shell's parameters, checked in ``fit`` (subclasses add their own;
    #: :mod:`simsbench.estimators._constraints`).
    _parameter_constraints: dict = dict(SHARED_CONSTRAINTS)

    #: The training protocol's corrections, shared by every deep model
    #: (reference: MMSA's trainers, e.g. ``MMSA src/MMSA/trains/singleTask/TFN.py``).
    _corrections: tuple[Correction, ...] = (
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
    @abstractmethod
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
        # the declared constraint: this also runs outside fit (predict, build_module)
        validate_params(self, ["modalities"])
        mods = (self.modalities,) if isinstance(self.modalities, str) else tuple(self.modalities)
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

    def _precision(self) -> str:
        """``precision`` (``"float32"`` for subclasses without the parameter)."""
        return getattr(self, "precision", "float32")

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
            split = predefined_split(valid_ds)
        else:
            split = HoldoutSplit(self.validation_fraction, seed)
        module = self._build_module(self.feature_dims_, self.seq_lens_)
        reference = self._selection() == "reference"
        monitor = "valid_loss_reference" if reference else "valid_loss"
        stopper = LeanEarlyStopping(
            monitor=monitor, patience=self.early_stop, threshold=self.tol,
            threshold_mode="abs", lower_is_better=True, restore_best=True,
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
            precision=self._precision(),
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
        with (_torch_threads(self.n_threads), torch.inference_mode(),
              mixed_precision(self._precision(), device)):
            for Xi, _ in BatchIterator(ds, batch_size=max(self.batch_size, 256)):
                Xi = {k: v.to(device) for k, v in Xi.items()}
                out = module(**Xi) if method is None else getattr(module, method)(**Xi)
                outs.append(to_float32(out))
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
        tags = as_simsbench_tags(super().__sklearn_tags__())
        tags.input_tags.dict = True
        tags.input_tags.two_d_array = False
        tags.target_tags.multi_output = self._multitask
        tags.simsbench.multi_task = self._multitask
        tags.simsbench.semi_supervised = self._semi_supervised
        tags.simsbench.modalities = declared_modalities(self)
        return tags


def _noop(*args, **kwargs):
    return None
