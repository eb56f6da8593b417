"""Self-MM's training net: the Unimodal Label Generation Module (ULGM).

Reference: MMSA ``src/MMSA/trains/multiTask/SELF_MM.py``.
"""

from __future__ import annotations

import torch
from skorch.dataset import unpack_data

from simsbench.estimators._net import SimsNet

__all__ = ["SelfMMNet"]

_MODES = ("fusion", "text", "audio", "vision")


class SelfMMNet(SimsNet):
    """Trains Self-MM with the Unimodal Label Generation Module (ULGM).

    Keeps, per training row (keyed by ``X["index"]``), the four label tables
    (``ulgm_labels_``, initialised to the M label) and the feature bank
    (``ulgm_features_``), and the positive/negative class centres.
    """

    def __init__(self, *args, ulgm_H=1.0, exclude_zero=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.ulgm_H = ulgm_H
        self.exclude_zero = exclude_zero

    # -- ULGM state -----------------------------------------------------------
    def _init_ulgm(self, dataset):
        idx = dataset.X["index"].long()
        y = dataset.y if dataset.y.ndim == 1 else dataset.y[:, 0]
        n = int(idx.max()) + 1
        dev = self.device
        table = torch.full((n,), float("nan"), device=dev)
        table[idx.to(dev)] = y.to(dev, torch.float32)
        self.ulgm_labels_ = {mode: table.clone() for mode in _MODES}
        self.ulgm_features_ = None  # sized on the first batch
        self.ulgm_centres_ = None

    def _update_bank(self, feats, idx):
        if self.ulgm_features_ is None:
            n = self.ulgm_labels_["fusion"].shape[0]
            self.ulgm_features_ = {k: torch.zeros(n, v.shape[1], device=v.device)
                                   for k, v in feats.items()}
        for k, v in feats.items():
            self.ulgm_features_[k][idx] = v
        centres = {}
        for k, bank in self.ulgm_features_.items():
            lab = self.ulgm_labels_[k]
            pos = lab > 0 if self.exclude_zero else lab >= 0
            centres[k] = {"pos": bank[pos].mean(dim=0), "neg": bank[lab < 0].mean(dim=0)}
        self.ulgm_centres_ = centres

    def _update_labels(self, feats, idx, epoch):
        eps = 1e-8
        c = self.ulgm_centres_

        def delta(mode):
            d_p = torch.norm(feats[mode] - c[mode]["pos"], dim=-1)
            d_n = torch.norm(feats[mode] - c[mode]["neg"], dim=-1)
            return (d_n - d_p) / (d_p + eps)

        delta_f = delta("fusion")
        y_f = self.ulgm_labels_["fusion"][idx]
        for mode in ("text", "audio", "vision"):
            if mode not in feats:
                continue
            delta_s = delta(mode)
            alpha = delta_s / (delta_f + eps)
            new = 0.5 * alpha * y_f + 0.5 * (y_f + delta_s - delta_f)
            new = torch.clamp(new, -self.ulgm_H, self.ulgm_H)
            old = self.ulgm_labels_[mode][idx]
            self.ulgm_labels_[mode][idx] = (epoch - 1) / (epoch + 1) * old + 2 / (epoch + 1) * new

    # -- training -------------------------------------------------------------
    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training and (len(self.history) <= 1 or not hasattr(self, "ulgm_labels_")):
            self._init_ulgm(iterator.dataset)
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, _ = unpack_data(batch)
        idx = Xi["index"].to(self.device).long()
        m, t, a, v, feats = self.infer(Xi, **fit_params)
        labels = self.ulgm_labels_
        y_f = labels["fusion"][idx]
        ok = ~torch.isnan(y_f)
        loss = None
        heads = {"fusion": m, "text": t, "audio": a, "vision": v}
        if bool(ok.any()):
            for mode, pred in heads.items():
                if pred is None:
                    continue
                target = labels[mode][idx]
                if mode == "fusion":
                    w = torch.ones_like(target)
                else:
                    w = torch.tanh(torch.abs(target - y_f))
                term = (w[ok] * torch.abs(pred[ok] - target[ok])).mean()
                loss = term if loss is None else loss + term
        if loss is None:  # a batch of unlabelled rows only
            loss = sum(p.sum() * 0.0 for p in heads.values() if p is not None)
        loss.backward()
        with torch.no_grad():
            detached = {k: f.detach() for k, f in feats.items()}
            epoch = len(self.history)
            if epoch > 1 and self.ulgm_centres_ is not None:
                self._update_labels(detached, idx, epoch)
            self._update_bank(detached, idx)
        return {"loss": loss, "y_pred": m}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # Validation: plain L1 on M.
        m = y_pred[0] if isinstance(y_pred, tuple | list) else y_pred
        return super().get_loss(m, y_true, X=X, training=training)
