"""MISA: modality-invariant and -specific representations.

The torch modules and the auxiliary losses are in
:mod:`simsbench.estimators.modules._misa`.
"""

from __future__ import annotations

import numpy as np

from simsbench.datasets import LENGTH_KEYS
from simsbench.estimators._accumulation import (
    ACCUMULATION_CONSTRAINTS,
    ACCUMULATION_TAIL,
    CLIP_PER,
)
from simsbench.estimators._constraints import (
    EvenInt,
    finite_real,
    nonnegative_real,
    options,
    positive_int,
    probability,
)
from simsbench.estimators._deep import _COMMON_DOC, DeepRegressor, SimsNet
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import lengths_of
from simsbench.estimators.modules._bert import (
    FITTED_SHAPES_DOC,
    TEXT_ENCODER_DOC,
    BertFamilyMixin,
)
from simsbench.estimators.modules._misa import RNN_CELLS, MISAModule

#: Values of MISA's ``av_lengths``: pack audio/vision with the text lengths
#: (the reference) or with their own.
AV_LENGTHS = ("text", "own")


class MISANet(SimsNet):
    """Adds the module's auxiliary losses to the task loss in training."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        pred, aux = y_pred if isinstance(y_pred, tuple | list) else (y_pred, None)
        loss = super().get_loss(pred, y_true, X=X, training=training)
        if training and aux is not None:
            loss = loss + aux
        return loss


class MISA(BertFamilyMixin, DeepRegressor):
    __doc__ = """MISA regressor (modality-invariant and -specific representations).

    Each modality's utterance vector (text: the masked mean of BERT's token
    outputs; audio, vision: a two-layer BiLSTM with LayerNorm in between) is
    projected to ``hidden_size`` and split by a private encoder per modality
    and one shared encoder into modality-specific and -invariant codes.  The
    six codes pass a one-layer transformer and an MLP regresses the score.
    Training adds a soft-orthogonality (difference) loss, a central moment
    discrepancy between the shared codes and a reconstruction loss to the
    MSE task loss.

    This is the **features variant** by default (``text_encoder="features"``):
    the masked mean of the precomputed BERT token features ``X["text"]`` over
    the real tokens stands in for BERT's forward pass; everything after BERT
    is the reference architecture.  ``text_encoder="bert"`` with
    ``pretrained=PATH`` fine-tunes a local BERT checkpoint on
    ``X["text_bert"]`` instead.
""" + TEXT_ENCODER_DOC + """
    hidden_size : int, default=128
        Width of the projected, private and shared codes (even: the fusion
        transformer has 2 heads).
    dropout : float, default=0.0
        Dropout in the fusion MLP.
    diff_weight, sim_weight, recon_weight : float, default=0.3, 1.0, 0.8
        Weights of the difference, CMD similarity and reconstruction losses.
    av_lengths : {"text", "own"}, default="text"
        The lengths the audio and vision BiLSTMs are packed with.
        ``"text"`` (the reference): the text's real token count (the BERT
        mask's sum, ``X["text_lengths"]`` in the features variant), clipped
        to each sequence's padded length, so only a clip's first frames are
        read.  ``"own"`` (correction ``av_lengths``): each modality's own
        real length (``X["audio_lengths"]``, ``X["vision_lengths"]``).
    grad_clip : float, default=1.0
        Gradient clipping by value (``-1`` or ``None``: off).
    clip_per : {"backward", "step"}, default="backward"
        ``"backward"`` (the reference): the accumulated gradients are clipped
        after every batch's backward pass.  ``"step"`` (correction
        ``clip_per``): once, before each optimizer step.
    update_epochs : int, default=2
        Gradient accumulation: one optimizer step per this many batches.
    accumulation_tail : {"drop", "apply"}, default="drop"
        ``"drop"`` (the reference): the gradients of an epoch's last
        ``n_batches mod update_epochs`` batches are discarded.  ``"apply"``
        (correction ``accumulation_tail``): they make one last optimizer
        step.
    rnncell : {"lstm", "gru"}, default="lstm"
        Cell of the audio/vision BiRNNs.
    """ + _COMMON_DOC + """
    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted private net (``net_.module_`` is the torch module).
    n_epochs_, best_epoch_ : int
        Epochs trained and the epoch whose weights were restored.
    train_loss_curve_, valid_loss_curve_ : list of float
        Per-epoch losses (train: task MSE plus the weighted auxiliary losses;
        valid: MSE on M).""" + FITTED_SHAPES_DOC + """

    Notes
    -----
    **Reference configuration** (the defaults): ``MMSA
    src/MMSA/models/singleTask/MISA.py`` trained as ``MMSA
    src/MMSA/trains/singleTask/MISA.py`` does, with the CH-SIMS entry of
    ``MMSA src/MMSA/config/config_regression.json``: batch 64, learning rate
    1e-4, Adam without weight decay (the config's is ignored), 21,664,749
    trainable parameters besides BERT with CH-SIMS shapes.  The audio and
    vision BiLSTMs have hidden size equal to their input size (the vision
    ones alone hold 20.1M parameters at 709 dims) and are packed with the
    text lengths.  The registered-but-unused parameters of the reference (its
    shared/private discriminator, 516 at the defaults, and the text
    LayerNorm, 3,072) are kept so that the count matches; they get no
    gradient.  Gradients are clipped by value after every backward pass and
    summed over ``update_epochs`` batches, the epoch's tail dropped.  The
    unused ``reverse_grad_weight``/``sp_weight`` options are not exposed.

    Loss [1]_: ``MSE + diff_weight * L_diff + sim_weight * L_CMD +
    recon_weight * L_recon`` with ``L_diff`` summed over the (private,
    shared) pair of each modality and the private pairs, ``L_CMD`` (5
    moments) averaged over the shared pairs and ``L_recon`` the mean over
    modalities of the reconstruction MSE against the projected vectors.
    Validation loss: MSE on M.

    **What still differs in the features variant**: the reference fine-tunes
    BERT (bert-base-chinese, in MISA's single optimizer group at the same
    learning rate and with the same clipping); here the text vector is the
    masked mean of fixed precomputed BERT features, so BERT is neither
    trained nor dropped out in training, its 102M parameters are not in the
    optimizer and its gradients are not clipped.  ``text_encoder="bert"`` with the checkpoint is the
    reference's text path.

    **Corrections** (see :mod:`simsbench.estimators._fidelity`):

    * ``av_lengths``: pack audio and vision with their own real lengths;
    * ``clip_per``: clip once per optimizer step;
    * ``accumulation_tail``: apply the last partial accumulation group;
    * ``selection`` and ``epoch_cap``: the training shell's corrections.

    References
    ----------
    .. [1] Hazarika, D., Zimmermann, R. and Poria, S. "MISA: Modality-
       invariant and -specific representations for multimodal sentiment
       analysis." ACM Multimedia 2020.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import MISA
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = MISA(hidden_size=16, max_epochs=2, random_state=0)
    >>> model.fit(ds.X("train"), ds.y("train")).predict(ds.X("test")).shape
    (20,)
    """

    _loss_kind = "mse"
    _text_pooling = "mean"
    _net_class = MISANet

    _corrections = (
        Correction(
            "av_lengths",
            "The reference packs the audio and vision sequences with the text's token "
            "lengths; corrected: with their own real lengths.",
            {"av_lengths": ("text", "own")},
        ),
        CLIP_PER,
        ACCUMULATION_TAIL,
    )

    _tiny_params = {"hidden_size": 8, "batch_size": 16, "max_epochs": 2, "n_threads": 1}

    _parameter_constraints = {
        "hidden_size": [EvenInt(2)],
        "dropout": [probability()],
        "diff_weight": [nonnegative_real()],
        "sim_weight": [nonnegative_real()],
        "recon_weight": [nonnegative_real()],
        "av_lengths": [options(*AV_LENGTHS)],
        "grad_clip": [finite_real(), None],
        "update_epochs": [positive_int()],
        "rnncell": [options(*RNN_CELLS)],
        **ACCUMULATION_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        text_encoder="features",
        pretrained=None,
        hidden_size=128,
        dropout=0.0,
        diff_weight=0.3,
        sim_weight=1.0,
        recon_weight=0.8,
        av_lengths="text",
        grad_clip=1.0,
        clip_per="backward",
        update_epochs=2,
        accumulation_tail="drop",
        rnncell="lstm",
        modalities=("text", "audio", "vision"),
        batch_size=64,
        learning_rate=1e-4,
        weight_decay=0.0,
        max_epochs=None,
        early_stop=8,
        tol=1e-6,
        selection="reference",
        validation_fraction=0.2,
        device="cpu",
        precision="float32",
        random_state=None,
        verbose=0,
        n_threads=None,
    ):
        self.text_encoder = text_encoder
        self.pretrained = pretrained
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.diff_weight = diff_weight
        self.sim_weight = sim_weight
        self.recon_weight = recon_weight
        self.av_lengths = av_lengths
        self.grad_clip = grad_clip
        self.clip_per = clip_per
        self.update_epochs = update_epochs
        self.accumulation_tail = accumulation_tail
        self.rnncell = rnncell
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
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    def _text_lengths(self, X):
        """The text's real token counts, as the reference reads them, or None."""
        if "text" in self._modalities() and self._uses_bert():
            mask = np.asarray(X["text_bert"])[:, 1, :]
            return np.rint(mask.sum(axis=1)).astype(np.int64)
        if "text" in X:
            return lengths_of(X, "text")
        return None

    def _prepare_inputs(self, X):
        out = self._text_inputs(X)
        text_lengths = self._text_lengths(X) if self.av_lengths == "text" else None
        for m in self._modalities():
            if m != "text":
                out[m] = X[m]
                if text_lengths is None:
                    out[LENGTH_KEYS[m]] = lengths_of(X, m)
                else:  # MMSA's MISA packs audio and vision with the text lengths
                    out[LENGTH_KEYS[m]] = np.clip(text_lengths, 1, np.shape(X[m])[1])
        return out

    def _build_module(self, dims, seq_lens):
        text_enc, text_dim = self._text_encoder_module(dims)
        return MISAModule(dims, text_enc, text_dim, self.hidden_size, self.dropout,
                          self.rnncell, (self.diff_weight, self.sim_weight, self.recon_weight))

    def _net_kwargs(self):
        clip = self.grad_clip
        return {"accumulation_steps": self.update_epochs,
                "grad_clip_value": None if clip is None or clip < 0 else clip,
                "clip_per": self.clip_per,
                "accumulation_tail": self.accumulation_tail}
