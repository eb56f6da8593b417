"""AV-MC and AV-MC (Semi): the CH-SIMS v2.0 paper's Acoustic Visual Mixup
Consistent framework, as released in github thuiar/ch-sims-v2 (the AV-MC
repository, cited below as ``ch-sims-v2 <path>``).

The torch modules are in :mod:`simsbench.estimators.modules._avmc`, the
training steps and the shared base in :mod:`simsbench.estimators._avmc_base`.
"""

from __future__ import annotations

from simsbench.estimators._avmc_base import (
    _GROUP_DOC,
    _MIXUP_DOC,
    UNLABELLED_BATCHES,
    _AVMCBase,
    _AVMCNet,
    _AVMCSemiNet,
    _encoder_doc,
    _tasks_doc,
)
from simsbench.estimators._constraints import boolean, options
from simsbench.estimators._deep import _ATTRIBUTES_DOC, _COMMON_DOC
from simsbench.estimators._fidelity import Correction


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
        precision="float32",
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
        self.precision = precision
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
        precision="float32",
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
        self.precision = precision
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
