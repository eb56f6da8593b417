"""LMF (low-rank multimodal fusion) and its multi-task version MLMF
(CH-SIMS Table 2).

Both default to the reference configuration (MMSA
``src/MMSA/models/singleTask/LMF.py``, ``src/MMSA/models/multiTask/MLMF.py``
and their trainers); the deliberate improvements are named corrections
(:mod:`simsbench.estimators._fidelity`).
"""

from __future__ import annotations

from simsbench.estimators._constraints import Probabilities
from simsbench.estimators._deep import (
    _ATTRIBUTES_DOC,
    _COMMON_DOC,
    _MULTITASK_DOC,
    DeepRegressor,
)
from simsbench.estimators._late_fusion import (
    late_fusion_inputs,
    multitask_head_constraints,
    subnet_weight_decay_groups,
)
from simsbench.estimators._low_rank import (
    _LOW_RANK_CONSTRAINTS,
    _LOW_RANK_CORRECTIONS,
    _LOW_RANK_CORRECTIONS_DOC,
    _POOLING_DOC,
    FUSION_OUTPUT,
    _encoder_dropouts,
    _LeaveOutNet,
)
from simsbench.estimators._multitask import MultiTaskRegressor
from simsbench.estimators.modules._late_fusion import LMFModule, MLMFModule


class LMF(DeepRegressor):
    __doc__ = """Low-rank multimodal fusion (LMF) regressor.

    Audio and vision are time-averaged and encoded by 3-layer DNNs
    (``SubNet``), text by a 1-layer LSTM with output width
    ``hidden_dims[0] // 2``.  Each representation, with a constant 1
    prepended, is projected by ``rank`` modality-specific factors; the
    projections are multiplied across modalities and combined by
    ``fusion_weights`` and ``fusion_bias`` -- tensor fusion with a
    rank-``rank`` weight tensor, without building the tensor.  Trained with
    L1 loss.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(64, 16, 64)
        (text, audio, vision) encoder widths; the text output is
        ``hidden_dims[0] // 2``.
    dropouts : tuple of 4 float, default=(0.2, 0.2, 0.2, 0.2)
        (audio, vision, text, post-fusion) dropout, in the reference's order.
        The text value is used only with ``text_state_dropout=True``; the
        post-fusion value is accepted for configuration compatibility and,
        as in the reference, not used (LMF has no post-fusion layer).
    rank : int, default=4
        Rank of the fusion weight tensor.
    factor_lr : float, default=5e-4
        Adam learning rate of the modality factors (the encoders use
        ``learning_rate``).
""" + _POOLING_DOC + _COMMON_DOC.lstrip("\n") + _ATTRIBUTES_DOC + """
    Notes
    -----
    Reference configuration (the defaults): MMSA
    ``src/MMSA/models/singleTask/LMF.py`` trained by
    ``src/MMSA/trains/singleTask/LMF.py`` with the CH-SIMS hyperparameters
    of ``src/MMSA/config/config_regression.json``; 272,381 trainable
    parameters with CH-SIMS shapes, counted as the reference counts them
    (the 5 never-updated fusion scalars included).  The inputs are those of
    MMSA's data loader (``src/MMSA/data_loader.py``, ``need_normalized``):
    audio and vision averaged over the padded time axis, text padded.
    Optimizer: Adam with the three factors at ``factor_lr`` and the encoders
    at ``learning_rate``, both with ``weight_decay``; ``fusion_weights`` and
    ``fusion_bias`` are left out of the optimizer, so they keep their
    initialisation.  MMSA v_1.0, behind the 2020 CH-SIMS results, used
    ``hidden_dims=(256, 32, 256)``, ``rank=3``, ``batch_size=32``,
    ``factor_lr=1e-3``.
""" + _LOW_RANK_CORRECTIONS_DOC + """
    With a subset of ``modalities`` the fusion multiplies the projections of
    the modalities present.

    References
    ----------
    .. [1] Liu, Z., et al. "Efficient low-rank multimodal fusion with
       modality-specific factors." ACL 2018.
    .. [2] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import LMF
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = LMF(max_epochs=2, random_state=0).fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    _corrections = _LOW_RANK_CORRECTIONS
    _net_class = _LeaveOutNet

    # Small hyperparameters for the common checks and fast tests.
    _tiny_params = {"hidden_dims": (8, 4, 8), "rank": 2, "batch_size": 16,
                    "max_epochs": 3}

    _parameter_constraints = {**_LOW_RANK_CONSTRAINTS, "dropouts": [Probabilities(4)]}

    def __init__(
        self,
        *,
        hidden_dims=(64, 16, 64),
        dropouts=(0.2, 0.2, 0.2, 0.2),
        rank=4,
        factor_lr=5e-4,
        pooling="padded",
        text_state_dropout=False,
        freeze_fusion_weights=True,
        modalities=("text", "audio", "vision"),
        batch_size=64,
        learning_rate=2e-3,
        weight_decay=5e-3,
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
        self.dropouts = dropouts
        self.rank = rank
        self.factor_lr = factor_lr
        self.pooling = pooling
        self.text_state_dropout = text_state_dropout
        self.freeze_fusion_weights = freeze_fusion_weights
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
        return [("fusion.*_factor", {"lr": float(self.factor_lr)})]

    def _net_kwargs(self):
        return {"left_out": FUSION_OUTPUT if self.freeze_fusion_weights else ()}

    def _build_module(self, dims, seq_lens):
        return LMFModule(dims, tuple(self.hidden_dims), int(self.rank), _encoder_dropouts(self))


class MLMF(MultiTaskRegressor):
    __doc__ = """Multi-task low-rank multimodal fusion (MLMF) regressor.

    The LMF trunk (3-layer DNNs on time-averaged audio and vision, a 1-layer
    LSTM on text with output ``hidden_dims[0] // 2``) feeds four heads: the
    multimodal head M (LMF's low-rank fusion) and one 3-layer MLP per
    modality, trained on CH-SIMS's unimodal labels T, A and V.  The loss is
    the weighted sum of the heads' L1 losses; it also selects the epoch.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(256, 32, 256)
        (text, audio, vision) encoder widths; the text output is
        ``hidden_dims[0] // 2``.
    rank : int, default=3
        Rank of the fusion weight tensor.
    post_text_dim, post_audio_dim, post_vision_dim : int, default=8, 4, 32
        Widths of the T, A and V heads' MLPs.
    dropouts : tuple of 3 float, default=(0.3, 0.3, 0.3)
        (audio, vision, text) encoder dropout, in the reference's order; the
        text value is used only with ``text_state_dropout=True``.
    post_dropouts : tuple of 3 float, default=(0.4, 0.4, 0.4)
        (text, audio, vision) head dropout, in the reference's order (the
        reference configuration's fourth, fusion, value has no layer).
    factor_lr : float, default=1e-3
        Adam learning rate of the modality factors.
""" + _POOLING_DOC + _MULTITASK_DOC.strip("\n").replace(
        "    loss_weights : tuple of 4 float\n",
        "    loss_weights : tuple of 4 float, default=(0.2, 1.0, 0.4, 0.8)\n",
    ) + """
    weight_decay_text, weight_decay_audio, weight_decay_vision : float, \
default=1e-4, 0.0, 1e-4
        Adam weight decay of the text, audio and vision encoders (the paper's
        L2 sparsification of the shared parameters).
""" + _COMMON_DOC.lstrip("\n").replace(
        "    weight_decay : float\n        Adam (coupled L2) weight decay.\n",
        "    weight_decay : float, default=5e-3\n        Adam (coupled L2) weight "
        "decay of every parameter outside the\n        three encoders (factors, "
        "fusion weights, heads).\n",
    ) + _ATTRIBUTES_DOC + """
    Notes
    -----
    Reference configuration (the defaults): MMSA
    ``src/MMSA/models/multiTask/MLMF.py`` trained by
    ``src/MMSA/trains/multiTask/MLMF.py`` with the CH-SIMS hyperparameters
    of ``src/MMSA/config/config_regression.json``; 1,413,392 trainable
    parameters with CH-SIMS shapes, as the reference.  The inputs are those
    of MMSA's data loader (``need_normalized``: audio and vision averaged
    over the padded time axis, text padded).  Optimizer groups, in the
    reference's order: the text, audio and vision encoders at
    ``learning_rate`` with their own weight decay; the factors at
    ``factor_lr``; ``fusion_weights`` and ``fusion_bias`` at learning rate
    0 (Adam then leaves them at their initialisation, weight decay
    included); the heads at ``learning_rate``; the last three with
    ``weight_decay``.  All four heads are trained, as the reference does.
    ``predict`` returns the M head; ``predict_all`` every head.
""" + _LOW_RANK_CORRECTIONS_DOC + """
    Extensions the reference does not have: ``tasks`` switches the unimodal
    losses off without removing the heads; a 1-D ``y`` (M only) trains the M
    head with weight ``loss_weights[0]``; with a subset of ``modalities``
    the fusion multiplies the projections of the modalities present and the
    heads of absent modalities return None (NaN in ``predict_all``).

    References
    ----------
    .. [1] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020.
    .. [2] Liu, Z., et al. "Efficient low-rank multimodal fusion with
       modality-specific factors." ACL 2018.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import MLMF
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> y = ds.y("train", ("M", "T", "A", "V"))
    >>> model = MLMF(hidden_dims=(32, 8, 32), max_epochs=2, random_state=0)
    >>> model.fit(ds.X("train"), y).predict_all(ds.X("test")).shape
    (20, 4)
    """

    _corrections = _LOW_RANK_CORRECTIONS

    # Small hyperparameters for the common checks and fast tests.
    _tiny_params = {"hidden_dims": (8, 4, 8), "rank": 2, "post_text_dim": 4,
                    "post_audio_dim": 4, "post_vision_dim": 4, "batch_size": 16,
                    "max_epochs": 3}

    _parameter_constraints = {
        **_LOW_RANK_CONSTRAINTS,
        **multitask_head_constraints(3),
    }

    def __init__(
        self,
        *,
        hidden_dims=(256, 32, 256),
        rank=3,
        post_text_dim=8,
        post_audio_dim=4,
        post_vision_dim=32,
        dropouts=(0.3, 0.3, 0.3),
        post_dropouts=(0.4, 0.4, 0.4),
        factor_lr=1e-3,
        pooling="padded",
        text_state_dropout=False,
        freeze_fusion_weights=True,
        tasks=("T", "A", "V"),
        loss_weights=(0.2, 1.0, 0.4, 0.8),
        weight_decay_text=1e-4,
        weight_decay_audio=0.0,
        weight_decay_vision=1e-4,
        modalities=("text", "audio", "vision"),
        batch_size=128,
        learning_rate=1e-3,
        weight_decay=5e-3,
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
        self.rank = rank
        self.post_text_dim = post_text_dim
        self.post_audio_dim = post_audio_dim
        self.post_vision_dim = post_vision_dim
        self.dropouts = dropouts
        self.post_dropouts = post_dropouts
        self.factor_lr = factor_lr
        self.pooling = pooling
        self.text_state_dropout = text_state_dropout
        self.freeze_fusion_weights = freeze_fusion_weights
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
        groups = [
            *subnet_weight_decay_groups(self),
            ("fusion.*_factor", {"lr": float(self.factor_lr)}),
        ]
        if self.freeze_fusion_weights:
            # MMSA src/MMSA/trains/multiTask/MLMF.py: a learning-rate-0 group.
            groups.append(("fusion.fusion_*", {"lr": 0.0}))
        return groups

    def _build_module(self, dims, seq_lens):
        return MLMFModule(
            dims, tuple(self.hidden_dims), int(self.rank),
            (int(self.post_text_dim), int(self.post_audio_dim), int(self.post_vision_dim)),
            _encoder_dropouts(self), tuple(float(p) for p in self.post_dropouts),
        )
