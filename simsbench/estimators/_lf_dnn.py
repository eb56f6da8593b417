"""LF-DNN: late-fusion deep neural network (CH-SIMS Table 2).

What the late-fusion family shares lives in
:mod:`simsbench.estimators._late_fusion` (estimator side) and
:mod:`simsbench.estimators.modules._late_fusion` (torch modules).
"""

from __future__ import annotations

from simsbench.estimators._constraints import Ints, Probabilities, positive_int
from simsbench.estimators._deep import _ATTRIBUTES_DOC, _COMMON_DOC, DeepRegressor
from simsbench.estimators._late_fusion import (
    CORRECTIONS_NOTES,
    LATE_FUSION_CONSTRAINTS,
    POOLING,
    POOLING_DOC,
    TEXT_DROPOUT,
    late_fusion_inputs,
)
from simsbench.estimators.modules._late_fusion import LFDNNModule


class LFDNN(DeepRegressor):
    __doc__ = """Late-fusion DNN (LF-DNN) regressor.

    Audio and vision are time-averaged and encoded by 3-layer DNNs
    (``SubNet``), text by a 1-layer LSTM; the three representations are
    concatenated and regressed by a 3-layer MLP, trained with L1 loss.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(128, 32, 128)
        (text, audio, vision) encoder widths.
    text_out : int, default=256
        Output width of the text encoder.
    post_fusion_dim : int, default=32
        Width of the fusion MLP.
    dropouts : tuple of 4 float, default=(0.3, 0.3, 0.3, 0.5)
        (audio, vision, text, post-fusion) dropout, in the reference's order.
        The text dropout acts only with ``text_state_dropout=True``.""" + POOLING_DOC \
        + _COMMON_DOC + _ATTRIBUTES_DOC + """
    Notes
    -----
    Reference configuration: MMSA ``src/MMSA/models/singleTask/LF_DNN.py``
    (encoders from ``src/MMSA/models/subNets/FeatureNets.py``) on the inputs
    of MMSA's ``src/MMSA/data_loader.py`` with ``need_normalized``, trained
    by ``src/MMSA/trains/singleTask/LF_DNN.py``: Adam over every parameter
    with one learning rate and weight decay, L1 loss.  The defaults are the
    CH-SIMS entry of ``src/MMSA/config/config_regression.json``: 635,821
    trainable parameters with CH-SIMS shapes.

    Corrections (named parameters, reference values by default; see
    ``simsbench.estimators._fidelity``):
""" + CORRECTIONS_NOTES + """

    References
    ----------
    .. [1] Williams, J., et al. "Recognizing emotions in video using
       multimodal DNN feature fusion." Grand Challenge and Workshop on Human
       Multimodal Language, 2018.
    .. [2] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020 (§5.1,
       Table 2).

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import LFDNN
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = LFDNN(max_epochs=2, random_state=0).fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    _corrections = (POOLING, TEXT_DROPOUT)

    _parameter_constraints = {
        "hidden_dims": [Ints(3)],
        "text_out": [positive_int()],
        "post_fusion_dim": [positive_int()],
        "dropouts": [Probabilities(4)],
        **LATE_FUSION_CONSTRAINTS,
    }

    # Small hyperparameters for the common checks and fast tests.
    _tiny_params = {"hidden_dims": (8, 4, 8), "text_out": 8, "post_fusion_dim": 8,
                    "batch_size": 16, "max_epochs": 3}

    def __init__(
        self,
        *,
        hidden_dims=(128, 32, 128),
        text_out=256,
        post_fusion_dim=32,
        dropouts=(0.3, 0.3, 0.3, 0.5),
        pooling="padded",
        text_state_dropout=False,
        modalities=("text", "audio", "vision"),
        batch_size=128,
        learning_rate=5e-3,
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
        self.text_out = text_out
        self.post_fusion_dim = post_fusion_dim
        self.dropouts = dropouts
        self.pooling = pooling
        self.text_state_dropout = text_state_dropout
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

    def _build_module(self, dims, seq_lens):
        return LFDNNModule(dims, tuple(self.hidden_dims), int(self.text_out),
                           int(self.post_fusion_dim), tuple(self.dropouts),
                           bool(self.text_state_dropout))
