"""MulT: multimodal transformer for unaligned sequences (no CTC).

The torch module is in :mod:`simsbench.estimators.modules._mult`.
"""

from __future__ import annotations

from simsbench.datasets import LENGTH_KEYS
from simsbench.estimators._accumulation import (
    ACCUMULATION_CONSTRAINTS,
    ACCUMULATION_TAIL,
    CLIP_PER,
)
from simsbench.estimators._callbacks import plateau_scheduler
from simsbench.estimators._constraints import (
    Ints,
    boolean,
    int_at_least,
    nonnegative_real,
    positive_int,
    probability,
)
from simsbench.estimators._deep import _ATTRIBUTES_DOC, _COMMON_DOC, DeepRegressor
from simsbench.estimators._fidelity import Correction
from simsbench.estimators.modules._mult import MulTModule


class MulT(DeepRegressor):
    __doc__ = """Multimodal Transformer (MulT) regressor, without CTC alignment.

    Each modality is projected to ``d_model`` by a temporal Conv1d; for every
    target modality, crossmodal transformers let it attend to each other
    modality (L<-A, L<-V, A<-L, A<-V, V<-L, V<-A); the target's crossmodal
    outputs are concatenated and encoded by a self-attention ("memory")
    transformer whose last step represents the modality; the three are
    concatenated and regressed through a residual MLP, trained with L1 loss.

    Parameters
    ----------
    d_model : int, default=50
        Width of every crossmodal transformer (the reference's
        ``dst_feature_dim_nheads[0]``); memory transformers are twice as wide.
    num_heads : int, default=10
        Attention heads (``dst_feature_dim_nheads[1]``); must divide
        ``d_model``.
    nlevels : int, default=2
        Layers of each crossmodal transformer; the memory transformers have
        ``max(nlevels, 3)``.
    kernel_sizes : tuple of 3 int, default=(5, 1, 1)
        (text, audio, vision) Conv1d kernel sizes (no padding, so a sequence
        shrinks by ``k - 1`` steps).
    attn_dropout : float, default=0.2
        Attention-weight dropout when text is attended to (A<-L, V<-L) and
        in the memory transformers.
    attn_dropout_a : float, default=0.1
        Attention-weight dropout when audio is attended to (L<-A, V<-A).
    attn_dropout_v : float, default=0.0
        Attention-weight dropout when vision is attended to (L<-V, A<-V).
    relu_dropout : float, default=0.0
        Dropout after the FFN's ReLU.
    embed_dropout : float, default=0.1
        Dropout on each transformer's scaled input.
    res_dropout : float, default=0.2
        Dropout on each residual branch.
    output_dropout : float, default=0.1
        Dropout in the residual output block.
    text_dropout : float, default=0.3
        Dropout on the text features before the projection.
    attn_mask : bool, default=True
        The reference's offset "future" mask: query step i may attend to key
        step j only if ``j <= i + |L_k - L_q|`` (causal in self-attention).
    key_padding_mask : bool, default=False
        ``False`` (the reference): every padded step is a real step -- the
        zero-padded frames are attended to, the offset mask uses the padded
        lengths and each memory transformer is read at the last padded step.
        ``True`` (correction ``key_padding_mask``): attend only to the real
        steps, compute the offset mask from the real lengths and read the
        last *real* step; predictions then do not depend on the padding.
    positional_embedding : bool, default=False
        ``False`` (the reference, MMSA v2): no positional information.
        ``True`` (correction ``positional_embedding``): add the MulT paper's
        fairseq-style sinusoidal positions (no parameters; positions start
        at 1, and with ``key_padding_mask`` padded steps get none).
    lr_patience : int, default=10
        ReduceLROnPlateau patience (epochs) on the validation loss (factor
        0.1); the reference's ``patience``.
    grad_clip : float, default=0.6
        Clip gradients by value (0 or None: off).
    clip_per : {"backward", "step"}, default="backward"
        ``"backward"`` (the reference): the accumulated gradients are clipped
        after every batch's backward pass.  ``"step"`` (correction
        ``clip_per``): once, before each optimizer step.
    accumulation_steps : int, default=8
        Batches whose gradients are summed per optimizer step (the
        reference's ``update_epochs``).
    accumulation_tail : {"drop", "apply"}, default="drop"
        ``"drop"`` (the reference): the gradients of an epoch's last
        ``n_batches mod accumulation_steps`` batches are discarded.
        ``"apply"`` (correction ``accumulation_tail``): they make one last
        optimizer step.
    """ + _COMMON_DOC + _ATTRIBUTES_DOC + """
    Notes
    -----
    **Reference configuration** (the defaults): ``MMSA
    src/MMSA/models/singleTask/MULT.py`` with its encoder
    ``MMSA src/MMSA/models/subNets/transformers_encoder/transformer.py``,
    trained as ``MMSA src/MMSA/trains/singleTask/MULT.py`` does, with the
    CH-SIMS entry of ``MMSA src/MMSA/config/config_regression.json``:
    1,870,701 trainable parameters with CH-SIMS shapes (parameter names
    follow the reference's too).  The reference's transformer layer is
    pre-LN with one LayerNorm shared by query, key and value, the encoder
    input is scaled by sqrt(d), embedding dropout is drawn separately for the
    query, key and value inputs, a final LayerNorm follows the stack.  MMSA
    v2's encoder has no positional embedding (``position_embedding``
    defaults to false and MulT does not set it) and no key padding mask.
    Adam without weight decay (the config's ``weight_decay`` is ignored),
    ReduceLROnPlateau (factor 0.1) stepped on the validation loss that
    selects the epoch (with ``selection="reference"`` the rounded batch mean,
    as the reference), gradients clipped by value after every backward and
    summed over ``accumulation_steps`` batches, the epoch's tail dropped.  As
    in the reference, a modality whose feature size equals ``d_model`` is
    not projected; its Conv1d is still registered (and counted), unused.

    **Corrections** (see :mod:`simsbench.estimators._fidelity`):

    * ``key_padding_mask``: attend to real steps only, offset mask from the
      real lengths (each modality's real length after the convolution is
      ``max(1, length - k + 1)``), read the last real step;
    * ``positional_embedding``: sinusoidal positions, as in the MulT paper
      [1]_ (Sec. 3.2) and MMSA v1.0 (where a step whose first projected
      feature is exactly 0 counted as padding);
    * ``clip_per``: clip once per optimizer step;
    * ``accumulation_tail``: apply the last partial accumulation group;
    * ``selection`` and ``epoch_cap``: the training shell's corrections.

    Numerically, the dropouts inside the transformers (attention weights,
    embedding, residual, ReLU) keep a value with probability
    ``round((1 - p) * 2**16) / 2**16`` (within 8e-6 of the reference's
    ``1 - p``, exactly rescaled), drawn as 16-bit random integers for
    speed.  With two modalities each target has one crossmodal transformer
    (its memory transformer is ``d_model`` wide); with one modality the
    crossmodal stage is a self-attention transformer over that modality
    (the reference has only the trimodal model).

    Computation: with ``key_padding_mask`` sequences are packed to their
    real steps, so padded frames cost nothing outside the attention, and
    each attention runs either per clip or as one padded call with a key
    padding mask, whichever has fewer score entries; the last
    memory-transformer layer is computed only at the step that is read out.
    None of this changes the model's function.  On CPU prefer
    ``n_threads=1`` when the machine is shared: torch's thread pool slows
    down badly when oversubscribed.

    References
    ----------
    .. [1] Tsai, Y.-H. H., et al. "Multimodal Transformer for Unaligned
       Multimodal Language Sequences." ACL 2019.
    .. [2] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020.

    Examples
    --------
    >>> from simsbench.datasets import make_synthetic
    >>> from simsbench.estimators import MulT
    >>> ds = make_synthetic(n_samples=(60, 20, 20), seq_lens=(8, 12, 10),
    ...                     feature_dims=(16, 5, 7), random_state=0)
    >>> model = MulT(d_model=8, num_heads=2, max_epochs=2, random_state=0, n_threads=1)
    >>> model = model.fit(ds.X("train"), ds.y("train"))
    >>> model.predict(ds.X("test")).shape
    (20,)
    """

    _corrections = (
        Correction(
            "key_padding_mask",
            "The reference attends to the zero-padded frames, builds the offset mask from the "
            "padded lengths and reads the last padded step; corrected: real steps only, the "
            "real lengths and the last real step.",
            {"key_padding_mask": (False, True)},
        ),
        Correction(
            "positional_embedding",
            "The reference (MMSA v2) adds no positional embedding; corrected: the MulT "
            "paper's sinusoidal positions.",
            {"positional_embedding": (False, True)},
        ),
        CLIP_PER,
        ACCUMULATION_TAIL,
    )

    # Small hyperparameters for the common checks and fast tests.
    _tiny_params = {"d_model": 8, "num_heads": 2, "nlevels": 1, "batch_size": 16,
                    "accumulation_steps": 1, "max_epochs": 3, "n_threads": 1}

    _parameter_constraints = {
        "d_model": [positive_int()],
        "num_heads": [positive_int()],
        "nlevels": [positive_int()],
        "kernel_sizes": [Ints(3)],
        **{p: [probability()] for p in (
            "attn_dropout", "attn_dropout_a", "attn_dropout_v", "relu_dropout",
            "embed_dropout", "res_dropout", "output_dropout", "text_dropout")},
        "attn_mask": [boolean],
        "key_padding_mask": [boolean],
        "positional_embedding": [boolean],
        "lr_patience": [int_at_least(0)],
        "grad_clip": [nonnegative_real(), None],
        "accumulation_steps": [positive_int()],
        **ACCUMULATION_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        d_model=50,
        num_heads=10,
        nlevels=2,
        kernel_sizes=(5, 1, 1),
        attn_dropout=0.2,
        attn_dropout_a=0.1,
        attn_dropout_v=0.0,
        relu_dropout=0.0,
        embed_dropout=0.1,
        res_dropout=0.2,
        output_dropout=0.1,
        text_dropout=0.3,
        attn_mask=True,
        key_padding_mask=False,
        positional_embedding=False,
        lr_patience=10,
        grad_clip=0.6,
        clip_per="backward",
        accumulation_steps=8,
        accumulation_tail="drop",
        modalities=("text", "audio", "vision"),
        batch_size=16,
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
        self.d_model = d_model
        self.num_heads = num_heads
        self.nlevels = nlevels
        self.kernel_sizes = kernel_sizes
        self.attn_dropout = attn_dropout
        self.attn_dropout_a = attn_dropout_a
        self.attn_dropout_v = attn_dropout_v
        self.relu_dropout = relu_dropout
        self.embed_dropout = embed_dropout
        self.res_dropout = res_dropout
        self.output_dropout = output_dropout
        self.text_dropout = text_dropout
        self.attn_mask = attn_mask
        self.key_padding_mask = key_padding_mask
        self.positional_embedding = positional_embedding
        self.lr_patience = lr_patience
        self.grad_clip = grad_clip
        self.clip_per = clip_per
        self.accumulation_steps = accumulation_steps
        self.accumulation_tail = accumulation_tail
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
        # the checks a per-parameter constraint cannot express
        name = type(self).__name__
        if self.d_model % self.num_heads:
            raise ValueError(f"{name}: d_model ({self.d_model}) must be divisible by "
                             f"num_heads ({self.num_heads})")
        for m, k in zip(("text", "audio", "vision"), self.kernel_sizes):
            # an unprojected modality (feature size d_model) never runs its conv
            if m in seq_lens and dims.get(m) != self.d_model and k > seq_lens[m]:
                raise ValueError(f"{name}: kernel_sizes[{m}] = {k} exceeds the "
                                 f"sequence length {seq_lens[m]}")
        return MulTModule(
            dims, self.d_model, self.num_heads, self.nlevels, tuple(self.kernel_sizes),
            self.attn_dropout, self.attn_dropout_a, self.attn_dropout_v, self.relu_dropout,
            self.embed_dropout, self.res_dropout, self.output_dropout, self.text_dropout,
            bool(self.attn_mask), bool(self.key_padding_mask),
            bool(self.positional_embedding),
        )

    def _prepare_inputs(self, X):
        out = super()._prepare_inputs(X)
        if not self.key_padding_mask:  # the reference sees every padded step
            out = {k: v for k, v in out.items() if k not in LENGTH_KEYS.values()}
        return out

    def _callbacks(self):
        return [("lr_plateau", plateau_scheduler(self._selection(), 0.1, self.lr_patience))]

    def _net_kwargs(self):
        return {"accumulation_steps": int(self.accumulation_steps),
                "grad_clip_value": self.grad_clip or None,
                "clip_per": self.clip_per,
                "accumulation_tail": self.accumulation_tail}
