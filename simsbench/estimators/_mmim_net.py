"""MMIM's training net: two optimizers and the two-stage epoch.

Reference: MMSA ``src/MMSA/trains/singleTask/MMIM.py``.
"""

from __future__ import annotations

import torch
from skorch.dataset import unpack_data

from simsbench.estimators._net import SimsNet

__all__ = ["MMIMNet"]


class MMIMNet(SimsNet):
    """Two optimizers and the two-stage epoch of MMIM.

    Stage 1 passes over the training batches minimising ``-lld`` and steps
    only the MMILB optimizer (``optimizer_mmilb_``); stage 2 minimises
    ``L1 + alpha * nce - beta * lld - beta * H`` with the main optimizer.
    """

    def __init__(self, *args, lr_mmilb=1e-3, weight_decay_mmilb=1e-4, alpha=0.1, beta=0.1,
                 mem_size=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_mmilb = lr_mmilb
        self.weight_decay_mmilb = weight_decay_mmilb
        self.alpha = alpha
        self.beta = beta
        self.mem_size = mem_size

    def initialize_optimizer(self, *args, **kwargs):
        named = list(self.get_all_learnable_params())
        mi = [p for n, p in named if n.startswith("mi_")]
        main = [(n, p) for n, p in named if not n.startswith("mi_")]
        pargs, pkwargs = self.get_params_for_optimizer("optimizer", main)
        self.optimizer_ = self.optimizer(*pargs, **pkwargs)
        self.optimizer_mmilb_ = (
            torch.optim.Adam(mi, lr=self.lr_mmilb, weight_decay=self.weight_decay_mmilb)
            if mi else None
        )
        return self

    def _clip(self):
        if self.grad_clip_norm is not None and self.grad_clip_norm > 0:
            params = [p for p in self.module_.parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip_norm)

    def _apply_step(self):
        self._clip()  # over all parameters, as the reference
        self.optimizer_.step()
        self.module_.zero_grad(set_to_none=True)

    def _train_mmilb(self, iterator):
        self._set_training(True)
        total, n = 0.0, 0
        for batch in iterator:
            Xi, _ = unpack_data(batch)
            self.module_.zero_grad(set_to_none=True)
            _, extras = self.infer(Xi)
            loss = -extras["lld"]
            loss.backward()
            self._clip()
            self.optimizer_mmilb_.step()
            bs = int(next(iter(Xi.values())).shape[0])
            total += float(loss.detach()) * bs
            n += bs
        self.module_.zero_grad(set_to_none=True)
        self.history.record("mmilb_loss", total / max(n, 1))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training:
            if self.optimizer_mmilb_ is not None:
                self._train_mmilb(iterator)
            self._mem = None
            self._i_batch = 0
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def _remember(self, pn):
        if not pn:
            return
        if self._mem is None:
            self._mem = {k: {"pos": [], "neg": []} for k in pn}
        for k, d in pn.items():
            for s in ("pos", "neg"):
                buf = self._mem[k][s]
                if len(buf) < self.mem_size:
                    buf.append(d[s].detach())
                else:
                    buf[self._i_batch % self.mem_size] = d[s].detach()

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y = yi.to(self.device)
        labels = y if y.ndim == 1 else y[:, 0]
        mem = self._mem if self._i_batch >= self.mem_size else None
        pred, extras = self.infer(Xi, labels=labels, mem=mem)
        loss = self.get_loss(pred, yi, X=Xi, training=True)
        loss = loss + self.alpha * extras["nce"] - self.beta * extras["lld"]
        if self._i_batch > self.mem_size and extras["H"] is not None:
            loss = loss - self.beta * extras["H"]
        loss.backward()
        self._remember(extras["pn"])
        self._i_batch += 1
        return {"loss": loss, "y_pred": pred}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        pred = y_pred[0] if isinstance(y_pred, tuple | list) else y_pred
        return super().get_loss(pred, y_true, X=X, training=training)
