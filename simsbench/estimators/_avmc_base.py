"""What AV-MC and AV-MC (Semi) share on the estimator side: the mixup
training steps of both (``ch-sims-v2 trains/multiTask/V1.py``,
``trains/multiTask/V1_Semi.py``), the base estimator (constraints, inputs,
module, parameter groups) and the parameter documentation they share."""

from __future__ import annotations

import numpy as np
import torch
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from simsbench.datasets import LENGTH_KEYS
from simsbench.estimators._constraints import (
    Ints,
    Probabilities,
    boolean,
    nonnegative_real,
    options,
    positive_int,
    positive_real,
)
from simsbench.estimators._deep import SimsNet
from simsbench.estimators._inputs import lengths_of
from simsbench.estimators._multitask import MultiTaskRegressor
from simsbench.estimators.modules._avmc import HEAD_INDEX, AVMCModule

# ---------------------------------------------------------------------------
# training: the mixup steps

def _draw_mixup(alpha: float, n: int) -> tuple[float, torch.Tensor]:
    """One mixup draw, as the reference's ``mixup_data``: ``lambda ~
    Beta(alpha, alpha)`` from numpy's global generator and a permutation of
    the ``n`` rows from torch's (both seeded by the estimator's ``fit``)."""
    return float(np.random.beta(alpha, alpha)), torch.randperm(n)


class _MixupNet(SimsNet):
    """What both AV-MC nets share: the mixup switches and the clean pass."""

    def __init__(self, *args, mixup_audio=True, mixup_vision=True, mixup_alpha=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.mixup_audio = mixup_audio
        self.mixup_vision = mixup_vision
        self.mixup_alpha = mixup_alpha

    def _clean_pass(self, batch):
        """``(Xi, yi, reps, y_pred, loss)`` of ``batch`` in training mode:
        its tensors, the encoder outputs, the heads' predictions and the
        supervised loss (NaN rows skipped by the criterion)."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        yi = to_tensor(yi, device=self.device)
        module = self.module_

        def encode_and_heads(**inputs):
            reps = module.encode(**inputs)
            return reps, module.heads(reps)

        reps, y_pred = self.forward_in_precision(encode_and_heads, **Xi)
        return Xi, yi, reps, y_pred, self.criterion_(y_pred, yi)


class _AVMCNet(_MixupNet):
    """V1 step: clean pass + audio-mixup pass + vision-mixup pass, one backward
    (``ch-sims-v2 trains/multiTask/V1.py``)."""

    def __init__(self, *args, mixup_level="input", **kwargs):
        super().__init__(*args, **kwargs)
        self.mixup_level = mixup_level

    def _mixup_loss(self, module, Xi, reps, y2, modality):
        lam, perm = _draw_mixup(self.mixup_alpha, y2.shape[0])
        if self.mixup_level == "representation":
            mixed = dict(reps)
            mixed[modality] = lam * reps[modality] + (1 - lam) * reps[modality][perm]
            y_pred = self.forward_in_precision(module.heads, mixed)
        else:  # input level: the features the encoder sees
            Xm = dict(Xi)
            x = Xi[modality]
            Xm[modality] = lam * x + (1 - lam) * x[perm.to(x.device)]
            key = LENGTH_KEYS[modality]
            if key in Xi:
                Xm[key] = torch.maximum(Xi[key], Xi[key][perm.to(Xi[key].device)])
            y_pred = self.forward_in_precision(module, **Xm)
        # Loss-mixed criterion: the M head and the mixed modality's head are
        # scored against both targets; the other heads against their own.
        y_perm = y2.clone()
        cols = [c for c in (0, HEAD_INDEX[modality]) if c < y2.shape[1]]
        y_perm[:, cols] = y2[perm.to(y2.device)][:, cols]
        return lam * self.criterion_(y_pred, y2) + (1 - lam) * self.criterion_(y_pred, y_perm)

    def train_step_single(self, batch, **fit_params):
        Xi, yi, reps, y_pred, loss = self._clean_pass(batch)
        module = self.module_
        y2 = yi if yi.ndim == 2 else yi[:, None]
        for m, on in (("audio", self.mixup_audio), ("vision", self.mixup_vision)):
            if on and m in module.modalities:
                loss = loss + self._mixup_loss(module, Xi, reps, y2, m)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}


class _IndexBatchIterator:
    """Shuffled batches of ``dataset`` restricted to ``indices`` (no copy)."""

    def __init__(self, dataset, indices, batch_size):
        self.dataset = dataset
        self.indices = indices
        self.batch_size = int(batch_size)

    def _bounds(self):
        n, b = len(self.indices), self.batch_size
        starts = list(range(0, n, b))
        if len(starts) > 1 and n - starts[-1] == 1:  # no 1-sample batch (BatchNorm)
            starts.pop()
        return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]

    def __len__(self):
        return len(self._bounds())

    def __iter__(self):
        order = self.indices[torch.randperm(len(self.indices))]
        for start, stop in self._bounds():
            yield self.dataset[order[start:stop]]


#: How a pass-1 batch without labelled rows is trained (``unlabelled_batches``).
UNLABELLED_BATCHES = ("skip_backward", "backward")


class _AVMCSemiNet(_MixupNet):
    """Algorithm 1: pass 1 over all rows (supervised loss on labelled rows +
    mixup-consistency on all rows), pass 2 supervised over labelled rows
    (``ch-sims-v2 trains/multiTask/V1_Semi.py``)."""

    def __init__(self, *args, unlabelled_batches="skip_backward", **kwargs):
        super().__init__(*args, **kwargs)
        self.unlabelled_batches = unlabelled_batches
        self._semi_pass = False

    def _consistency(self, module, reps, y_pred, modality):
        f, p = reps[modality], y_pred[HEAD_INDEX[modality]]
        lam, perm = _draw_mixup(self.mixup_alpha, f.shape[0])
        perm = perm.to(f.device)
        f_mix = lam * f + (1 - lam) * f[perm]
        p_mix = lam * p + (1 - lam) * p[perm]  # not detached, as the reference
        head = self.forward_in_precision(module.head, modality, f_mix)
        return (head - p_mix).abs().mean()

    def _zero_stale_grads(self):
        """Zero-filled gradients for every parameter the optimizer has
        stepped before.

        The reference calls ``optimizer.zero_grad()`` before each batch; in
        the torch of its time (1.x, the default until torch 2.0) that filled
        the existing gradients with zeros instead of dropping them, so its
        Adam step after a skipped backward still moved those parameters
        (momentum and weight decay).
        """
        state = self.optimizer_.state
        for group in self.optimizer_.param_groups:
            for p in group["params"]:
                if p.grad is None and state.get(p):
                    p.grad = torch.zeros_like(p)

    def train_step_single(self, batch, **fit_params):
        if not self._semi_pass:
            return super().train_step_single(batch, **fit_params)
        # NaN (unlabelled) rows are skipped by the supervised loss
        _, yi, reps, y_pred, loss = self._clean_pass(batch)
        module = self.module_
        w = self.criterion_.weights
        # the reference's order: the vision term first, then the audio term
        for m, on in (("vision", self.mixup_vision), ("audio", self.mixup_audio)):
            k = HEAD_INDEX[m]
            if on and m in module.modalities and w[k] > 0:
                loss = loss + w[k] * self._consistency(module, reps, y_pred, m)
        y2 = yi if yi.ndim == 2 else yi[:, None]
        if self.unlabelled_batches == "backward" or bool((~torch.isnan(y2[:, 0])).any()):
            loss.backward()
        else:  # the reference: no backward, but the optimizer still steps
            self._zero_stale_grads()
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if not training or iterator is None:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        self._semi_pass = True
        try:
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        finally:
            self._semi_pass = False
        ds = iterator.dataset
        y = ds.y if ds.y.ndim == 2 else ds.y[:, None]
        labelled = torch.nonzero(~torch.isnan(y).all(dim=1)).reshape(-1)
        if len(labelled):
            it2 = _IndexBatchIterator(ds, labelled, iterator.batch_size)
            super().run_single_epoch(it2, training, prefix, step_fn, **fit_params)


# ---------------------------------------------------------------------------
# estimators

class _AVMCBase(MultiTaskRegressor):
    """Shared constraints, inputs, module and parameter groups."""

    _fusion_layer = 3

    _parameter_constraints = {
        "encoder": [options("lstm", "dnn")],
        "hidden_dims": [Ints(3)],
        "post_dims": [Ints(3)],
        "post_fusion_dim": [positive_int()],
        "dropouts": [Probabilities(2)],
        "post_dropouts": [Probabilities(4)],
        "output_range": [positive_real()],
        "mixup_audio": [boolean],
        "mixup_vision": [boolean],
        "mixup_alpha": [positive_real()],
        "learning_rate_audio": [positive_real()],
        "learning_rate_vision": [positive_real()],
        "weight_decay_audio": [nonnegative_real()],
        "weight_decay_vision": [nonnegative_real()],
    }

    def _reconstruction(self) -> bool:
        return False

    def _prepare_inputs(self, X):
        out = {}
        for m in self._modalities():
            if m == "text":  # the [CLS] position of the precomputed features
                out["text"] = np.asarray(X["text"])[:, 0, :]
            elif self.encoder == "dnn":  # the loader's length-aware mean
                out[m] = self._pooled(X, m)
            else:
                out[m] = X[m]
                out[LENGTH_KEYS[m]] = lengths_of(X, m)
        return out

    def _build_module(self, dims, seq_lens):
        return AVMCModule(dims, self.encoder, tuple(self.hidden_dims), tuple(self.post_dims),
                          int(self.post_fusion_dim), tuple(self.dropouts),
                          tuple(self.post_dropouts), self._fusion_layer,
                          float(self.output_range), reconstruction=self._reconstruction())

    def _param_groups(self):
        # The reference's groups: audio encoder, vision encoder, "other" (the
        # frozen BERT's two groups receive no gradient).
        mods = self._modalities()
        groups = []
        if "audio" in mods:
            groups.append(("audio_encoder.*", {"lr": self.learning_rate_audio,
                                               "weight_decay": self.weight_decay_audio}))
        if "vision" in mods:
            groups.append(("vision_encoder.*", {"lr": self.learning_rate_vision,
                                                "weight_decay": self.weight_decay_vision}))
        return groups


def _encoder_doc(default):
    return f"""
    encoder : {{"dnn", "lstm"}}, default="{default}"
        Audio/vision encoder.  ``"dnn"`` is the V1 code's: the length-aware
        time average (the AV-MC loader's ``need_normalized``) followed by the
        3-layer ``SubNet`` (BatchNorm, Dropout, 3 Linear+ReLU; output ``h``).
        ``"lstm"`` is the paper's stacked bidirectional LSTM (§4.2), as the
        V1_Semi code realises it (AVsubNet: Linear -> Dropout -> packed
        BiLSTM -> LayerNorm -> packed BiLSTM over the real frames; output the
        final states of both layers and directions, ``4 h``).
    hidden_dims : tuple of 3 int
        (text, audio, vision) encoder widths ``h``.  The text encoder is a
        Linear layer over the [CLS] position ``X["text"][:, 0, :]`` of the
        precomputed BERT features (no BERT weights are used).
    post_dims : tuple of 3 int
        (text, audio, vision) widths of the unimodal heads (Dropout ->
        Linear -> ReLU -> Linear -> ReLU -> Linear(1)).
    post_fusion_dim : int
        Width of the fusion head (Dropout -> 3 Linear layers without
        nonlinearity, as the reference).
    dropouts : tuple of 2 float
        (audio, vision) encoder dropout.
    post_dropouts : tuple of 4 float
        (text, audio, vision, fusion) head dropout."""


_MIXUP_DOC = """
    mixup_alpha : float, default=1.0
        ``lambda ~ Beta(mixup_alpha, mixup_alpha)`` (the reference: 1, i.e.
        uniform), drawn from numpy's global generator as the reference does
        (the permutation from torch's); ``fit`` seeds both from
        ``random_state``."""


def _tasks_doc(weights):
    return f"""
    tasks : tuple of str, default=("T", "A", "V")
        Active unimodal tasks, any subset of ``"T"``, ``"A"``, ``"V"``; the M
        task is always trained.  ``()`` trains M alone.  Inactive heads still
        exist but get no loss.
    loss_weights : tuple of 4 float, default={weights}
        Weights of the M, T, A and V losses (training and validation); the
        reference's values."""


_GROUP_DOC = """
    learning_rate_audio, learning_rate_vision : float
        Learning rates of the audio and vision encoders.
    weight_decay_audio, weight_decay_vision : float
        Weight decays of the audio and vision encoders.  The common
        ``learning_rate`` and ``weight_decay`` below are those of everything
        else (the reference's "other" group)."""
