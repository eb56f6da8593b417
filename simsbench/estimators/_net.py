"""The private skorch net of the deep shell and its loss.

The counterpart of skorch's ``skorch/net.py``: :class:`SimsNet` is a
:class:`skorch.NeuralNet` fed whole-tensor batches
(:mod:`simsbench.estimators._dataset`), with gradient accumulation and
clipping; :class:`TaskLoss` is its criterion.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import torch
from skorch import NeuralNet

from simsbench.estimators._dataset import TensorDictDataset

__all__ = [
    "SimsNet",
    "TaskLoss",
    "count_parameters",
    "mixed_precision",
    "to_float32",
    "torch_threads",
    "user_interrupt",
]


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


class SimsNet(NeuralNet):
    """skorch net with fast tensor batches, gradient accumulation/clipping.

    Internal to the estimators; customise training through ``get_loss``,
    ``train_step_single`` or ``run_single_epoch`` in a subclass.
    """

    def __init__(self, *args, accumulation_steps=1, grad_clip_value=None,
                 grad_clip_norm=None, clip_per="step", accumulation_tail="apply",
                 precision="float32", **kwargs):
        super().__init__(*args, **kwargs)
        self.accumulation_steps = accumulation_steps
        self.grad_clip_value = grad_clip_value
        self.grad_clip_norm = grad_clip_norm
        self.clip_per = clip_per
        self.accumulation_tail = accumulation_tail
        self.precision = precision

    def forward_in_precision(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` -- a forward pass of (part of) the module
        -- in the net's ``precision``: under ``torch.autocast`` to bfloat16
        for ``"bfloat16"``, its floating outputs cast back to float32."""
        # getattr: a net pickled before the parameter existed is float32
        precision = getattr(self, "precision", "float32")
        if precision == "float32":
            return fn(*args, **kwargs)
        with mixed_precision(precision, self.device):
            out = fn(*args, **kwargs)
        return to_float32(out)

    def infer(self, x, **fit_params):
        return self.forward_in_precision(super().infer, x, **fit_params)

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


def mixed_precision(precision: str, device="cpu"):
    """``torch.autocast`` to bfloat16 on ``device``'s type when ``precision``
    is ``"bfloat16"``; a no-op context for ``"float32"``."""
    if precision == "float32":
        return contextlib.nullcontext()
    kind = torch.device(device).type if device is not None else "cpu"
    return torch.autocast(device_type=kind, dtype=torch.bfloat16)


def to_float32(out):
    """``out`` (a tensor, or tuples/lists/dicts of them) with every
    lower-precision floating tensor cast to float32, so that losses, metrics
    and predictions are computed in float32 whatever the forward ran in."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() and out.dtype != torch.float64 else out
    if isinstance(out, tuple | list):
        return type(out)(to_float32(o) for o in out)
    if isinstance(out, dict):
        return {k: to_float32(v) for k, v in out.items()}
    return out


def count_parameters(module: torch.nn.Module, trainable: bool = True) -> int:
    """Number of (trainable) parameters of a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


@contextlib.contextmanager
def torch_threads(n):
    """Run with ``n`` torch intra-op threads (``None``: leave torch's setting)."""
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
def user_interrupt():
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
