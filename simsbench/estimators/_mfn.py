"""MFN and Graph-MFN: memory fusion networks (CH-SIMS Table 2).

Both default to the reference configuration (MMSA
``src/MMSA/models/singleTask/MFN.py`` and ``Graph_MFN.py`` with their
trainers); the deliberate improvements are named corrections
(:mod:`simsbench.estimators._fidelity`).

Both run one LSTM cell per modality over the aligned time grid
(:mod:`simsbench.estimators._alignment`) and a gated multimodal memory; the
torch modules, organised for speed, are in
:mod:`simsbench.estimators.modules._memory_fusion`.
"""

from __future__ import annotations

from simsbench.estimators._alignment import aligned_sequence_inputs
from simsbench.estimators._constraints import Ints, Layer, boolean, options, positive_int
from simsbench.estimators._deep import _ATTRIBUTES_DOC, _COMMON_DOC, DeepRegressor
from simsbench.estimators._fidelity import Correction
from simsbench.estimators.modules._memory_fusion import GraphMFNModule, MFNModule

__all__ = ["MFN", "GraphMFN"]

# ---------------------------------------------------------------------------
# estimators


class _SequenceFusionRegressor(DeepRegressor):
    _parameter_constraints = {
        "hidden_dims": [Ints(3)],
        "memsize": [positive_int()],
        "gamma1": [Layer()],
        "gamma2": [Layer()],
        "out": [Layer()],
        "nn2": [Layer()],
        "alignment": [options("length_aware", "padded")],
    }

    def _prepare_inputs(self, X):
        return aligned_sequence_inputs(self, X)


class MFN(_SequenceFusionRegressor):
    __doc__ = """Memory Fusion Network (MFN) regressor.

    One LSTM cell per modality steps over the text's time grid; at every step
    an attention over the LSTM cells of the last ``window`` steps (the
    delta-memory attention) feeds a gated multi-view memory; the last hidden
    states and the memory are regressed by an MLP, trained with L1 loss.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(64, 16, 64)
        (text, audio, vision) LSTM hidden sizes.
    memsize : int, default=64
        Size of the multi-view memory.
    window : int, default=2
        Steps of LSTM cells the attention sees (2: ``[c_{t-1}, c_t]``).
    nn1 : (int, float), default=(128, 0.2)
        (width, dropout) of the attention MLP (the reference's NN1Config).
    nn2 : (int, float), default=(128, 0.0)
        (width, dropout) of the memory-candidate MLP (NN2Config).
    gamma1, gamma2 : (int, float), default=(64, 0.2) and (64, 0.7)
        (width, dropout) of the retain and update gate MLPs.
    out : (int, float), default=(64, 0.7)
        (width, dropout) of the output MLP.
    alignment : {"mean", "length_aware", "padded"}, default="mean"
        How audio and vision are put on the text's time grid.  ``"mean"``
        (the reference on CH-SIMS): each clip's audio/vision averaged over
        the whole padded time axis, and that one vector fed at every padded
        text step.  ``"length_aware"`` (correction ``alignment``): each
        clip's real frames pooled into as many consecutive windows as it has
        real text tokens, and the recurrence stops at its last real token.
        ``"padded"``: MMSA's average-pool aligner on the padded arrays, over
        every padded step (the reference's Graph-MFN inputs).
    """ + _COMMON_DOC + _ATTRIBUTES_DOC + """
    Notes
    -----
    Reference configuration (the defaults): MMSA
    ``src/MMSA/models/singleTask/MFN.py`` trained by
    ``src/MMSA/trains/singleTask/MFN.py`` (one Adam group) with the CH-SIMS
    hyperparameters of ``src/MMSA/config/config_regression.json``; 601,505
    trainable parameters with CH-SIMS shapes.  MMSA sets both
    ``need_normalized`` and ``need_model_aligned`` for MFN, so on CH-SIMS
    the data loader (``src/MMSA/data_loader.py``) averages audio and vision
    over the padded time axis and ``AlignSubNet('avg_pool')``
    (``src/MMSA/models/subNets/AlignNets.py``) repeats that one vector at
    each of the 39 text steps: the audio/vision LSTMs see a constant input
    (``alignment="mean"``), and every cell runs over all padded text steps.
    The three gate/attention MLPs and the output MLP are
    Linear-ReLU-Dropout-Linear.  (The CH-SIMS paper, Section 5.1, mentions
    CTC alignment for MFN; the reference code uses the average-pool
    aligner, which is what is reproduced.)

    Corrections (``apply_variant(est, "corrected")`` switches every one on):

    * ``alignment`` -- ``alignment="length_aware"``: the audio/vision LSTMs
      see the aligned real frames instead of a constant, and padding is
      never stepped over;
    * ``selection`` and ``epoch_cap`` -- the training shell's (the
      ``selection`` and ``max_epochs`` parameters).

    Extensions the reference does not have: ``window`` other than 2; a
    subset of ``modalities`` (the cells, attention and memory cover the
    modalities present; without text the time grid is the used modality
    with the shortest padded length).

    References
    ----------
    .. [1] Zadeh, A., et al. "Memory fusion network for multi-view sequential
       learning." AAAI 2018.
    .. [2] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import MFN
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = MFN(max_epochs=2, random_state=0).fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    _parameter_constraints = {
        "window": [positive_int()],
        "nn1": [Layer()],
        "alignment": [options("mean", "length_aware", "padded")],
    }
    _corrections = (
        Correction(
            "alignment",
            "The reference feeds MFN's audio and vision LSTMs one vector, the clip's "
            "average over the padded time axis, at every padded text step; corrected: the "
            "clip's real frames pooled onto its real text steps.",
            {"alignment": ("mean", "length_aware")},
        ),
    )
    _tiny_params = {"hidden_dims": (8, 4, 8), "memsize": 8, "nn1": (8, 0.2),
                    "nn2": (8, 0.0), "gamma1": (8, 0.2), "gamma2": (8, 0.2),
                    "out": (8, 0.2), "batch_size": 16, "max_epochs": 3}

    def __init__(
        self,
        *,
        hidden_dims=(64, 16, 64),
        memsize=64,
        window=2,
        nn1=(128, 0.2),
        nn2=(128, 0.0),
        gamma1=(64, 0.2),
        gamma2=(64, 0.7),
        out=(64, 0.7),
        alignment="mean",
        modalities=("text", "audio", "vision"),
        batch_size=32,
        learning_rate=1e-3,
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
        self.hidden_dims = hidden_dims
        self.memsize = memsize
        self.window = window
        self.nn1 = nn1
        self.nn2 = nn2
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.out = out
        self.alignment = alignment
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

    def _build_module(self, dims, seq_lens):
        return MFNModule(dims, tuple(self.hidden_dims), self.memsize, self.window,
                         self.nn1, self.nn2, self.gamma1, self.gamma2, self.out)


class GraphMFN(_SequenceFusionRegressor):
    __doc__ = """Graph Memory Fusion Network (Graph-MFN) regressor.

    MFN whose attention is replaced by a Dynamic Fusion Graph (DFG): at every
    step each modality's singleton ``ReLU(Linear([h_{t-1}, h_t]))`` feeds one
    node per subset of modalities and a summary node tau, every edge scaled
    by an efficacy predicted from the singletons; tau drives the gated
    memory.  Trained with L1 loss.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(256, 32, 256)
        (text, audio, vision) LSTM hidden sizes (and singleton sizes).
    memsize : int, default=64
        Size of the multi-view memory.
    inner_node_dim : int, default=128
        Output size of every DFG node.
    nn2 : (int, float), default=(256, 0.5)
        (width, dropout) of the memory-candidate MLP (the reference's
        NNConfig; MFN's NN2).
    gamma1, gamma2 : (int, float), default=(32, 0.2) and (32, 0.7)
        (width, dropout) of the retain and update gate MLPs.
    out : (int, float), default=(256, 0.2)
        (width, dropout) of the output MLP.
    freeze_node_nets : bool, default=True
        True (the reference): the multimodal DFG node nets keep their random
        initialisation; the reference holds them in a plain dict, so they
        are not registered and never trained.  False (correction
        ``node_nets``): they are trained with the rest of the graph.
    alignment : {"padded", "length_aware"}, default="padded"
        How audio and vision are put on the text's time grid.  ``"padded"``
        (the reference): MMSA's average-pool aligner on the padded arrays,
        and the recurrence over every padded text step.  ``"length_aware"``
        (correction ``alignment``): each clip's real frames pooled into as
        many consecutive windows as it has real text tokens, and the
        recurrence stops at its last real token.
    """ + _COMMON_DOC + _ATTRIBUTES_DOC + """
    Notes
    -----
    Reference configuration (the defaults): MMSA
    ``src/MMSA/models/singleTask/Graph_MFN.py`` trained by
    ``src/MMSA/trains/singleTask/Graph_MFN.py`` (one Adam group over the
    registered parameters) with the CH-SIMS hyperparameters of
    ``src/MMSA/config/config_regression.json``.  With CH-SIMS shapes the
    model has 2,724,860 trainable parameters, as the reference registers
    them: the four multimodal node nets (253,712 parameters) are kept in a
    plain dict there, hence never trained, and are frozen here
    (``requires_grad=False``).  MMSA sets ``need_model_aligned`` but not
    ``need_normalized`` for Graph-MFN, so ``AlignSubNet('avg_pool')``
    (``src/MMSA/models/subNets/AlignNets.py``) pools the padded audio and
    vision to the text length in consecutive windows, padding by repeating
    the last (usually zero) frame (``alignment="padded"``), and every cell
    runs over all padded text steps.  Node nets and the efficacy net have
    no activations, as in the reference, and an inner width of 100; the
    second layers of the node nets and of tau start as copies of one random
    layer, as the reference builds them (so the frozen node nets share
    their second layer throughout).

    Corrections (``apply_variant(est, "corrected")`` switches every one on):

    * ``alignment`` -- ``alignment="length_aware"``, as for :class:`MFN`;
    * ``node_nets`` -- ``freeze_node_nets=False``: the whole graph is
      trained, as the DFG paper describes (2,978,572 trainable parameters
      with CH-SIMS shapes);
    * ``selection`` and ``epoch_cap`` -- the training shell's (the
      ``selection`` and ``max_epochs`` parameters).

    Extension the reference does not have: with a subset of modalities the
    graph is built over the modalities present (two modalities: their two
    singletons, one bimodal node and tau, 5 efficacies; one modality: tau
    over the singleton alone, 1 efficacy).

    References
    ----------
    .. [1] Zadeh, A., et al. "Multimodal language analysis in the wild:
       CMU-MOSEI dataset and interpretable dynamic fusion graph." ACL 2018.
    .. [2] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import GraphMFN
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = GraphMFN(hidden_dims=(32, 8, 32), max_epochs=2, random_state=0)
    >>> model.fit(ds.X("train"), ds.y("train")).predict(ds.X("test")).shape
    (20,)
    """

    _parameter_constraints = {
        "inner_node_dim": [positive_int()],
        "freeze_node_nets": [boolean],
    }
    _corrections = (
        Correction(
            "alignment",
            "The reference pools the padded audio and vision arrays onto the padded text "
            "steps and steps over all of them; corrected: each clip's real frames pooled "
            "onto its real text steps.",
            {"alignment": ("padded", "length_aware")},
        ),
        Correction(
            "node_nets",
            "The reference does not register the Dynamic Fusion Graph's multimodal node "
            "nets, which keep their random initialisation; corrected: they are trained.",
            {"freeze_node_nets": (True, False)},
        ),
    )
    _tiny_params = {"hidden_dims": (8, 4, 8), "memsize": 8, "inner_node_dim": 8,
                    "nn2": (8, 0.2), "gamma1": (8, 0.2), "gamma2": (8, 0.2),
                    "out": (8, 0.2), "batch_size": 16, "max_epochs": 3}

    def __init__(
        self,
        *,
        hidden_dims=(256, 32, 256),
        memsize=64,
        inner_node_dim=128,
        nn2=(256, 0.5),
        gamma1=(32, 0.2),
        gamma2=(32, 0.7),
        out=(256, 0.2),
        freeze_node_nets=True,
        alignment="padded",
        modalities=("text", "audio", "vision"),
        batch_size=64,
        learning_rate=5e-4,
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
        self.hidden_dims = hidden_dims
        self.memsize = memsize
        self.inner_node_dim = inner_node_dim
        self.nn2 = nn2
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.out = out
        self.freeze_node_nets = freeze_node_nets
        self.alignment = alignment
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

    def _build_module(self, dims, seq_lens):
        return GraphMFNModule(dims, tuple(self.hidden_dims), self.memsize,
                              self.inner_node_dim, self.nn2, self.gamma1, self.gamma2,
                              self.out, bool(self.freeze_node_nets))
