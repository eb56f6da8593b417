"""Self-MM: self-supervised multi-task learning with unimodal label generation.

The torch module is in :mod:`simsbench.estimators.modules._self_mm`, the
training net with the Unimodal Label Generation Module in
:mod:`simsbench.estimators._ulgm`.
"""

from __future__ import annotations

import numpy as np

from simsbench.datasets import LENGTH_KEYS
from simsbench.estimators._accumulation import ACCUMULATION_CONSTRAINTS, ACCUMULATION_TAIL
from simsbench.estimators._constraints import (
    boolean,
    nonnegative_real,
    positive_int,
    positive_real,
    probability,
)
from simsbench.estimators._deep import (
    _COMMON_DOC,
    DeepRegressor,
)
from simsbench.estimators._inputs import lengths_of
from simsbench.estimators._multitask import MultiTaskRegressor
from simsbench.estimators._ulgm import SelfMMNet
from simsbench.estimators.modules._bert import (
    CLS_FEATURES_DOC,
    FITTED_SHAPES_DOC,
    TEXT_ENCODER_DOC,
    BertFamilyMixin,
    bert_param_groups,
)
from simsbench.estimators.modules._self_mm import SelfMMModule


class SelfMM(BertFamilyMixin, DeepRegressor):
    __doc__ = ("""Self-MM regressor (self-supervised multi-task learning, ULGM).

    Text is BERT's [CLS] vector, audio and vision are encoded by packed
    1-layer LSTMs over the real frames; a fusion head on ``[t, a, v]`` and
    three unimodal heads each regress a score.  The unimodal heads are trained
    on labels *generated* by the Unimodal Label Generation Module (ULGM) from
    the distances of each sample's head features to the positive/negative
    class centres, not on annotated T/A/V labels.
""" + CLS_FEATURES_DOC + TEXT_ENCODER_DOC + """
    a_lstm_hidden_size, v_lstm_hidden_size : int, default=16, 64
        Audio and vision LSTM widths.
    a_lstm_layers, v_lstm_layers : int, default=1
        LSTM depths.
    a_lstm_dropout, v_lstm_dropout : float, default=0.0
        Dropout on the LSTM final states (also with one layer, as in the
        reference).
    audio_out, vision_out : int, default=16, 32
        Audio and vision representation widths.
    post_fusion_dim, post_text_dim, post_audio_dim, post_vision_dim : int
        Head widths (defaults 128, 64, 16, 32).
    post_fusion_dropout, post_text_dropout, post_audio_dropout, \
post_vision_dropout : float
        Head input dropouts (defaults 0.0, 0.1, 0.1, 0.0).
    H : float, default=1.0
        Generated labels are clamped to ``[-H, H]``.
    exclude_zero : bool, default=True
        Leave samples labelled 0 out of the positive centre.
    update_epochs : int, default=4
        Gradient accumulation: one optimizer step per this many batches.
    accumulation_tail : {"drop", "apply"}, default="drop"
        ``"drop"`` (the reference): the gradients of an epoch's last
        ``n_batches mod update_epochs`` batches are discarded.  ``"apply"``
        (correction ``accumulation_tail``): they make one last optimizer
        step.
    learning_rate_bert, weight_decay_bert : float, default=5e-5, 1e-3
        BERT's group (``"bert"`` mode; its biases and LayerNorms get no decay).
    learning_rate_audio, weight_decay_audio : float, default=5e-3, 1e-2
        The audio LSTM sub-net's group.
    learning_rate_vision, weight_decay_vision : float, default=5e-3, 1e-2
        The vision LSTM sub-net's group.
    """ + _COMMON_DOC.replace(
        "        Adam learning rate.", "        Adam learning rate of the heads (``other`` group)."
    ).replace(
        "        Adam (coupled L2) weight decay.",
        "        Adam (coupled L2) weight decay of the heads (``other`` group).",
    ) + """
    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted private net; ``net_.ulgm_labels_`` holds the generated
        labels (``"fusion"``, ``"text"``, ``"audio"``, ``"vision"``) of the
        training rows, in the row order of the ``X`` passed to ``fit``.
    n_epochs_, best_epoch_ : int
        Epochs trained and the epoch whose weights were restored.
    train_loss_curve_, valid_loss_curve_ : list of float
        Per-epoch losses (train: the ULGM-weighted sum; valid: L1 on M)."""
               + FITTED_SHAPES_DOC + """

    Notes
    -----
    **Reference configuration** (the defaults): ``MMSA
    src/MMSA/models/multiTask/SELF_MM.py`` trained as ``MMSA
    src/MMSA/trains/multiTask/SELF_MM.py`` does, with the CH-SIMS entry of
    ``MMSA src/MMSA/config/config_regression.json``: 381,380 trainable
    parameters besides BERT with CH-SIMS shapes; Adam with five groups (BERT
    weights, BERT biases and LayerNorms without decay, the audio sub-net, the
    vision sub-net, the rest at ``learning_rate``/``weight_decay``);
    gradients summed over ``update_epochs`` batches, the epoch's tail
    dropped; no clipping.

    Training (ULGM, [1]_): before training the fusion, text, audio and vision
    label tables of every training row are set to its M label.  Each batch
    minimises ``sum_s mean(w_s * |y_hat_s - y_s|)`` with ``w = 1`` for the
    fusion head and ``w = tanh(|y_s - y_fusion|)`` for the unimodal heads (so
    only the fusion loss trains in epoch 1); from epoch 2 on the batch's
    unimodal labels move towards
    ``0.5 * alpha * y_f + 0.5 * (y_f + delta_s - delta_f)`` (clamped to
    ``[-H, H]``) with the epoch-dependent momentum ``2 / (n + 1)``; then the
    batch's detached head features go into the per-row feature bank and the
    class centres are recomputed from the whole bank.  The rows are keyed by
    their position in the ``X`` given to ``fit`` (``_prepare_inputs`` adds an
    ``index`` array).  The validation loss is L1 on M.  Rows with a NaN M
    label are left out of the loss.  The annotated T/A/V labels are never used.

    **What still differs in the features variant**: the reference fine-tunes
    BERT (bert-base-chinese, in its two BERT groups at
    ``learning_rate_bert``); here the text vector is the fixed precomputed
    [CLS] feature, so BERT is neither trained nor dropped out in training.
    ``text_encoder="bert"`` with the checkpoint is the reference's text
    path.

    **Corrections** (see :mod:`simsbench.estimators._fidelity`):

    * ``accumulation_tail``: apply the last partial accumulation group;
    * ``selection`` and ``epoch_cap``: the training shell's corrections.

    References
    ----------
    .. [1] Yu, W., Xu, H., Yuan, Z. and Wu, J. "Learning modality-specific
       representations with self-supervised multi-task learning for
       multimodal sentiment analysis." AAAI 2021.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import SelfMM
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = SelfMM(max_epochs=2, random_state=0).fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """)

    _text_pooling = "cls"
    _net_class = SelfMMNet

    _corrections = (ACCUMULATION_TAIL,)

    _tiny_params = {"a_lstm_hidden_size": 4, "v_lstm_hidden_size": 4, "audio_out": 4,
                    "vision_out": 4, "post_fusion_dim": 8, "post_text_dim": 4,
                    "post_audio_dim": 4, "post_vision_dim": 4, "batch_size": 16,
                    "update_epochs": 2, "max_epochs": 3, "n_threads": 1}

    _parameter_constraints = {
        **{p: [positive_int()] for p in (
            "a_lstm_hidden_size", "v_lstm_hidden_size", "a_lstm_layers", "v_lstm_layers",
            "audio_out", "vision_out", "post_fusion_dim", "post_text_dim", "post_audio_dim",
            "post_vision_dim", "update_epochs")},
        **{p: [probability()] for p in (
            "a_lstm_dropout", "v_lstm_dropout", "post_fusion_dropout", "post_text_dropout",
            "post_audio_dropout", "post_vision_dropout")},
        "H": [positive_real()],
        "exclude_zero": [boolean],
        **{f"learning_rate_{p}": [positive_real()] for p in ("bert", "audio", "vision")},
        **{f"weight_decay_{p}": [nonnegative_real()] for p in ("bert", "audio", "vision")},
        **ACCUMULATION_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        text_encoder="features",
        pretrained=None,
        a_lstm_hidden_size=16,
        v_lstm_hidden_size=64,
        a_lstm_layers=1,
        v_lstm_layers=1,
        a_lstm_dropout=0.0,
        v_lstm_dropout=0.0,
        audio_out=16,
        vision_out=32,
        post_fusion_dim=128,
        post_text_dim=64,
        post_audio_dim=16,
        post_vision_dim=32,
        post_fusion_dropout=0.0,
        post_text_dropout=0.1,
        post_audio_dropout=0.1,
        post_vision_dropout=0.0,
        H=1.0,
        exclude_zero=True,
        update_epochs=4,
        accumulation_tail="drop",
        learning_rate_bert=5e-5,
        weight_decay_bert=1e-3,
        learning_rate_audio=5e-3,
        weight_decay_audio=1e-2,
        learning_rate_vision=5e-3,
        weight_decay_vision=1e-2,
        modalities=("text", "audio", "vision"),
        batch_size=32,
        learning_rate=1e-3,
        weight_decay=1e-3,
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
        self.a_lstm_hidden_size = a_lstm_hidden_size
        self.v_lstm_hidden_size = v_lstm_hidden_size
        self.a_lstm_layers = a_lstm_layers
        self.v_lstm_layers = v_lstm_layers
        self.a_lstm_dropout = a_lstm_dropout
        self.v_lstm_dropout = v_lstm_dropout
        self.audio_out = audio_out
        self.vision_out = vision_out
        self.post_fusion_dim = post_fusion_dim
        self.post_text_dim = post_text_dim
        self.post_audio_dim = post_audio_dim
        self.post_vision_dim = post_vision_dim
        self.post_fusion_dropout = post_fusion_dropout
        self.post_text_dropout = post_text_dropout
        self.post_audio_dropout = post_audio_dropout
        self.post_vision_dropout = post_vision_dropout
        self.H = H
        self.exclude_zero = exclude_zero
        self.update_epochs = update_epochs
        self.accumulation_tail = accumulation_tail
        self.learning_rate_bert = learning_rate_bert
        self.weight_decay_bert = weight_decay_bert
        self.learning_rate_audio = learning_rate_audio
        self.weight_decay_audio = weight_decay_audio
        self.learning_rate_vision = learning_rate_vision
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
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    def _prepare_inputs(self, X):
        out = self._text_inputs(X)
        for m in self._modalities():
            if m != "text":
                out[m] = X[m]
                out[LENGTH_KEYS[m]] = lengths_of(X, m)
        # Row keys of the ULGM label tables and feature bank.
        out["index"] = np.arange(len(out[next(iter(out))]), dtype=np.float32)
        return out

    def _build_module(self, dims, seq_lens):
        text_enc, text_dim = self._text_encoder_module(dims)
        return SelfMMModule(
            dims, text_enc, text_dim,
            (self.a_lstm_hidden_size, self.v_lstm_hidden_size),
            (self.a_lstm_layers, self.v_lstm_layers),
            (self.a_lstm_dropout, self.v_lstm_dropout),
            (self.audio_out, self.vision_out),
            (self.post_fusion_dim, self.post_text_dim, self.post_audio_dim, self.post_vision_dim),
            (self.post_fusion_dropout, self.post_text_dropout, self.post_audio_dropout,
             self.post_vision_dropout),
        )

    def _param_groups(self):
        groups = bert_param_groups(self.learning_rate_bert, self.weight_decay_bert)
        groups += [
            ("audio_model.*", {"lr": self.learning_rate_audio,
                               "weight_decay": self.weight_decay_audio}),
            ("video_model.*", {"lr": self.learning_rate_vision,
                               "weight_decay": self.weight_decay_vision}),
        ]
        return groups

    def predict_all(self, X):
        """Predictions of the fusion and unimodal heads.

        The unimodal heads were trained on ULGM's generated labels.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, 4)
            Columns M, T, A, V; NaN for heads of absent modalities.
        """
        return MultiTaskRegressor.predict_all(self, X)

    def get_representations(self, X):
        """Unimodal representations (text [CLS], audio and vision LSTM outputs).

        Returns
        -------
        reps : dict of str to ndarray of shape (n_samples, d)
        """
        return MultiTaskRegressor.get_representations(self, X)

    def _net_kwargs(self):
        return {"accumulation_steps": self.update_epochs, "ulgm_H": self.H,
                "exclude_zero": self.exclude_zero,
                "accumulation_tail": self.accumulation_tail}
