"""MMIM: hierarchical mutual-information maximisation for multimodal fusion.

The torch modules are in :mod:`simsbench.estimators.modules._mmim`, the
training net in :mod:`simsbench.estimators._mmim_net`.
"""

from __future__ import annotations

from simsbench.datasets import LENGTH_KEYS
from simsbench.estimators._callbacks import plateau_scheduler
from simsbench.estimators._constraints import (
    boolean,
    int_at_least,
    nonnegative_real,
    options,
    positive_int,
    positive_real,
    probability,
)
from simsbench.estimators._deep import _COMMON_DOC, DeepRegressor
from simsbench.estimators._fidelity import Correction
from simsbench.estimators._inputs import lengths_of
from simsbench.estimators._mmim_net import MMIMNet
from simsbench.estimators.modules._bert import (
    CLS_FEATURES_DOC,
    FITTED_SHAPES_DOC,
    TEXT_ENCODER_DOC,
    BertFamilyMixin,
    bert_param_groups,
)
from simsbench.estimators.modules._mmim import MMIMModule


class MMIM(BertFamilyMixin, DeepRegressor):
    __doc__ = ("""MMIM regressor (hierarchical mutual-information maximisation).

    Text is BERT's [CLS] vector; audio and vision are encoded by packed
    bidirectional LSTMs over the real frames.  A fusion MLP on ``[t, a, v]``
    regresses the score.  Two mutual-information terms shape the
    representations: the MMILB lower bound between text and vision and
    between text and audio (with an entropy estimate of the positive and
    negative samples), and CPC scores between the fusion vector and each
    modality.
""" + CLS_FEATURES_DOC + TEXT_ENCODER_DOC + """
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
        Per-epoch losses (train: the stage-2 objective; valid: L1 on M)."""
               + FITTED_SHAPES_DOC + """

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
    """)

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
        precision="float32",
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
        return [("lr_scheduler", plateau_scheduler(self._selection(), 0.5, self.when))]

    def _net_kwargs(self):
        return {"grad_clip_norm": self.grad_clip, "lr_mmilb": self.learning_rate_mmilb,
                "weight_decay_mmilb": self.weight_decay_mmilb, "alpha": self.alpha,
                "beta": self.beta, "mem_size": self.mem_size}
