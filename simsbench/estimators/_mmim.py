"""MMIM: hierarchical mutual-information maximisation for multimodal fusion."""

from __future__ import annotations

import torch
from skorch.callbacks import LRScheduler
from skorch.dataset import unpack_data
from torch import nn

from simsbench.datasets import LENGTH_KEYS
from simsbench.estimators._constraints import (
    boolean,
    int_at_least,
    nonnegative_real,
    options,
    positive_int,
    positive_real,
    probability,
)
from simsbench.estimators._deep import _COMMON_DOC, DeepRegressor, SimsNet
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import lengths_of
from simsbench.estimators.modules._bert import (
    BertFamilyMixin,
    bert_param_groups,
    pool_tokens,
)
from simsbench.estimators.modules._blocks import packed_lstm


class RNNEncoder(nn.Module):
    """Packed (bi)LSTM over the real frames -> final states -> Dropout -> Linear.

    ``final_state_layer``: the final states of the ``"first"`` LSTM layer
    (the reference, ``MMSA src/MMSA/models/singleTask/MMIM.py``) or of the
    ``"last"`` one; the same with one layer.
    """

    def __init__(self, in_size, hidden_size, out_size, num_layers=1, dropout=0.0,
                 bidirectional=True, final_state_layer="first"):
        super().__init__()
        self.bidirectional = bidirectional
        self.final_state_layer = final_state_layer
        self.rnn = nn.LSTM(in_size, hidden_size, num_layers=num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0,
                           bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear((2 if bidirectional else 1) * hidden_size, out_size)

    def forward(self, x, lengths):
        # a packed run, through the fused kernel on CPU (see packed_lstm)
        _, h = packed_lstm(self.rnn, x, lengths.detach().clamp(1, x.shape[1]))
        # h: (layers * directions, B, hidden), the first layer's states first.
        # The reference reads h[0] and h[1]: the *first* layer's two
        # directions, whatever the depth.
        n_dir = 2 if self.bidirectional else 1
        first = 0 if self.final_state_layer == "first" else h.shape[0] - n_dir
        last = torch.cat((h[first], h[first + 1]), dim=-1) if self.bidirectional else h[first]
        return self.linear_1(self.dropout(last))


def _logdet_cov(z: torch.Tensor, guard: bool = False):
    """log det of the (biased) covariance of the rows of ``z``.

    Without ``guard`` this is the reference's ``torch.logdet`` (``-inf`` for
    a singular covariance, NaN for an empty ``z`` or a negative determinant);
    with it, None instead of a non-finite value (the caller skips the term).
    """
    if guard and z.shape[0] <= z.shape[1]:
        return None
    c = z - z.mean(dim=0, keepdim=True)
    cov = c.t() @ c / z.shape[0]
    if not guard:
        return torch.logdet(cov)
    sign, logabs = torch.linalg.slogdet(cov)
    if float(sign.detach()) <= 0 or not bool(torch.isfinite(logabs.detach())):
        return None
    return logabs


class MMILB(nn.Module):
    """Modality mutual-information lower bound of ``y`` given ``x``.

    ``mu(x)`` and ``logvar(x)`` are Linear -> ReLU -> Linear;
    ``lld = mean_batch sum -(mu - y)^2 / (2 exp(logvar))``.  With labels, ``y``
    is projected (Linear(y, y/4) + tanh) and split into positive and negative
    samples; with a memory of past batches the entropy
    ``H = 0.25 (logdet S_pos + logdet S_neg)`` is estimated (with
    ``entropy_guard`` only when both log-determinants are finite).
    """

    def __init__(self, x_size, y_size, entropy_guard=False):
        super().__init__()
        self.entropy_guard = entropy_guard
        self.mlp_mu = nn.Sequential(nn.Linear(x_size, y_size), nn.ReLU(),
                                    nn.Linear(y_size, y_size))
        self.mlp_logvar = nn.Sequential(nn.Linear(x_size, y_size), nn.ReLU(),
                                        nn.Linear(y_size, y_size))
        self.entropy_prj = nn.Sequential(nn.Linear(y_size, y_size // 4), nn.Tanh())

    def forward(self, x, y, labels=None, mem=None):
        mu, logvar = self.mlp_mu(x), self.mlp_logvar(x)
        lld = torch.mean(torch.sum(-((mu - y) ** 2) / 2.0 / torch.exp(logvar), dim=-1))
        pn = None
        H = None
        if labels is not None:
            z = self.entropy_prj(y)
            pn = {"pos": z[labels > 0], "neg": z[labels < 0]}
            if mem is not None and mem["pos"]:
                guard = self.entropy_guard
                ld_pos = _logdet_cov(torch.cat([*mem["pos"], pn["pos"]], dim=0), guard)
                ld_neg = _logdet_cov(torch.cat([*mem["neg"], pn["neg"]], dim=0), guard)
                if ld_pos is not None and ld_neg is not None:
                    H = 0.25 * (ld_pos + ld_neg)
        return lld, pn, H


class CPC(nn.Module):
    """Contrastive predictive coding score of ``x`` predicted from the fusion."""

    def __init__(self, x_size, y_size, n_layers=1):
        super().__init__()
        if n_layers == 1:
            self.net = nn.Linear(y_size, x_size)
        else:
            layers = [nn.Linear(y_size, x_size), nn.Tanh()]
            for _ in range(n_layers - 1):
                layers.append(nn.Linear(x_size, x_size))
            self.net = nn.Sequential(*layers)

    def forward(self, x, y):
        x_pred = self.net(y)
        x_pred = x_pred / x_pred.norm(dim=1, keepdim=True)
        x = x / x.norm(dim=1, keepdim=True)
        pos = torch.sum(x * x_pred, dim=-1)
        neg = torch.logsumexp(x @ x_pred.t(), dim=-1)
        return -(pos - neg).mean()


class _Fusion(nn.Module):
    """Dropout -> Linear -> tanh -> Linear -> tanh (the fusion) -> Linear(1)."""

    def __init__(self, in_size, hidden, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(in_size, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)
        self.linear_3 = nn.Linear(hidden, 1)

    def forward(self, x):
        h = torch.tanh(self.linear_2(torch.tanh(self.linear_1(self.drop(x)))))
        return h, self.linear_3(h).reshape(-1)


class MMIMModule(nn.Module):
    """BERT [CLS] text, biLSTM audio/vision, MMILB pairs, CPC terms, fusion MLP.

    ``forward`` returns ``(prediction, extras)`` with ``extras`` holding
    ``lld``, ``nce``, ``H`` (None when not estimated) and the positive/negative
    projections ``pn`` for the entropy memory.
    """

    def __init__(self, dims, text_encoder, text_dim, hidden, outs, n_layer, bidirectional,
                 dropouts, d_prjh, cpc_layers, add_va, entropy_guard=False,
                 final_state_layer="first"):
        super().__init__()
        self.modalities = tuple(dims)
        d_ah, d_vh = hidden
        d_aout, d_vout = outs
        p_a, p_v, p_prj = dropouts
        widths = {}
        if "text" in dims:
            if text_encoder is not None:
                self.text_encoder = text_encoder
            widths["text"] = text_dim
        if "audio" in dims:
            self.acoustic_enc = RNNEncoder(dims["audio"], d_ah, d_aout, n_layer,
                                           p_a if n_layer > 1 else 0.0, bidirectional,
                                           final_state_layer)
            widths["audio"] = d_aout
        if "vision" in dims:
            self.visual_enc = RNNEncoder(dims["vision"], d_vh, d_vout, n_layer,
                                         p_v if n_layer > 1 else 0.0, bidirectional,
                                         final_state_layer)
            widths["vision"] = d_vout
        # MMILB pairs (x -> y): text->vision, text->audio[, vision->audio].
        self.pairs = []
        for key, x, y in (("tv", "text", "vision"), ("ta", "text", "audio"),
                          ("va", "vision", "audio")):
            if key == "va" and not add_va:
                continue
            if x in widths and y in widths:
                self.add_module(f"mi_{key}", MMILB(widths[x], widths[y], entropy_guard))
                self.pairs.append((key, x, y))
        for mod, name in (("text", "cpc_zt"), ("vision", "cpc_zv"), ("audio", "cpc_za")):
            if mod in widths:
                self.add_module(name, CPC(widths[mod], d_prjh, cpc_layers))
        self.fusion_prj = _Fusion(sum(widths.values()), d_prjh, p_prj)
        # The reference re-initialises every non-BERT weight matrix with
        # xavier-normal before training.
        for name, p in self.named_parameters():
            if not name.startswith("text_encoder.") and p.dim() > 1:
                nn.init.xavier_normal_(p)

    def representations(self, text=None, text_bert=None, audio=None, vision=None,
                        audio_lengths=None, vision_lengths=None, **kw):
        reps = {}
        if "text" in self.modalities:
            if text_bert is not None:
                reps["text"] = pool_tokens(self.text_encoder(text_bert), text_bert[:, 1], "cls")
            else:
                reps["text"] = text
        if "audio" in self.modalities:
            reps["audio"] = self.acoustic_enc(audio, audio_lengths)
        if "vision" in self.modalities:
            reps["vision"] = self.visual_enc(vision, vision_lengths)
        return reps

    def forward(self, labels=None, mem=None, **inputs):
        reps = self.representations(**inputs)
        lld, H, pn = 0.0, None, {}
        for key, x, y in self.pairs:
            l_k, pn[key], h_k = getattr(self, f"mi_{key}")(
                reps[x], reps[y], labels=labels, mem=None if mem is None else mem[key])
            lld = lld + l_k
            if h_k is not None:
                H = h_k if H is None else H + h_k
        fusion, pred = self.fusion_prj(torch.cat(list(reps.values()), dim=1))
        nce = 0.0
        for mod, name in (("text", "cpc_zt"), ("vision", "cpc_zv"), ("audio", "cpc_za")):
            if mod in reps:
                nce = nce + getattr(self, name)(reps[mod], fusion)
        return pred, {"lld": lld, "nce": nce, "H": H, "pn": pn}


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


class MMIM(BertFamilyMixin, DeepRegressor):
    __doc__ = """MMIM regressor (hierarchical mutual-information maximisation).

    Text is BERT's [CLS] vector; audio and vision are encoded by packed
    bidirectional LSTMs over the real frames.  A fusion MLP on ``[t, a, v]``
    regresses the score.  Two mutual-information terms shape the
    representations: the MMILB lower bound between text and vision and
    between text and audio (with an entropy estimate of the positive and
    negative samples), and CPC scores between the fusion vector and each
    modality.

    This is the **features variant** by default (``text_encoder="features"``):
    the precomputed BERT token features' [CLS] vector (``X["text"][:, 0]``)
    stands in for BERT's forward pass; everything after BERT is the reference
    architecture.  ``text_encoder="bert"`` with ``pretrained=PATH`` fine-tunes
    a local BERT checkpoint on ``X["text_bert"]`` instead.

    Parameters
    ----------
    text_encoder : {"features", "bert"}, default="features"
        Where the text vector comes from (see above).
    pretrained : str or None, default=None
        Local Hugging Face BERT checkpoint directory (``"bert"`` mode only;
        never downloaded).
    d_ah, d_vh : int, default=16
        Audio and vision LSTM widths.
    d_aout, d_vout : int, default=16
        Audio and vision representation widths (at least 4: the entropy
        projection has ``d // 4`` outputs).
    n_layer : int, default=1
        LSTM depth.
    bidirectional : bool, default=True
        Bidirectional LSTMs.
    final_state_layer : {"first", "last"}, default="first"
        Which LSTM layer's final states represent audio and vision.
        ``"first"`` (the reference) reads the first layer's, whatever
        ``n_layer`` is; ``"last"`` (correction ``final_state_layer``) the top
        layer's.  The same at ``n_layer=1``.
    dropout_a, dropout_v : float, default=0.1
        Audio/vision encoder dropout, used only when ``n_layer > 1`` (as in
        the reference).
    dropout_prj : float, default=0.1
        Dropout on the fusion MLP input.
    d_prjh : int, default=128
        Fusion MLP width.
    cpc_layers : int, default=1
        Depth of the CPC predictors.
    add_va : bool, default=False
        Add a vision->audio MMILB term.
    alpha, beta : float, default=0.1
        Weights of the CPC (nce) and MMILB (lld and entropy) terms.
    mem_size : int, default=1
        Batches of positive/negative projections kept for the entropy.
    entropy_guard : bool, default=False
        ``False`` (the reference): the entropy term uses ``torch.logdet`` of
        the positive and negative covariances as they come -- ``-inf`` or
        NaN for a singular or empty set, which turns the loss and then the
        weights non-finite.  ``True`` (correction ``entropy_guard``): the
        term is skipped for a batch whose set (memory plus batch) has no
        more rows than the projection width or whose log-determinant is not
        finite.
    grad_clip : float, default=1.0
        Gradient clipping by global norm (over all parameters), both stages.
    when : int, default=20
        Patience of the ReduceLROnPlateau (factor 0.5) on the main optimizer.
    learning_rate_mmilb, weight_decay_mmilb : float, default=1e-3, 1e-4
        The MMILB optimizer (stage 1).
    learning_rate_bert, weight_decay_bert : float, default=5e-5, 1e-4
        BERT's group of the main optimizer (``"bert"`` mode).
    """ + _COMMON_DOC.replace(
        "        Adam learning rate.",
        "        Learning rate of the main optimizer's non-BERT group.",
    ).replace(
        "        Adam (coupled L2) weight decay.",
        "        Weight decay of the main optimizer's non-BERT group.",
    ) + """
    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted private net (``net_.module_`` is the torch module; the
        history has a ``mmilb_loss`` column for stage 1).
    n_epochs_, best_epoch_ : int
        Epochs trained and the epoch whose weights were restored.
    train_loss_curve_, valid_loss_curve_ : list of float
        Per-epoch losses (train: the stage-2 objective; valid: L1 on M).
    feature_dims_, seq_lens_ : dict
        Input shapes seen in ``fit``.
    n_params_ : int
        Trainable parameters (BERT included in ``"bert"`` mode).

    Notes
    -----
    **Reference configuration** (the defaults): ``MMSA
    src/MMSA/models/singleTask/MMIM.py`` trained as ``MMSA
    src/MMSA/trains/singleTask/MMIM.py`` does, with the CH-SIMS entry of
    ``MMSA src/MMSA/config/config_regression.json``: 373,449 trainable
    parameters besides BERT with CH-SIMS shapes.  The MMILB's configured
    last activation (Tanh) is never applied, as in the reference; its
    entropy projection is in the MMILB optimizer but gets a gradient only in
    stage 2, where that optimizer does not step, so it stays at its
    initialisation, as in the reference.  ReduceLROnPlateau (factor 0.5,
    patience ``when``) is stepped on the validation loss that selects the
    epoch (with ``selection="reference"`` the rounded batch mean, as the
    reference).

    Training [1]_: every non-BERT weight matrix is re-initialised
    xavier-normal.  Each epoch has two stages over the (reshuffled) training
    batches: (1) minimise ``-lld`` stepping only the MMILB parameters (their
    own Adam, ``learning_rate_mmilb``); (2) minimise
    ``L1 + alpha * nce - beta * lld`` and, from the batch after the memory has
    filled (batch index > ``mem_size``), ``- beta * H``, stepping every other
    parameter (BERT group at ``learning_rate_bert``).  Gradients are clipped
    by the global norm of all parameters in both stages.  The validation loss
    is L1 on M.  The memory of positive/negative projections is reset each
    epoch.

    **What still differs in the features variant**: the reference fine-tunes
    BERT (bert-base-chinese, its own group of the main optimizer at
    ``learning_rate_bert``, clipped with the rest); here the text vector is
    the fixed precomputed [CLS] feature, so BERT is neither trained nor
    dropped out in training, and its gradients are missing from the global
    norms that the clipping of both stages computes.
    ``text_encoder="bert"`` with the checkpoint is the reference's text
    path.  The reference runs stage 1 over only the first half of the
    batches on MOSEI; simsbench always uses every batch (the CH-SIMS
    behaviour).

    **Corrections** (see :mod:`simsbench.estimators._fidelity`):

    * ``entropy_guard``: skip a non-finite entropy term instead of letting
      it poison the weights (with the SIMS batch size a singular set is
      rare; on tiny data it is not);
    * ``final_state_layer``: the top LSTM layer's final states (matters only
      with ``n_layer > 1``);
    * ``selection`` and ``epoch_cap``: the training shell's corrections.

    References
    ----------
    .. [1] Han, W., Chen, H. and Poria, S. "Improving multimodal fusion with
       hierarchical mutual information maximization for multimodal sentiment
       analysis." EMNLP 2021.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import MMIM
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = MMIM(max_epochs=2, random_state=0).fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    _text_pooling = "cls"
    _net_class = MMIMNet

    _corrections = (
        Correction(
            "entropy_guard",
            "The reference adds the entropy term's log-determinants even when they are "
            "-inf or NaN (a singular or empty positive/negative set); corrected: such a "
            "term is skipped.",
            {"entropy_guard": (False, True)},
        ),
        Correction(
            "final_state_layer",
            "The reference represents audio and vision by the first LSTM layer's final "
            "states whatever the depth; corrected: by the top layer's.",
            {"final_state_layer": ("first", "last")},
        ),
    )

    _tiny_params = {"d_ah": 4, "d_vh": 4, "d_aout": 4, "d_vout": 4, "d_prjh": 8,
                    "batch_size": 16, "max_epochs": 2, "n_threads": 1}

    _parameter_constraints = {
        **{p: [positive_int()] for p in (
            "d_ah", "d_vh", "n_layer", "d_prjh", "cpc_layers", "mem_size", "when")},
        "d_aout": [int_at_least(4)],
        "d_vout": [int_at_least(4)],
        "bidirectional": [boolean],
        "final_state_layer": [options("first", "last")],
        "dropout_a": [probability()],
        "dropout_v": [probability()],
        "dropout_prj": [probability()],
        "add_va": [boolean],
        "alpha": [nonnegative_real()],
        "beta": [nonnegative_real()],
        "entropy_guard": [boolean],
        "grad_clip": [nonnegative_real(), None],
        "learning_rate_mmilb": [positive_real()],
        "weight_decay_mmilb": [nonnegative_real()],
        "learning_rate_bert": [positive_real()],
        "weight_decay_bert": [nonnegative_real()],
    }

    def __init__(
        self,
        *,
        text_encoder="features",
        pretrained=None,
        d_ah=16,
        d_vh=16,
        d_aout=16,
        d_vout=16,
        n_layer=1,
        bidirectional=True,
        final_state_layer="first",
        dropout_a=0.1,
        dropout_v=0.1,
        dropout_prj=0.1,
        d_prjh=128,
        cpc_layers=1,
        add_va=False,
        alpha=0.1,
        beta=0.1,
        mem_size=1,
        entropy_guard=False,
        grad_clip=1.0,
        when=20,
        learning_rate_mmilb=1e-3,
        weight_decay_mmilb=1e-4,
        learning_rate_bert=5e-5,
        weight_decay_bert=1e-4,
        modalities=("text", "audio", "vision"),
        batch_size=32,
        learning_rate=1e-3,
        weight_decay=1e-4,
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
        self.text_encoder = text_encoder
        self.pretrained = pretrained
        self.d_ah = d_ah
        self.d_vh = d_vh
        self.d_aout = d_aout
        self.d_vout = d_vout
        self.n_layer = n_layer
        self.bidirectional = bidirectional
        self.final_state_layer = final_state_layer
        self.dropout_a = dropout_a
        self.dropout_v = dropout_v
        self.dropout_prj = dropout_prj
        self.d_prjh = d_prjh
        self.cpc_layers = cpc_layers
        self.add_va = add_va
        self.alpha = alpha
        self.beta = beta
        self.mem_size = mem_size
        self.entropy_guard = entropy_guard
        self.grad_clip = grad_clip
        self.when = when
        self.learning_rate_mmilb = learning_rate_mmilb
        self.weight_decay_mmilb = weight_decay_mmilb
        self.learning_rate_bert = learning_rate_bert
        self.weight_decay_bert = weight_decay_bert
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

    def _prepare_inputs(self, X):
        out = self._text_inputs(X)
        for m in self._modalities():
            if m != "text":
                out[m] = X[m]
                out[LENGTH_KEYS[m]] = lengths_of(X, m)
        return out

    def _build_module(self, dims, seq_lens):
        text_enc, text_dim = self._text_encoder_module(dims)
        return MMIMModule(
            dims, text_enc, text_dim, (self.d_ah, self.d_vh), (self.d_aout, self.d_vout),
            self.n_layer, bool(self.bidirectional),
            (self.dropout_a, self.dropout_v, self.dropout_prj), self.d_prjh, self.cpc_layers,
            bool(self.add_va), bool(self.entropy_guard), self.final_state_layer,
        )

    def _param_groups(self):
        return bert_param_groups(self.learning_rate_bert, self.weight_decay_bert,
                                 no_decay=False)

    def _callbacks(self):
        # MMSA's trainer steps the scheduler on the same (rounded) validation
        # loss that selects the epoch.
        monitor = "valid_loss_reference" if self._selection() == "reference" else "valid_loss"
        return [("lr_scheduler", LRScheduler(
            policy="ReduceLROnPlateau", monitor=monitor, mode="min", factor=0.5,
            patience=self.when,
        ))]

    def _net_kwargs(self):
        return {"grad_clip_norm": self.grad_clip, "lr_mmilb": self.learning_rate_mmilb,
                "weight_decay_mmilb": self.weight_decay_mmilb, "alpha": self.alpha,
                "beta": self.beta, "mem_size": self.mem_size}
