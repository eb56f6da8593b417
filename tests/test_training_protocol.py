"""The reference training protocol of the deep shell, on hand-computed
histories and a hand-written reference loop (MMSA's trainers, e.g.
``MMSA src/MMSA/trains/singleTask/MULT.py``):

* the validation loss that selects the epoch is the unweighted mean of the
  per-batch mean losses, rounded to 4 decimals;
* an epoch improves when its loss is ``<= best - tol``; training stops after
  ``early_stop`` epochs without one; there is no epoch cap;
* with gradient accumulation over U batches, gradients are clipped after
  every backward and the last (n_batches mod U) batches are discarded.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skorch.history import History  # noqa: E402

from simsbench.estimators import LFDNN  # noqa: E402
from simsbench.estimators._deep import (  # noqa: E402
    BatchIterator,
    LeanEarlyStopping,
    SimsNet,
    TaskLoss,
)

TINY = LFDNN._tiny_params


class _StubNet:
    """What EarlyStopping reads from a net: its history, module, verbosity."""

    def __init__(self):
        self.history = History()
        self.module_ = torch.nn.Linear(1, 1)
        self.verbose = 0


def _drive(losses, rule, tol, patience):
    """Feed a loss history to the stopper; return (stopped at, best epoch)."""
    stopper = LeanEarlyStopping(monitor="loss", patience=patience, threshold=tol,
                                threshold_mode="abs", lower_is_better=True, rule=rule)
    net = _StubNet()
    stopper.on_train_begin(net)
    for epoch, loss in enumerate(losses, start=1):
        net.history.new_epoch()
        net.history.record("epoch", epoch)
        net.history.record("loss", loss)
        try:
            stopper.on_epoch_end(net)
        except KeyboardInterrupt:
            return epoch, stopper.best_epoch_
    return None, stopper.best_epoch_


def test_reference_rule_counts_an_improvement_of_exactly_tol():
    # Binary fractions, so that best - tol is exact: 0.75 <= 1.0 - 0.25.
    losses = [1.0, 0.75, 0.625, 0.625, 0.625, 0.625]
    # reference: epochs 1 and 2 improve; 3, 4, 5 miss (0.625 > 0.5) -> stop at 5
    assert _drive(losses, "reference", tol=0.25, patience=3) == (5, 2)
    # skorch's rule needs a strict improvement: epoch 2 misses, epoch 3
    # (0.625 < 0.75) improves, then 4, 5, 6 miss -> stop at 6
    assert _drive(losses, "skorch", tol=0.25, patience=3) == (6, 3)


def test_reference_rule_patience_and_ties():
    # tol 1e-6 on 4-decimal losses: a tie is no improvement.
    losses = [0.5, 0.4999, 0.4999, 0.5001, 0.4998, 0.4998, 0.4998]
    # best 0.4999 at epoch 2; epochs 3 and 4 miss (patience 2) -> stop at 4
    assert _drive(losses, "reference", tol=1e-6, patience=2) == (4, 2)
    # with patience 3, epoch 5 (0.4998) improves; 6, 7 tie -> not stopped yet
    assert _drive(losses, "reference", tol=1e-6, patience=3) == (None, 5)


def _uneven(tiny):
    # 16 validation clips in batches of 6: 6 + 6 + 4, so the batch mean and
    # the sample mean differ.
    return LFDNN(**{**TINY, "batch_size": 6, "max_epochs": 3, "early_stop": 3},
                 random_state=0)


def test_reference_validation_loss_is_the_rounded_mean_of_batch_means(tiny):
    model = _uneven(tiny).fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
                              y_valid=tiny.y("valid"))
    for row in model.net_.history:
        batch = [b["valid_loss"] for b in row["batches"] if "valid_loss" in b]
        sizes = [b["valid_batch_size"] for b in row["batches"] if "valid_loss" in b]
        assert sizes == [6, 6, 4]
        assert row["valid_loss_reference"] == round(sum(batch) / len(batch), 4)
        weighted = np.average(batch, weights=sizes)
        assert row["valid_loss"] == pytest.approx(weighted)
    assert model.valid_loss_curve_ == [r["valid_loss_reference"] for r in model.net_.history]
    assert model.best_valid_loss_ == model.valid_loss_curve_[model.best_epoch_ - 1]


def test_weighted_selection_uses_the_sample_mean(tiny):
    model = _uneven(tiny).set_params(selection="weighted")
    model.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
              y_valid=tiny.y("valid"))
    assert model.valid_loss_curve_ == [r["valid_loss"] for r in model.net_.history]


def test_no_epoch_cap_trains_until_early_stopping(tiny):
    # A tolerance no later epoch can beat: epoch 1 improves on the initial
    # best (+inf), epochs 2 and 3 miss, and patience alone stops training.
    model = LFDNN(**{**TINY, "max_epochs": None, "early_stop": 2, "tol": 100.0},
                  random_state=0)
    model.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
              y_valid=tiny.y("valid"))
    assert (model.n_epochs_, model.best_epoch_) == (3, 1)


def _reference_epoch(module, X, y, U, clip, lr):
    """MMSA's accumulation loop (MULT.py), written out with plain torch."""
    opt = torch.optim.SGD(module.parameters(), lr=lr)
    left = U
    for start in range(0, len(y), 2):
        if left == U:
            opt.zero_grad()
        left -= 1
        out = module(X[start:start + 2]).reshape(-1)
        loss = (out - y[start:start + 2]).abs().mean()
        loss.backward()
        torch.nn.utils.clip_grad_value_(list(module.parameters()), clip)
        if not left:
            opt.step()
            left = U
    # the end-of-epoch flush never fires: the tail's gradients are dropped


class _Lin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x).reshape(-1)


@pytest.mark.parametrize("clip_per, tail", [("backward", "drop"), ("step", "apply")])
def test_accumulation_and_clipping_placement(clip_per, tail):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(10, 3, generator=g) * 5  # 5 batches of 2: two groups of 2 + a tail
    y = torch.randn(10, generator=g)
    torch.manual_seed(1)
    module = _Lin()
    ref = _Lin()
    ref.load_state_dict(module.state_dict())
    net = SimsNet(module=module, criterion=TaskLoss(), optimizer=torch.optim.SGD, lr=0.1,
                  max_epochs=1, batch_size=2, iterator_train=BatchIterator,
                  iterator_train__shuffle=False, train_split=None, verbose=0,
                  accumulation_steps=2, grad_clip_value=0.05, clip_per=clip_per,
                  accumulation_tail=tail)
    net.fit({"x": X}, y)
    _reference_epoch(ref, X, y, U=2, clip=0.05, lr=0.1)
    same = torch.allclose(net.module_.lin.weight, ref.lin.weight, atol=1e-7)
    assert same == (clip_per == "backward" and tail == "drop")


def test_ctrl_c_during_fit_raises_instead_of_returning_a_half_trained_model(tiny):
    # skorch ends training on KeyboardInterrupt (early stopping's signal) and
    # returns normally; a user's Ctrl-C must not be taken for early stopping.
    import os
    import signal

    from skorch.callbacks import Callback

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored in this process (started as a background job)")

    class CtrlC(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                os.kill(os.getpid(), signal.SIGINT)

    model = LFDNN(**{**TINY, "max_epochs": 6}, random_state=0)
    model._callbacks = lambda: [("ctrl_c", CtrlC())]
    with pytest.raises(KeyboardInterrupt, match="interrupted by the user"):
        model.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
                  y_valid=tiny.y("valid"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # early stopping itself still ends a fit normally
    model = LFDNN(**{**TINY, "max_epochs": None, "early_stop": 1, "tol": 100.0},
                  random_state=0)
    model.fit(tiny.X("train"), tiny.y("train"), X_valid=tiny.X("valid"),
              y_valid=tiny.y("valid"))
    assert model.n_epochs_ == 2
