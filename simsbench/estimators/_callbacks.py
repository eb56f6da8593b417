"""Callbacks of the deep shell: model selection on the validation loss.

The counterpart of skorch's ``skorch/callbacks/``:

* :class:`ReferenceValidLoss` records the reference implementation's
  validation loss (MMSA's trainers) in the history;
* :class:`LeanEarlyStopping` is skorch's :class:`~skorch.callbacks.EarlyStopping`
  -- skorch decides when an epoch improves and when to stop -- with the
  reference's improvement rule as an option and a memory-lean keeping of the
  best epoch's weights.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import torch
from skorch.callbacks import Callback, EarlyStopping, LRScheduler

__all__ = [
    "SPILL_BYTES",
    "LeanEarlyStopping",
    "ReferenceValidLoss",
    "plateau_scheduler",
    "release_training_state",
]

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

    skorch's callback counts the misses, moves the threshold, records
    ``best_epoch_`` and stops training; this subclass only changes

    * the improvement rule, when ``rule="reference"``: an epoch improves when
      ``score <= best - threshold`` (MMSA's trainers:
      ``isBetter = cur_valid <= best_valid - 1e-6``, so an improvement of
      exactly ``threshold`` counts) instead of skorch's strict ``<``;
    * how the best weights are kept (``restore_best=True``; skorch's own
      ``load_best`` stays off, so skorch never deep-copies them): on a new
      best epoch the previous copy is dropped before the new one is taken;
      weights larger than ``SPILL_BYTES`` are saved to a temporary file
      (under ``tempfile.gettempdir()``, removed when training ends) instead
      of being copied in memory; when training ends, gradients and optimizer
      state are freed *before* the best weights are loaded back.

    Parameters
    ----------
    monitor, patience, threshold, threshold_mode, lower_is_better, sink
        As in :class:`skorch.callbacks.EarlyStopping`.
    rule : {"skorch", "reference"}, default="skorch"
        The improvement rule: skorch's strict ``<`` or the reference's ``<=``.
    restore_best : bool, default=True
        Keep the best epoch's weights and load them back when training ends.
    """

    def __init__(self, monitor="valid_loss", patience=5, threshold=1e-4, threshold_mode="rel",
                 lower_is_better=True, sink=print, rule="skorch", restore_best=True):
        super().__init__(monitor=monitor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, lower_is_better=lower_is_better,
                         sink=sink, load_best=False)
        self.rule = rule
        self.restore_best = restore_best

    def _is_score_improved(self, score):
        # skorch's comparison of a score with ``dynamic_threshold_`` (the best
        # score moved by ``threshold``), the one method its decision calls.
        if self.rule == "reference":
            if self.lower_is_better:
                return score <= self.dynamic_threshold_
            return score >= self.dynamic_threshold_
        return super()._is_score_improved(score)

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.cleanup()

    def on_epoch_end(self, net, **kwargs):
        try:
            super().on_epoch_end(net, **kwargs)  # raises KeyboardInterrupt to stop
        finally:
            if self.restore_best and self.best_epoch_ == net.history[-1, "epoch"]:
                self._keep(net.module_.state_dict())

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
        # Replaces skorch's restore (which ``load_best=False`` turns off).
        try:
            release_training_state(net)
            if self.restore_best and self.best_epoch_ != net.history[-1, "epoch"]:
                path = getattr(self, "best_weights_path_", None)
                if path is not None:
                    state = torch.load(path, map_location=net.device, weights_only=True,
                                       mmap=True)
                    net.module_.load_state_dict(state)
                    del state
                elif self.best_model_weights_ is not None:
                    net.module_.load_state_dict(self.best_model_weights_)
                if self.sink is not print or net.verbose:
                    self.sink(f"Restoring best model from epoch {self.best_epoch_}.")
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


def plateau_scheduler(selection: str, factor: float, patience: int) -> LRScheduler:
    """ReduceLROnPlateau stepped on the validation loss that selects the
    epoch, as MMSA's trainers do: with ``selection="reference"`` the rounded
    batch mean (``valid_loss_reference``), else ``valid_loss``."""
    monitor = "valid_loss_reference" if selection == "reference" else "valid_loss"
    return LRScheduler(policy="ReduceLROnPlateau", monitor=monitor, mode="min", factor=factor,
                       patience=patience)
