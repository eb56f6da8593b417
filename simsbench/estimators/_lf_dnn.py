"""LF-DNN: late-fusion deep neural network (CH-SIMS Table 2)."""

from __future__ import annotations

import torch
from torch import nn

from simsbench.estimators._deep import _ATTRIBUTES_DOC, _COMMON_DOC, DeepRegressor
from simsbench.estimators.modules._blocks import PostHead, SubNet, TextSubNet


class LFDNNModule(nn.Module):
    """Audio/vision SubNets and a text LSTM, concatenated, then an MLP head."""

    def __init__(self, dims, hidden_dims, text_out, post_fusion_dim, dropouts):
        super().__init__()
        h_t, h_a, h_v = hidden_dims
        p_a, p_v, p_t, p_post = dropouts
        self.modalities = tuple(dims)
        fused = 0
        if "audio" in dims:
            self.audio_subnet = SubNet(dims["audio"], h_a, p_a)
            fused += h_a
        if "vision" in dims:
            self.video_subnet = SubNet(dims["vision"], h_v, p_v)
            fused += h_v
        if "text" in dims:
            self.text_subnet = TextSubNet(dims["text"], h_t, text_out, dropout=p_t)
            fused += text_out
        self.post_fusion = PostHead(fused, post_fusion_dim, p_post)

    def representations(self, text=None, audio=None, vision=None, text_lengths=None, **kw):
        reps = {}
        if "audio" in self.modalities:
            reps["audio"] = self.audio_subnet(audio)
        if "vision" in self.modalities:
            reps["vision"] = self.video_subnet(vision)
        if "text" in self.modalities:
            reps["text"] = self.text_subnet(text, text_lengths)
        return reps

    def forward(self, **inputs):
        reps = self.representations(**inputs)
        return self.post_fusion(torch.cat(list(reps.values()), dim=1))


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
        (audio, video, text, post-fusion) dropout, in the reference's order.
    pooling : {"length_aware", "padded"}, default="length_aware"
        ``"length_aware"`` averages audio/vision over real frames and runs the
        text LSTM over the real tokens; ``"padded"`` is the reference
        behaviour (zero padding averaged in; LSTM over all padded steps).
    """ + _COMMON_DOC + _ATTRIBUTES_DOC + """
    Notes
    -----
    Defaults are the reference's CH-SIMS hyperparameters (reference-facts
    §4.3): 635,821 trainable parameters with CH-SIMS shapes.  The reference
    text dropout is a no-op (a 1-layer LSTM's dropout); here it is applied
    to the LSTM's final state, as the configuration intends.

    References
    ----------
    .. [1] Williams, J., et al. "Recognizing emotions in video using
       multimodal DNN feature fusion." Grand Challenge and Workshop on Human
       Multimodal Language, 2018.
    .. [2] Yu, W., et al. "CH-SIMS: A Chinese multimodal sentiment analysis
       dataset with fine-grained annotation of modality." ACL 2020.

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
        pooling="length_aware",
        modalities=("text", "audio", "vision"),
        batch_size=128,
        learning_rate=5e-3,
        weight_decay=5e-3,
        max_epochs=100,
        early_stop=8,
        tol=1e-6,
        validation_fraction=0.2,
        device="cpu",
        random_state=None,
        verbose=0,
        n_threads=None,
    ):
        self.hidden_dims = hidden_dims
        self.text_out = text_out
        self.post_fusion_dim = post_fusion_dim
        self.dropouts = dropouts
        self.pooling = pooling
        self.modalities = modalities
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.early_stop = early_stop
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    def _prepare_inputs(self, X):
        return late_fusion_inputs(self, X)

    def _build_module(self, dims, seq_lens):
        return LFDNNModule(dims, self.hidden_dims, self.text_out, self.post_fusion_dim,
                           self.dropouts)


def late_fusion_inputs(est, X) -> dict:
    """Inputs of the late-fusion family (LF-DNN, TFN, LMF and their
    multi-task versions): pooled audio/vision, the text sequence and, for the
    length-aware mode, the text lengths."""
    if est.pooling not in ("length_aware", "padded"):
        raise ValueError(
            f"{type(est).__name__}: pooling must be 'length_aware' or 'padded', "
            f"got {est.pooling!r}"
        )
    padded = est.pooling == "padded"
    out = {}
    for m in est._modalities():
        if m == "text":
            out["text"] = X["text"]
            if not padded:
                from simsbench.estimators._inputs import lengths_of

                out["text_lengths"] = lengths_of(X, "text")
        else:
            out[m] = est._pooled(X, m, padded=padded)
    return out
