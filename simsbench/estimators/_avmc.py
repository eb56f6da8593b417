"""AV-MC and AV-MC (Semi): the CH-SIMS v2.0 paper's Acoustic Visual Mixup
Consistent framework, as released in github thuiar/ch-sims-v2 (the AV-MC
repository, cited below as ``ch-sims-v2 <path>``)."""

from __future__ import annotations

import numpy as np
import torch
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import nn

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
from simsbench.estimators._deep import _ATTRIBUTES_DOC, _COMMON_DOC, SimsNet
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import lengths_of
from simsbench.estimators._multitask import MultiTaskRegressor
from simsbench.estimators.modules._blocks import PostHead, SubNet, packed_lstm

_HEAD_INDEX = {"text": 1, "audio": 2, "vision": 3}


# ---------------------------------------------------------------------------
# torch modules

class AVSubNet(nn.Module):
    """The V1_Semi code's audio/vision encoder ("AVsubNet",
    ``ch-sims-v2 models/multiTask/V1_Semi.py``).

    Linear(D, h) -> Dropout -> packed BiLSTM(h, h) -> LayerNorm(2h) -> packed
    BiLSTM(2h, h), both over the real frames.  Output (B, 4h): the final
    states ordered [layer-1 forward, layer-2 forward, layer-1 backward,
    layer-2 backward], as the reference concatenates them.
    """

    def __init__(self, in_size: int, hidden_size: int, dropout: float):
        super().__init__()
        self.liner = nn.Linear(in_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.rnn1 = nn.LSTM(hidden_size, hidden_size, bidirectional=True, batch_first=True)
        self.rnn2 = nn.LSTM(2 * hidden_size, hidden_size, bidirectional=True, batch_first=True)
        self.layer_norm = nn.LayerNorm(2 * hidden_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        total = x.shape[1]
        lengths = lengths.detach().to(x.device, torch.long).clamp(1, total)
        x = self.dropout(self.liner(x))
        # packed runs, through the fused kernel on CPU (see packed_lstm); the
        # LayerNorm sees the steps up to the longest clip (the rest were
        # padding the second LSTM never reads)
        out1, h1 = packed_lstm(self.rnn1, x, lengths)
        _, h2 = packed_lstm(self.rnn2, self.layer_norm(out1), lengths)
        return torch.cat([h1[0], h2[0], h1[1], h2[1]], dim=-1)


class _Head(PostHead):
    """Unimodal head: Dropout -> Linear(in, d) -> ReLU -> Linear(d, d) -> ReLU
    -> Linear(d, 1) (:class:`PostHead`'s layers).  ``forward`` returns the
    prediction (B,) and both hidden layers (the fusion takes one of them)."""

    def forward(self, x):
        x2 = torch.relu(self.layer_1(self.dropout(x)))
        x3 = torch.relu(self.layer_2(x2))
        return self.layer_3(x3).reshape(-1), x2, x3


class _Fusion(nn.Module):
    """Dropout -> Linear(in, d) -> Linear(d, d) -> Linear(d, 1) (no
    nonlinearities, as in the reference), squashed to ``(-r, r)`` by
    ``sigmoid * 2r - r``."""

    def __init__(self, in_size: int, hidden: int, dropout: float, output_range: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.layer_1 = nn.Linear(in_size, hidden)
        self.layer_2 = nn.Linear(hidden, hidden)
        self.layer_3 = nn.Linear(hidden, 1)
        self.output_range = float(output_range)

    def forward(self, x):
        x = self.layer_3(self.layer_2(self.layer_1(self.dropout(x))))
        r = self.output_range
        return (torch.sigmoid(x) * (2 * r) - r).reshape(-1)


class Reconstruction(nn.Module):
    """The V1_Semi code's "Reconsitution" MLP: Dropout(0) -> Linear(d, d) ->
    ReLU -> Linear(d, D), from a head's first hidden layer back to the
    modality's input width.

    The reference computes it in every forward pass but no loss uses its
    output, so it never receives a gradient; :class:`AVMCModule` registers it
    (it counts among the reference's trainable parameters) and does not
    call it.
    """

    def __init__(self, in_size: int, out_size: int):
        super().__init__()
        self.dropout = nn.Dropout(0.0)  # the config leaves rec_dropout unset: 0
        self.layer_1 = nn.Linear(in_size, in_size)
        self.layer_2 = nn.Linear(in_size, out_size)

    def forward(self, x):
        return self.layer_2(torch.relu(self.layer_1(self.dropout(x))))


class AVMCModule(nn.Module):
    """Multitask late-fusion backbone of AV-MC.

    Encoders: text = Linear over the [CLS] vector; audio/vision = the 3-layer
    ``SubNet`` on time-averaged features (``encoder="dnn"``) or ``AVSubNet``
    over the sequences (``encoder="lstm"``).  Each encoder output feeds its
    unimodal head; the fusion head takes the concatenated hidden layer
    ``fusion_layer`` (2: the first, 3: the second) of the unimodal heads.
    With ``reconstruction`` the three unused reconstruction MLPs of the
    V1_Semi code are registered (``rec_<modality>``), never called.
    """

    def __init__(self, dims, encoder, hidden_dims, post_dims, post_fusion_dim, dropouts,
                 post_dropouts, fusion_layer, output_range, reconstruction=False):
        super().__init__()
        h = dict(zip(("text", "audio", "vision"), hidden_dims))
        d = dict(zip(("text", "audio", "vision"), post_dims))
        p_enc = dict(zip(("audio", "vision"), dropouts))
        p_post = dict(zip(("text", "audio", "vision"), post_dropouts[:3]))
        self.modalities = tuple(dims)
        self.encoder_kind = encoder
        self.fusion_layer = int(fusion_layer)
        fused = 0
        for m in self.modalities:
            if m == "text":
                enc, out = nn.Linear(dims[m], h[m]), h[m]
            elif encoder == "lstm":
                enc, out = AVSubNet(dims[m], h[m], p_enc[m]), 4 * h[m]
            else:
                enc, out = SubNet(dims[m], h[m], p_enc[m]), h[m]
            setattr(self, f"{m}_encoder", enc)
            setattr(self, f"post_{m}", _Head(out, d[m], p_post[m]))
            fused += d[m]
        self.fusion = _Fusion(fused, post_fusion_dim, post_dropouts[3], output_range)
        if reconstruction:
            for m in self.modalities:
                setattr(self, f"rec_{m}", Reconstruction(d[m], dims[m]))

    def encode(self, text=None, audio=None, vision=None, audio_lengths=None,
               vision_lengths=None, **kw):
        reps = {}
        for m, x, lengths in (("text", text, None), ("audio", audio, audio_lengths),
                              ("vision", vision, vision_lengths)):
            if m not in self.modalities:
                continue
            enc = getattr(self, f"{m}_encoder")
            if m == "text":
                reps[m] = enc(x[:, 0, :] if x.ndim == 3 else x)
            elif self.encoder_kind == "lstm":
                if lengths is None:
                    lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
                reps[m] = enc(x, lengths)
            else:
                reps[m] = enc(x)
        return reps

    def head(self, modality, rep):
        """Prediction of the unimodal head of ``modality`` for ``rep``."""
        return getattr(self, f"post_{modality}")(rep)[0]

    def heads(self, reps):
        """``(M, T, A, V)`` from the encoder outputs (None for absent heads)."""
        out = [None, None, None, None]
        feats = []
        for m in self.modalities:
            pred, x2, x3 = getattr(self, f"post_{m}")(reps[m])
            out[_HEAD_INDEX[m]] = pred
            feats.append(x2 if self.fusion_layer == 2 else x3)
        out[0] = self.fusion(torch.cat(feats, dim=1))
        return tuple(out)

    def representations(self, **inputs):
        return self.encode(**inputs)

    def forward(self, **inputs):
        return self.heads(self.encode(**inputs))


# ---------------------------------------------------------------------------
# training: the mixup steps

def _draw_mixup(alpha: float, n: int) -> tuple[float, torch.Tensor]:
    """One mixup draw, as the reference's ``mixup_data``: ``lambda ~
    Beta(alpha, alpha)`` from numpy's global generator and a permutation of
    the ``n`` rows from torch's (both seeded by the estimator's ``fit``)."""
    return float(np.random.beta(alpha, alpha)), torch.randperm(n)


class _AVMCNet(SimsNet):
    """V1 step: clean pass + audio-mixup pass + vision-mixup pass, one backward
    (``ch-sims-v2 trains/multiTask/V1.py``)."""

    def __init__(self, *args, mixup_audio=True, mixup_vision=True, mixup_alpha=1.0,
                 mixup_level="input", **kwargs):
        super().__init__(*args, **kwargs)
        self.mixup_audio = mixup_audio
        self.mixup_vision = mixup_vision
        self.mixup_alpha = mixup_alpha
        self.mixup_level = mixup_level

    def _mixup_loss(self, module, Xi, reps, y2, modality):
        lam, perm = _draw_mixup(self.mixup_alpha, y2.shape[0])
        if self.mixup_level == "representation":
            mixed = dict(reps)
            mixed[modality] = lam * reps[modality] + (1 - lam) * reps[modality][perm]
            y_pred = module.heads(mixed)
        else:  # input level: the features the encoder sees
            Xm = dict(Xi)
            x = Xi[modality]
            Xm[modality] = lam * x + (1 - lam) * x[perm.to(x.device)]
            key = LENGTH_KEYS[modality]
            if key in Xi:
                Xm[key] = torch.maximum(Xi[key], Xi[key][perm.to(Xi[key].device)])
            y_pred = module(**Xm)
        # Loss-mixed criterion: the M head and the mixed modality's head are
        # scored against both targets; the other heads against their own.
        y_perm = y2.clone()
        cols = [c for c in (0, _HEAD_INDEX[modality]) if c < y2.shape[1]]
        y_perm[:, cols] = y2[perm.to(y2.device)][:, cols]
        return lam * self.criterion_(y_pred, y2) + (1 - lam) * self.criterion_(y_pred, y_perm)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        yi = to_tensor(yi, device=self.device)
        module = self.module_
        reps = module.encode(**Xi)
        y_pred = module.heads(reps)
        loss = self.criterion_(y_pred, yi)
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


class _AVMCSemiNet(SimsNet):
    """Algorithm 1: pass 1 over all rows (supervised loss on labelled rows +
    mixup-consistency on all rows), pass 2 supervised over labelled rows
    (``ch-sims-v2 trains/multiTask/V1_Semi.py``)."""

    def __init__(self, *args, mixup_audio=True, mixup_vision=True, mixup_alpha=1.0,
                 unlabelled_batches="skip_backward", **kwargs):
        super().__init__(*args, **kwargs)
        self.mixup_audio = mixup_audio
        self.mixup_vision = mixup_vision
        self.mixup_alpha = mixup_alpha
        self.unlabelled_batches = unlabelled_batches
        self._semi_pass = False

    def _consistency(self, module, reps, y_pred, modality):
        f, p = reps[modality], y_pred[_HEAD_INDEX[modality]]
        lam, perm = _draw_mixup(self.mixup_alpha, f.shape[0])
        perm = perm.to(f.device)
        f_mix = lam * f + (1 - lam) * f[perm]
        p_mix = lam * p + (1 - lam) * p[perm]  # not detached, as the reference
        return (module.head(modality, f_mix) - p_mix).abs().mean()

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
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        yi = to_tensor(yi, device=self.device)
        module = self.module_
        reps = module.encode(**Xi)
        y_pred = module.heads(reps)
        loss = self.criterion_(y_pred, yi)  # NaN (unlabelled) rows are skipped
        w = self.criterion_.weights
        # the reference's order: the vision term first, then the audio term
        for m, on in (("vision", self.mixup_vision), ("audio", self.mixup_audio)):
            k = _HEAD_INDEX[m]
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


class AVMC(_AVMCBase):
    __doc__ = """AV-MC: Acoustic Visual Mixup Consistent framework (supervised).

    A multitask late-fusion backbone (text [CLS] Linear encoder, audio and
    vision encoders, T/A/V heads, a fusion head over the unimodal heads'
    last hidden layers) trained with modality mixup: every step runs a clean
    pass, an audio-mixup pass and a vision-mixup pass and back-propagates
    their summed loss once.  In a mixup pass the batch's audio (or vision)
    is replaced by ``lambda * x + (1 - lambda) * x[pi]`` with ``lambda ~
    Beta(1, 1)`` and a random permutation ``pi``; the M head and the mixed
    modality's head are scored with the loss-mixed criterion ``lambda *
    L1(y_hat, y) + (1 - lambda) * L1(y_hat, y[pi])``, the other heads
    against their own labels.

    The defaults are the released V1 code (``ch-sims-v2
    models/multiTask/V1.py``, ``trains/multiTask/V1.py``, the ``sims3l``
    entry of ``config/config_regression.py``), see Notes.

    Parameters
    ----------""" + _encoder_doc("dnn") + """
    output_range : float, default=1.0
        The M head is ``output_range * (2 sigmoid(x) - 1)``, in
        ``(-output_range, output_range)`` (the V1 code: (-1, 1)); the unimodal
        heads are unbounded.
    mixup_audio, mixup_vision : bool, default=True
        Switch the audio / vision modality mixup on or off (the paper's
        Table 4 ablations; with ``tasks=()`` and both off: "w/o Mixup-AV and
        unimodal tasks").""" + _MIXUP_DOC + """
    mixup_level : {"auto", "input", "representation"}, default="auto"
        What is mixed.  ``"input"`` mixes the encoder inputs (with
        ``encoder="dnn"`` the time-averaged features, exactly the V1 code;
        with ``encoder="lstm"`` the padded sequences, frame by frame, the
        pair's real length being the longer of the two).
        ``"representation"`` mixes the encoder outputs (the paper's §4.1:
        "generate potential modality representation ... from the original
        representation obtained from the modality encoder"), which runs the
        encoders once per step instead of three times.  ``"auto"``:
        ``"input"`` for ``"dnn"``, ``"representation"`` for ``"lstm"``.""" + _tasks_doc(
        (1.0, 0.2, 0.8, 0.4)) + _GROUP_DOC + _COMMON_DOC + _ATTRIBUTES_DOC + """
    Notes
    -----
    **Reference configuration.**  ``AVMC()`` is the released V1 code, the
    form behind the AV-MC row of the paper's Table 2: the repository is the
    paper's official code, its README runs AV-MC as ``run.py --modelName
    v1`` and shows the Table 2 numbers (``show/ModelResults.png``), V1 is
    its only supervised model and ``sims3l`` its only configuration, and the
    paper (§2.3) calls its supervised strategy "a multimodal input-level
    Mixup" -- V1's.  The paper's §4 equations describe the framework "under
    semi-supervised learning paradigm" (Fig. 4) and leave the supervised
    model underspecified (the FFN activation and widths, the batch norm of
    Eq. 8 that neither released model has, the supervised mixup loss), so
    no exact "paper" model exists to reproduce.

    The V1 code, reproduced: text = Linear(768, 64) on the [CLS] vector;
    audio/vision = length-aware time average -> ``SubNet`` (BatchNorm,
    Dropout, 3 Linear+ReLU); heads (32, 32, 64), fusion 16 over the heads'
    second hidden layers, M = ``sigmoid * 2 - 1``; encoder dropouts 0.1,
    head dropouts 0.3; batch 32; M/T/A/V weights 1/0.2/0.8/0.4; Adam groups
    audio encoder (lr 5e-4, wd 0), vision encoder (lr 1e-3, wd 0), other
    (lr 5e-4, wd 5e-4); three passes per step (BatchNorm statistics updated
    three times), input-level mixup with the loss-mixed criterion, one
    backward.  With the CH-SIMS v2 shapes the module has the reference's
    66,440 trainable parameters (frozen BERT excluded).  Epoch selection and
    stopping are the reference's (``selection="reference"``, no epoch cap,
    ``early_stop=8``).

    **The paper's encoder and mixup** are parameter values: ``encoder="lstm"``
    (the stacked BiLSTM of §4.2, the V1_Semi code's AVsubNet) with
    ``mixup_level="auto"`` mixing the encoder outputs (§4.1); the loss stays
    V1's loss-mixed criterion.  With the defaults' widths that model has
    91,188 trainable parameters.

    **Corrections** (see :mod:`simsbench.estimators._fidelity`): the training
    shell's ``selection`` and ``epoch_cap``; AV-MC's own behaviour has none.

    **Not reproducible exactly**: the reference recomputes the [CLS] vector
    with a frozen BERT three times per step, in train mode, so BERT's dropout
    makes the training-time text features stochastic; here the text is the
    precomputed [CLS] vector (what the frozen BERT gives in eval mode, i.e.
    at validation and test time).  Random streams (dropout masks, lambda,
    permutations, shuffling) follow the reference's distributions, not its
    exact draws.

    References
    ----------
    .. [1] Liu, Y., Yuan, Z., et al. "Make Acoustic and Visual Cues Matter:
       CH-SIMS v2.0 Dataset and AV-Mixup Consistent Module." ICMI 2022.

    Examples
    --------
    >>> from simsbench.datasets import LABELS, make_synthetic
    >>> from simsbench.estimators import AVMC
    >>> ds = make_synthetic("simsv2", n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), n_unlabelled=0, random_state=0)
    >>> model = AVMC(max_epochs=2, random_state=0)
    >>> model = model.fit(ds.X("train"), ds.y("train", LABELS))
    >>> model.predict_all(ds.X("test")).shape
    (20, 4)
    """

    _tiny_params = {"hidden_dims": (8, 4, 4), "post_dims": (8, 8, 8), "post_fusion_dim": 8,
                    "batch_size": 16, "max_epochs": 3, "n_threads": 1}

    def __init__(
        self,
        *,
        encoder="dnn",
        hidden_dims=(64, 16, 16),
        post_dims=(32, 32, 64),
        post_fusion_dim=16,
        dropouts=(0.1, 0.1),
        post_dropouts=(0.3, 0.3, 0.3, 0.3),
        output_range=1.0,
        mixup_audio=True,
        mixup_vision=True,
        mixup_alpha=1.0,
        mixup_level="auto",
        tasks=("T", "A", "V"),
        loss_weights=(1.0, 0.2, 0.8, 0.4),
        learning_rate_audio=5e-4,
        learning_rate_vision=1e-3,
        weight_decay_audio=0.0,
        weight_decay_vision=0.0,
        modalities=("text", "audio", "vision"),
        batch_size=32,
        learning_rate=5e-4,
        weight_decay=5e-4,
        max_epochs=None,
        early_stop=8,
        tol=1e-6,
        selection="reference",
        validation_fraction=0.2,
        device="cpu",
        random_state=None,
        verbose=0,
        n_threads=None,
    ):
        self.encoder = encoder
        self.hidden_dims = hidden_dims
        self.post_dims = post_dims
        self.post_fusion_dim = post_fusion_dim
        self.dropouts = dropouts
        self.post_dropouts = post_dropouts
        self.output_range = output_range
        self.mixup_audio = mixup_audio
        self.mixup_vision = mixup_vision
        self.mixup_alpha = mixup_alpha
        self.mixup_level = mixup_level
        self.tasks = tasks
        self.loss_weights = loss_weights
        self.learning_rate_audio = learning_rate_audio
        self.learning_rate_vision = learning_rate_vision
        self.weight_decay_audio = weight_decay_audio
        self.weight_decay_vision = weight_decay_vision
        self.modalities = modalities
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.early_stop = early_stop
        self.tol = tol
        self.selection = selection
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    _net_class = _AVMCNet

    _parameter_constraints = {"mixup_level": [options("auto", "input", "representation")]}

    def _mixup_level(self):
        if self.mixup_level == "auto":
            return "input" if self.encoder == "dnn" else "representation"
        return self.mixup_level

    def _net_kwargs(self):
        return {"mixup_audio": bool(self.mixup_audio), "mixup_vision": bool(self.mixup_vision),
                "mixup_alpha": float(self.mixup_alpha), "mixup_level": self._mixup_level()}


class AVMCSemi(_AVMCBase):
    __doc__ = """AV-MC (Semi): AV-MC trained on labelled and unlabelled clips.

    The released V1_Semi code (``ch-sims-v2 models/multiTask/V1_Semi.py``,
    ``trains/multiTask/V1_Semi.py``, the ``sims3l`` entry of
    ``config/config_regression.py``): the backbone of :class:`AVMC` with the
    stacked-BiLSTM audio/vision encoder and the fusion over the unimodal
    heads' *first* hidden layers, trained by the paper's Algorithm 1.  Each
    epoch has two passes:

    1. over all training rows, labelled and unlabelled (rows of ``y`` that
       are all NaN): the supervised M/T/A/V loss on the labelled rows plus,
       on every row, the mixup-consistency loss of vision and audio -- the
       encoder output ``F`` and the head's own prediction ``p`` are mixed
       with the same ``lambda ~ Beta(1, 1)`` and permutation,
       and the head's prediction for the mixed ``F`` is pulled (L1) towards
       the mixed ``p``; weighted by the V and A loss weights;
    2. over the labelled rows only, the supervised loss.

    Fit with ``X = dataset.X_semi()``, ``y = dataset.y_semi()`` (train rows
    followed by the unlabelled part) and the valid split as
    ``X_valid``/``y_valid``; without ``X_valid`` a holdout of the labelled
    rows is used.  Without unlabelled rows pass 1 runs on the labelled
    rows alone.

    Parameters
    ----------""" + _encoder_doc("lstm") + """
    output_range : float, default=3.0
        The M head is ``output_range * (2 sigmoid(x) - 1)``, in
        ``(-output_range, output_range)``; the unimodal heads are unbounded.
        The reference's 3.0 is a MOSI range (the labels lie in [-1, 1]; the
        metrics clip); correction ``output_range``: 1.0.
    mixup_audio, mixup_vision : bool, default=True
        Switch the audio / vision mixup-consistency term on or off.  A
        term also needs its modality's task (``tasks``) and a non-zero
        loss weight: its weight is the A (V) loss weight.""" + _MIXUP_DOC + """
    reconstruction_heads : bool, default=True
        Register the V1_Semi code's three reconstruction MLPs (one per
        modality, head's first hidden layer -> input width).  No loss uses
        their outputs, so they never change and change nothing, but they
        count among the reference's trainable parameters (29,290 with the
        CH-SIMS v2 shapes); correction ``unused_heads``: False.
    unlabelled_batches : {"skip_backward", "backward"}, default="skip_backward"
        A pass-1 batch without a labelled row.  ``"skip_backward"`` (the
        reference): its consistency loss is not back-propagated, yet the
        optimizer steps on the zeroed gradients (the torch 1.x of the
        reference's time kept zero-filled gradients, so Adam's momentum and
        weight decay still move every parameter updated before).  ``"backward"`` (correction
        ``unlabelled_batches``; the paper's Algorithm 1): its consistency
        loss is back-propagated before the step.""" + _tasks_doc(
        (0.8, 0.6, 0.2, 0.8)) + _GROUP_DOC + _COMMON_DOC + _ATTRIBUTES_DOC + """
    Notes
    -----
    **Reference configuration.**  ``AVMCSemi()`` is the released V1_Semi
    code, the form behind the AV-MC(Semi) row of the paper's Table 2 (run by
    the repository's README as ``run.py --modelName v1_semi``): hidden
    (64, 32, 32), heads (16, 8, 64), fusion 32 over the heads' first hidden
    layers, M = ``sigmoid * 6 - 3``, encoder dropouts 0.1, head dropouts
    0.4, batch 64, M/T/A/V weights 0.8/0.6/0.2/0.8, Adam groups audio
    encoder (lr 1e-3, wd 0), vision encoder (lr 1e-3, wd 1e-5), other (lr
    5e-4, wd 1e-5), the unused reconstruction MLPs registered, a pass-1
    batch without labels stepped without a backward, and the reference's
    epoch selection and stopping (``selection="reference"``, no epoch cap,
    ``early_stop=8``).  With the CH-SIMS v2 shapes the module has the
    reference's 188,118 trainable parameters (audio encoder 42,944, vision
    encoder 47,808, reconstruction MLPs 29,290; frozen BERT excluded).  As
    in the reference, the mixed self-predictions (the consistency targets)
    are not detached, and the heads use Dropout, not the batch norm of the
    paper's Eq. 8.  ``encoder="dnn"`` gives the time-average encoder left
    commented out in the V1_Semi code.

    **Corrections** (see :mod:`simsbench.estimators._fidelity`), besides the
    training shell's ``selection`` and ``epoch_cap``:

    * ``output_range``: M in (-1, 1), the range of the labels, instead of
      (-3, 3);
    * ``unlabelled_batches``: a pass-1 batch without labelled rows is
      back-propagated on its consistency loss before the step (the paper's
      Algorithm 1), instead of a step on zeroed gradients;
    * ``unused_heads``: the never-used reconstruction MLPs are not built.

    **Not reproducible exactly**: the text is the precomputed [CLS] vector
    (the reference runs the frozen BERT in train mode, with dropout, during
    training); random streams follow the reference's distributions, not its
    draws; the training loss recorded per epoch is averaged over the
    batches of both passes (the reference divides the sum over pass-2
    batches and labelled pass-1 batches by the number of pass-1 batches; a
    logged number only).

    References
    ----------
    .. [1] Liu, Y., Yuan, Z., et al. "Make Acoustic and Visual Cues Matter:
       CH-SIMS v2.0 Dataset and AV-Mixup Consistent Module." ICMI 2022.

    Examples
    --------
    >>> from simsbench.datasets import LABELS, make_synthetic
    >>> from simsbench.estimators import AVMCSemi
    >>> ds = make_synthetic("simsv2", n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), n_unlabelled=40, random_state=0)
    >>> model = AVMCSemi(max_epochs=2, random_state=0)
    >>> model = model.fit(ds.X_semi(), ds.y_semi(LABELS),
    ...                   X_valid=ds.X("valid"), y_valid=ds.y("valid", LABELS))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    _fusion_layer = 2
    _net_class = _AVMCSemiNet
    _tiny_params = {"hidden_dims": (8, 4, 4), "post_dims": (8, 8, 8), "post_fusion_dim": 8,
                    "batch_size": 16, "max_epochs": 3, "n_threads": 1}
    # the runner fits it on train + unlabelled rows (dataset.X_semi/y_semi)
    _semi_supervised = True

    _corrections = (
        Correction(
            "output_range",
            "The reference squashes M to (-3, 3) (sigmoid * 6 - 3, a MOSI range) although "
            "the labels lie in [-1, 1]; corrected: (-1, 1).",
            {"output_range": (3.0, 1.0)},
        ),
        Correction(
            "unlabelled_batches",
            "The reference skips the backward of a pass-1 batch without labelled rows but "
            "still takes the optimizer step on zeroed gradients; corrected: the batch's "
            "consistency loss is back-propagated before the step (the paper's Algorithm 1).",
            {"unlabelled_batches": ("skip_backward", "backward")},
        ),
        Correction(
            "unused_heads",
            "The reference registers three reconstruction MLPs that no loss uses (29,290 "
            "never-trained parameters on CH-SIMS v2); corrected: they are not built.",
            {"reconstruction_heads": (True, False)},
        ),
    )

    def __init__(
        self,
        *,
        encoder="lstm",
        hidden_dims=(64, 32, 32),
        post_dims=(16, 8, 64),
        post_fusion_dim=32,
        dropouts=(0.1, 0.1),
        post_dropouts=(0.4, 0.4, 0.4, 0.4),
        output_range=3.0,
        mixup_audio=True,
        mixup_vision=True,
        mixup_alpha=1.0,
        reconstruction_heads=True,
        unlabelled_batches="skip_backward",
        tasks=("T", "A", "V"),
        loss_weights=(0.8, 0.6, 0.2, 0.8),
        learning_rate_audio=1e-3,
        learning_rate_vision=1e-3,
        weight_decay_audio=0.0,
        weight_decay_vision=1e-5,
        modalities=("text", "audio", "vision"),
        batch_size=64,
        learning_rate=5e-4,
        weight_decay=1e-5,
        max_epochs=None,
        early_stop=8,
        tol=1e-6,
        selection="reference",
        validation_fraction=0.2,
        device="cpu",
        random_state=None,
        verbose=0,
        n_threads=None,
    ):
        self.encoder = encoder
        self.hidden_dims = hidden_dims
        self.post_dims = post_dims
        self.post_fusion_dim = post_fusion_dim
        self.dropouts = dropouts
        self.post_dropouts = post_dropouts
        self.output_range = output_range
        self.mixup_audio = mixup_audio
        self.mixup_vision = mixup_vision
        self.mixup_alpha = mixup_alpha
        self.reconstruction_heads = reconstruction_heads
        self.unlabelled_batches = unlabelled_batches
        self.tasks = tasks
        self.loss_weights = loss_weights
        self.learning_rate_audio = learning_rate_audio
        self.learning_rate_vision = learning_rate_vision
        self.weight_decay_audio = weight_decay_audio
        self.weight_decay_vision = weight_decay_vision
        self.modalities = modalities
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.early_stop = early_stop
        self.tol = tol
        self.selection = selection
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    _parameter_constraints = {
        "reconstruction_heads": [boolean],
        "unlabelled_batches": [options(*UNLABELLED_BATCHES)],
    }

    def _reconstruction(self) -> bool:
        return bool(self.reconstruction_heads)

    def _net_kwargs(self):
        return {"mixup_audio": bool(self.mixup_audio), "mixup_vision": bool(self.mixup_vision),
                "mixup_alpha": float(self.mixup_alpha),
                "unlabelled_batches": self.unlabelled_batches}
