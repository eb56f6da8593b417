"""TFN (tensor fusion network) and MTFN, its multi-task version (CH-SIMS).

References: MMSA ``src/MMSA/models/singleTask/TFN.py`` and
``src/MMSA/models/multiTask/MTFN.py``, trained by
``src/MMSA/trains/singleTask/TFN.py`` and ``src/MMSA/trains/multiTask/MTFN.py``.
"""

from __future__ import annotations

from simsbench.estimators._constraints import (
    Ints,
    Probabilities,
    positive_int,
)
from simsbench.estimators._deep import (
    _ATTRIBUTES_DOC,
    _COMMON_DOC,
    _MULTITASK_DOC,
    DeepRegressor,
    SimsNet,
)
from simsbench.estimators._late_fusion import (
    CORRECTIONS_NOTES,
    LATE_FUSION_CONSTRAINTS,
    MULTITASK_FUSION_CONSTRAINTS,
    POOLING,
    POOLING_DOC,
    TEXT_DROPOUT,
    late_fusion_inputs,
)
from simsbench.estimators._multitask import MultiTaskRegressor
from simsbench.estimators.modules._fusion import TensorFusion
from simsbench.estimators.modules._late_fusion import MTFNModule, TFNModule

# ---------------------------------------------------------------------------
# training helpers

class _TensorFusionNet(SimsNet):
    """SimsNet that keeps the peak memory of the big fusion layer down.

    At the end of each epoch it frees the fusion layer's reused buffers
    (weight gradient and dropout mask, ~0.7 GB for MTFN) so that they do not
    coexist with the early-stopping copy of the weights (the shell's
    :class:`~simsbench.estimators._deep.LeanEarlyStopping` keeps one copy).
    """

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        for m in self.module_.modules():
            if isinstance(m, TensorFusion):
                m.release_buffers()


_SPEED_NOTES = """
    The fusion layer is computed without materialising the fusion tensor
    (``simsbench.estimators.modules._fusion``): outputs and gradients equal
    the explicit outer product followed by Dropout and Linear (checked in
    float64 in ``tests/test_tfn.py``), but an epoch is several times faster
    and needs far less memory.  Two consequences, the only departures of the
    reference configuration from the reference: the fusion dropout
    probability is rounded to a multiple of 2⁻¹⁶ (0.4 becomes 0.399994;
    kept values are scaled by the exact inverse keep rate), and the dropout
    masks are drawn differently from ``nn.Dropout``, so runs are not
    bit-identical to the reference with the same seed (nor would a
    different batch order or device allow that).
"""


class TFN(DeepRegressor):
    __doc__ = """Tensor Fusion Network (TFN) regressor.

    Audio and vision are time-averaged and encoded by 3-layer DNNs
    (``SubNet``), text by a 1-layer LSTM.  Each representation gets a
    constant 1 appended in front, and the three are fused by their outer
    product ``[1;a] ⊗ [1;v] ⊗ [1;t]`` (audio-major), which holds the
    unimodal, bimodal and trimodal interactions.  The flattened tensor goes
    through Dropout and a 3-layer MLP; the output is ``sigmoid(x)·6 − 3``.
    Trained with L1 loss.  With a subset of modalities the outer product is
    taken over the modalities present.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(128, 32, 128)
        (text, audio, vision) encoder widths.
    text_out : int, default=256
        Output width of the text encoder.
    post_fusion_dim : int, default=32
        Width of the fusion MLP.
    dropouts : tuple of 4 float, default=(0.4, 0.4, 0.4, 0.4)
        (audio, vision, text, post-fusion) dropout, in the reference's order;
        the post-fusion dropout acts on the fusion tensor, the text dropout
        only with ``text_state_dropout=True``.""" + POOLING_DOC + _COMMON_DOC \
        + _ATTRIBUTES_DOC + """
    Notes
    -----
    Reference configuration: MMSA ``src/MMSA/models/singleTask/TFN.py``
    (encoders from ``src/MMSA/models/subNets/FeatureNets.py``) on the inputs
    of MMSA's ``src/MMSA/data_loader.py`` with ``need_normalized``, trained
    by ``src/MMSA/trains/singleTask/TFN.py``: Adam over every parameter but
    the output range and shift (6 and −3, constants here), no weight decay,
    L1 loss.  The defaults are the CH-SIMS entry of
    ``src/MMSA/config/config_regression.json`` (batch 32, learning rate
    5e-4): 35,632,077 trainable parameters with CH-SIMS shapes, 35,009,600
    of them in the first post-fusion layer (the fusion tensor has
    33·129·257 = 1,094,049 entries).

    Corrections (named parameters, reference values by default; see
    ``simsbench.estimators._fidelity``):
""" + CORRECTIONS_NOTES + "\n" + _SPEED_NOTES + """
    References
    ----------
    .. [1] Zadeh, A., et al. "Tensor Fusion Network for Multimodal Sentiment
       Analysis." EMNLP 2017.
    .. [2] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020 (§5.1,
       Table 2).

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import TFN
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = TFN(hidden_dims=(16, 8, 16), text_out=16, max_epochs=2,
    ...             random_state=0).fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    # Small hyperparameters for the common checks and fast tests.
    # (one thread: tiny models gain nothing from more, and lose a lot when
    # the machine is shared.)
    _tiny_params = {"hidden_dims": (8, 4, 8), "text_out": 8, "post_fusion_dim": 8,
                    "batch_size": 16, "max_epochs": 3, "n_threads": 1}

    _corrections = (POOLING, TEXT_DROPOUT)

    _parameter_constraints = {
        "hidden_dims": [Ints(3)],
        "text_out": [positive_int()],
        "post_fusion_dim": [positive_int()],
        "dropouts": [Probabilities(4)],
        **LATE_FUSION_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        hidden_dims=(128, 32, 128),
        text_out=256,
        post_fusion_dim=32,
        dropouts=(0.4, 0.4, 0.4, 0.4),
        pooling="padded",
        text_state_dropout=False,
        modalities=("text", "audio", "vision"),
        batch_size=32,
        learning_rate=5e-4,
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
        return TFNModule(dims, tuple(self.hidden_dims), int(self.text_out),
                         int(self.post_fusion_dim), tuple(self.dropouts),
                         bool(self.text_state_dropout))

    _net_class = _TensorFusionNet


class MTFN(MultiTaskRegressor):
    __doc__ = """Multi-task Tensor Fusion Network (MTFN) regressor (CH-SIMS).

    The TFN trunk (audio/vision ``SubNet``, text LSTM) feeds four heads:
    the multimodal M head is TFN's tensor fusion ``[1;a] ⊗ [1;v] ⊗ [1;t]``
    followed by Dropout, a 3-layer MLP and ``sigmoid(x)·6 − 3``; the T, A and
    V heads are Dropout → Linear → ReLU → Linear → ReLU → Linear on one
    modality's representation, trained on CH-SIMS's unimodal labels.  The
    loss (and the validation loss used for early stopping) is the weighted
    sum of the four L1 losses.

    Parameters
    ----------
    hidden_dims : tuple of 3 int, default=(256, 32, 256)
        (text, audio, vision) encoder widths.
    text_out : int, default=256
        Output width of the text encoder.
    post_fusion_dim : int, default=64
        Width of the M head's MLP.
    post_text_dim, post_audio_dim, post_vision_dim : int, default=64, 4, 8
        Widths of the T, A and V heads.
    dropouts : tuple of 3 float, default=(0.2, 0.2, 0.2)
        (audio, vision, text) encoder dropout, in the reference's order.
    post_dropouts : tuple of 4 float, default=(0.2, 0.2, 0.2, 0.2)
        (text, audio, vision, fusion) head dropout; the fusion dropout acts on
        the fusion tensor.""" + POOLING_DOC + _MULTITASK_DOC.rstrip("\n") + """
    weight_decay_text, weight_decay_audio, weight_decay_vision : float, \
default=1e-3, 1e-4, 1e-5
        Adam weight decay of the text, audio and vision encoders.""" + _COMMON_DOC.replace(
        "        Adam (coupled L2) weight decay.",
        "        Adam (coupled L2) weight decay of every other parameter (the\n"
        "        heads and the fusion); the reference passes none, so 0.") \
        + _ATTRIBUTES_DOC + """
    Notes
    -----
    Reference configuration: MMSA ``src/MMSA/models/multiTask/MTFN.py`` on
    the inputs of MMSA's ``src/MMSA/data_loader.py`` with
    ``need_normalized``, trained by ``src/MMSA/trains/multiTask/MTFN.py``:
    Adam with one learning rate, weight decay on the text/audio/vision
    encoders only (the trainer passes no top-level weight decay, so the
    heads and the fusion get none, whatever the configuration's
    ``weight_decay`` says); the loss, and the validation loss that selects
    the epoch, is the ``loss_weights``-weighted sum of the four L1 losses.
    The defaults are the CH-SIMS entry of
    ``src/MMSA/config/config_regression.json``: batch 64, learning rate
    5e-3, loss weights M/T/A/V = 0.6/0.4/0/1 (the A head exists but is not
    trained), weight decay 1e-3/1e-4/1e-5 on the text/audio/vision encoders.
    140,957,188 trainable parameters with CH-SIMS shapes, 139,495,552 of
    them in the first post-fusion layer (fusion tensor 33·257·257 =
    2,179,617 entries).  ``get_representations`` returns the trunk's text,
    audio and vision outputs.

    Corrections (named parameters, reference values by default; see
    ``simsbench.estimators._fidelity``):
""" + CORRECTIONS_NOTES + "\n" + _SPEED_NOTES + """
    References
    ----------
    .. [1] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020 (§4,
       Table 2).
    .. [2] Zadeh, A., et al. "Tensor Fusion Network for Multimodal Sentiment
       Analysis." EMNLP 2017.

    Examples
    --------
    >>> from simsbench.datasets import LABELS, make_synthetic
    >>> from simsbench.estimators import MTFN
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(6, 10, 8),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = MTFN(hidden_dims=(16, 8, 16), text_out=16, max_epochs=2,
    ...              random_state=0).fit(ds.X("train"), ds.y("train", LABELS))
    >>> model.predict_all(ds.X("test")).shape
    (20, 4)
    """

    _tiny_params = {"hidden_dims": (8, 4, 8), "text_out": 8, "post_fusion_dim": 8,
                    "post_text_dim": 4, "post_audio_dim": 4, "post_vision_dim": 4,
                    "batch_size": 16, "max_epochs": 3, "n_threads": 1}

    _corrections = (POOLING, TEXT_DROPOUT)

    _parameter_constraints = MULTITASK_FUSION_CONSTRAINTS

    def __init__(
        self,
        *,
        hidden_dims=(256, 32, 256),
        text_out=256,
        post_fusion_dim=64,
        post_text_dim=64,
        post_audio_dim=4,
        post_vision_dim=8,
        dropouts=(0.2, 0.2, 0.2),
        post_dropouts=(0.2, 0.2, 0.2, 0.2),
        pooling="padded",
        text_state_dropout=False,
        tasks=("T", "A", "V"),
        loss_weights=(0.6, 0.4, 0.0, 1.0),
        weight_decay_text=1e-3,
        weight_decay_audio=1e-4,
        weight_decay_vision=1e-5,
        modalities=("text", "audio", "vision"),
        batch_size=64,
        learning_rate=5e-3,
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

    def _build_module(self, dims, seq_lens):
        post_dims = (int(self.post_text_dim), int(self.post_audio_dim),
                     int(self.post_vision_dim))
        return MTFNModule(dims, tuple(self.hidden_dims), int(self.text_out),
                          int(self.post_fusion_dim), post_dims, tuple(self.dropouts),
                          tuple(self.post_dropouts), bool(self.text_state_dropout))

    def _param_groups(self):
        # Encoders get their own weight decay; everything else (heads, fusion)
        # stays in the default group with ``weight_decay``.  (The reference's
        # module names: the vision encoder is ``video_subnet``.)
        return [
            (f"{module}_subnet.*", {"weight_decay": float(getattr(self, f"weight_decay_{m}"))})
            for m, module in (("text", "text"), ("audio", "audio"), ("vision", "video"))
        ]

    _net_class = _TensorFusionNet
