"""MLF-DNN: the CH-SIMS paper's multi-task late-fusion DNN (CH-SIMS Table 2).

Also home of the shared late-fusion trunk (audio/vision ``SubNet``, text
``TextSubNet``) and the unimodal heads used by the multi-task models of this
family (MMSA ``src/MMSA/models/multiTask/MLF_DNN.py``, ``MLMF.py``).
"""

from __future__ import annotations

from simsbench.estimators._deep import _ATTRIBUTES_DOC, _COMMON_DOC, _MULTITASK_DOC
from simsbench.estimators._late_fusion import (
    CORRECTIONS_NOTES,
    MULTITASK_FUSION_CONSTRAINTS,
    POOLING,
    POOLING_DOC,
    TEXT_DROPOUT,
    late_fusion_inputs,
    subnet_weight_decay_groups,
)
from simsbench.estimators._multitask import MultiTaskRegressor
from simsbench.estimators.modules._late_fusion import MLFDNNModule

# ---------------------------------------------------------------------------
# estimator


class MLFDNN(MultiTaskRegressor):
    __doc__ = """Multi-task late-fusion DNN (MLF-DNN) regressor.

    The LF-DNN trunk (3-layer DNNs on time-averaged audio and vision, a
    1-layer LSTM on text) feeds four heads: the multimodal head M (the three
    representations concatenated, then a 3-layer MLP) and one 3-layer MLP per
    modality, trained on CH-SIMS's unimodal labels T, A and V.  The loss is
    the weighted sum of the heads' L1 losses; it also selects the epoch.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(64, 32, 64)
        (text, audio, vision) encoder widths.
    text_out : int, default=32
        Output width of the text encoder.
    post_fusion_dim : int, default=32
        Width of the M head's MLP.
    post_text_dim, post_audio_dim, post_vision_dim : int, default=16, 4, 32
        Widths of the T, A and V heads' MLPs.
    dropouts : tuple of 3 float, default=(0.3, 0.3, 0.3)
        (audio, vision, text) encoder dropout, in the reference's order.  The
        text dropout acts only with ``text_state_dropout=True``.
    post_dropouts : tuple of 4 float, default=(0.5, 0.5, 0.5, 0.5)
        (text, audio, vision, fusion) head dropout, in the reference's order.""" \
        + POOLING_DOC + "\n" + _MULTITASK_DOC.strip("\n").replace(
        "    loss_weights : tuple of 4 float\n",
        "    loss_weights : tuple of 4 float, default=(0.6, 0.2, 0.8, 0.8)\n",
    ) + """
    weight_decay_text, weight_decay_audio, weight_decay_vision : float, \
default=1e-4, 1e-3, 1e-4
        Adam weight decay of the text, audio and vision encoders (the paper's
        L2 sparsification of the shared parameters).
""" + _COMMON_DOC.lstrip("\n").replace(
        "    weight_decay : float\n        Adam (coupled L2) weight decay.\n",
        "    weight_decay : float, default=0.0\n        Adam (coupled L2) weight "
        "decay of the heads (every parameter\n        outside the three encoders).\n",
    ) + _ATTRIBUTES_DOC.replace("Per-epoch losses.", "Per-epoch (task-weighted) losses.") + """
    Notes
    -----
    Reference configuration: MMSA ``src/MMSA/models/multiTask/MLF_DNN.py``
    on the inputs of MMSA's ``src/MMSA/data_loader.py`` with
    ``need_normalized``, trained by ``src/MMSA/trains/multiTask/MLF_DNN.py``:
    Adam with one learning rate and four groups, weight decay
    ``weight_decay_text``/``weight_decay_audio``/``weight_decay_vision`` on
    the three encoders and ``weight_decay`` on the rest (the CH-SIMS
    paper's L2 sparsification, §4.3); the loss, and the validation loss that
    selects the epoch, is the ``loss_weights``-weighted sum of the four L1
    losses.  The defaults are the CH-SIMS entry of
    ``src/MMSA/config/config_regression.json``: 283,388 trainable parameters
    with CH-SIMS shapes, as the reference.  ``predict`` returns the M head;
    ``predict_all`` every head.

    Corrections (named parameters, reference values by default; see
    ``simsbench.estimators._fidelity``):
""" + CORRECTIONS_NOTES + """

    Extensions that leave the reference configuration as it is:

    * ``tasks`` switches the unimodal losses off without removing the heads
      (the CH-SIMS paper's Table 5); the reference always trains all four;
    * a 1-D ``y`` (M only) trains the M head with weight ``loss_weights[0]``.

    With a subset of ``modalities`` the M head fuses the modalities present
    and the heads of absent modalities return None (NaN in ``predict_all``).

    References
    ----------
    .. [1] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020 (§4,
       Tables 2 and 5).

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import MLFDNN
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> y = ds.y("train", ("M", "T", "A", "V"))
    >>> model = MLFDNN(max_epochs=2, random_state=0).fit(ds.X("train"), y)
    >>> model.predict(ds.X("test")).shape
    (20,)
    >>> model.predict_all(ds.X("test")).shape
    (20, 4)
    """

    _corrections = (POOLING, TEXT_DROPOUT)

    # Small hyperparameters for the common checks and fast tests.
    _tiny_params = {"hidden_dims": (8, 4, 8), "text_out": 8, "post_fusion_dim": 8,
                    "post_text_dim": 4, "post_audio_dim": 4, "post_vision_dim": 4,
                    "batch_size": 16, "max_epochs": 3}

    _parameter_constraints = MULTITASK_FUSION_CONSTRAINTS

    def __init__(
        self,
        *,
        hidden_dims=(64, 32, 64),
        text_out=32,
        post_fusion_dim=32,
        post_text_dim=16,
        post_audio_dim=4,
        post_vision_dim=32,
        dropouts=(0.3, 0.3, 0.3),
        post_dropouts=(0.5, 0.5, 0.5, 0.5),
        pooling="padded",
        text_state_dropout=False,
        tasks=("T", "A", "V"),
        loss_weights=(0.6, 0.2, 0.8, 0.8),
        weight_decay_text=1e-4,
        weight_decay_audio=1e-3,
        weight_decay_vision=1e-4,
        modalities=("text", "audio", "vision"),
        batch_size=32,
        learning_rate=2e-3,
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
        self.text_out = text_out
        self.post_fusion_dim = post_fusion_dim
        self.post_text_dim = post_text_dim
        self.post_audio_dim = post_audio_dim
        self.post_vision_dim = post_vision_dim
        self.dropouts = dropouts
        self.post_dropouts = post_dropouts
        self.pooling = pooling
        self.text_state_dropout = text_state_dropout
        self.tasks = tasks
        self.loss_weights = loss_weights
        self.weight_decay_text = weight_decay_text
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
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    def _prepare_inputs(self, X):
        return late_fusion_inputs(self, X)

    def _param_groups(self):
        return subnet_weight_decay_groups(self)

    def _build_module(self, dims, seq_lens):
        return MLFDNNModule(
            dims, tuple(self.hidden_dims), int(self.text_out), int(self.post_fusion_dim),
            (int(self.post_text_dim), int(self.post_audio_dim), int(self.post_vision_dim)),
            tuple(self.dropouts), tuple(self.post_dropouts),
            text_state_dropout=bool(self.text_state_dropout),
        )
