"""BERT-MAG: BERT with a Multimodal Adaptation Gate after the embedding layer."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from simsbench.estimators._constraints import positive_real, probability
from simsbench.estimators._deep import _COMMON_DOC, DeepRegressor
from simsbench.estimators._inputs import align_to_length
from simsbench.estimators.modules._bert import BertFamilyMixin, BertTextEncoder, load_bert


class MAGGate(nn.Module):
    """Multimodal Adaptation Gate on token embeddings ``e`` (B, L, H).

    ``g_v = ReLU(W_hv [v; e])``, ``g_a = ReLU(W_ha [a; e])``,
    ``h = g_v * W_v v + g_a * W_a a``,
    ``alpha = min(|e| beta_shift / (|h| + 1e-6), 1)`` (``|h| = 0`` -> 1),
    output ``Dropout(LayerNorm(e + alpha h))``.  Either of ``audio_dim`` /
    ``visual_dim`` may be None (a bimodal gate).
    """

    def __init__(self, text_dim, audio_dim, visual_dim, beta_shift=1.0, dropout=0.1):
        super().__init__()
        if visual_dim is not None:
            self.W_hv = nn.Linear(visual_dim + text_dim, text_dim)
            self.W_v = nn.Linear(visual_dim, text_dim)
        if audio_dim is not None:
            self.W_ha = nn.Linear(audio_dim + text_dim, text_dim)
            self.W_a = nn.Linear(audio_dim, text_dim)
        self.beta_shift = beta_shift
        self.LayerNorm = nn.LayerNorm(text_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, e, visual=None, acoustic=None):
        h = torch.zeros_like(e)
        if visual is not None:
            h = h + torch.relu(self.W_hv(torch.cat((visual, e), dim=-1))) * self.W_v(visual)
        if acoustic is not None:
            h = h + torch.relu(self.W_ha(torch.cat((acoustic, e), dim=-1))) * self.W_a(acoustic)
        em_norm = e.norm(p=2, dim=-1)
        hm_norm = h.norm(p=2, dim=-1)
        hm_norm = torch.where(hm_norm == 0, torch.ones_like(hm_norm), hm_norm)
        alpha = torch.clamp(em_norm / (hm_norm + 1e-6) * self.beta_shift, max=1.0)
        return self.dropout(self.LayerNorm(e + alpha.unsqueeze(-1) * h))


class BertMAGModule(nn.Module):
    """BERT embeddings -> MAG -> BERT encoder -> pooler -> Dropout -> Linear(1)."""

    def __init__(self, bert, dims, beta_shift, dropout_prob):
        super().__init__()
        self.modalities = tuple(dims)
        self.bert = bert
        cfg = bert.config
        H = int(cfg.hidden_size)
        self.mag = MAGGate(H, dims.get("audio"), dims.get("vision"), beta_shift, dropout_prob)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.classifier = nn.Linear(H, 1)
        # BERT's initialisation for the new layers (as from_pretrained does).
        std = float(getattr(cfg, "initializer_range", 0.02))
        for mod in [*self.mag.modules(), self.classifier]:
            if isinstance(mod, nn.Linear):
                nn.init.normal_(mod.weight, mean=0.0, std=std)
                nn.init.zeros_(mod.bias)

    def forward(self, text_bert=None, audio=None, vision=None, **kw):
        ids, mask, segments = BertTextEncoder.split(text_bert)
        visual = vision if "vision" in self.modalities else None
        acoustic = audio if "audio" in self.modalities else None

        def gate(module, args, embeddings):
            # The gate replaces the embedding layer's output, where the
            # reference injects it (MMSA src/MMSA/models/singleTask/BERT_MAG.py):
            # BERT's own forward then builds the attention mask and runs the
            # encoder and pooler, through public API only.
            return self.mag(embeddings, visual, acoustic)

        handle = self.bert.embeddings.register_forward_hook(gate)
        try:
            out = self.bert(input_ids=ids, attention_mask=mask.long(), token_type_ids=segments)
        finally:
            handle.remove()
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = self.bert.pooler(out[0])
        return self.classifier(self.dropout(pooled)).reshape(-1)


class BertMAG(BertFamilyMixin, DeepRegressor):
    __doc__ = """BERT-MAG regressor (BERT with a Multimodal Adaptation Gate).

    Audio and vision are average-pooled to the BERT token length (MMSA's
    model alignment), and at every token the gate shifts BERT's input
    embedding by an audio-visual displacement before BERT's encoder; the
    pooled [CLS] output is regressed with L1 loss.

    BERT-MAG has **no features variant**: the gate sits *inside* BERT, so it
    needs ``text_encoder="bert"`` and a local BERT checkpoint
    (``pretrained=PATH``), and ``X["text_bert"]``.  ``fit`` raises a one-line
    ``ValueError`` otherwise; :meth:`check_runnable` tells in advance.

    Parameters
    ----------
    text_encoder : {"bert"}, default="bert"
        Must be ``"bert"`` (kept for a uniform BERT-family interface).
    pretrained : str or None, default=None
        Local Hugging Face BERT checkpoint directory (never downloaded);
        required.
    beta_shift : float, default=1.0
        Scale of the allowed displacement relative to the embedding norm.
    dropout_prob : float, default=0.1
        Dropout after the gate's LayerNorm.
    """ + _COMMON_DOC + """
    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted private net (``net_.module_`` is the torch module).
    n_epochs_, best_epoch_ : int
        Epochs trained and the epoch whose weights were restored.
    train_loss_curve_, valid_loss_curve_ : list of float
        Per-epoch L1 losses.
    feature_dims_, seq_lens_ : dict
        Input shapes seen in ``fit``.
    n_params_ : int
        Trainable parameters, BERT included.

    Notes
    -----
    Defaults are the reference's CH-SIMS hyperparameters (MMSA
    ``src/MMSA/config/config_regression.json``, ``bert_mag``): batch 32,
    learning rate 5e-5, no weight decay, one Adam group for all parameters
    (BERT fine-tuned).  With CH-SIMS dimensions and
    bert-base-chinese the gate has 2,323,968 parameters and the head 769 on
    top of BERT's 102,267,648.  The gate's and head's weights get BERT's
    initialisation (normal, std ``initializer_range``, zero bias).  A
    ``modalities`` subset must contain ``"text"``; with one of audio/vision
    the gate uses that one only, with text alone it is skipped (plain BERT).

    References
    ----------
    .. [1] Rahman, W., et al. "Integrating multimodal information in large
       pretrained transformers." ACL 2020.

    Examples
    --------
    >>> from simsbench.estimators import BertMAG
    >>> BertMAG().check_runnable()
    (False, "BertMAG: text_encoder='bert' needs pretrained=PATH")
    """

    _features_mode = False

    _tiny_params = {"batch_size": 16, "max_epochs": 2, "n_threads": 1}
    _parameter_constraints = {"beta_shift": [positive_real()], "dropout_prob": [probability()]}
    _required_modalities = ("text",)

    def __init__(
        self,
        *,
        text_encoder="bert",
        pretrained=None,
        beta_shift=1.0,
        dropout_prob=0.1,
        modalities=("text", "audio", "vision"),
        batch_size=32,
        learning_rate=5e-5,
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
        self.text_encoder = text_encoder
        self.pretrained = pretrained
        self.beta_shift = beta_shift
        self.dropout_prob = dropout_prob
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

    def _require_bert(self):
        ok, reason = self.check_runnable()
        if not ok:
            raise ValueError(reason)
        if "text" not in self._modalities():
            raise ValueError("BertMAG: modalities must include 'text' (the gate sits in BERT)")

    def _prepare_inputs(self, X):
        self._require_bert()
        if "text_bert" not in X:
            raise ValueError("BertMAG needs X['text_bert'] (use dataset.X(split, text_bert=True))")
        tb = np.asarray(X["text_bert"])
        if tb.ndim != 3 or tb.shape[1] != 3:
            raise ValueError(f"BertMAG: X['text_bert'] must have shape (n, 3, L), got {tb.shape}")
        out = {"text_bert": tb}
        for m in self._modalities():
            if m != "text":
                out[m] = align_to_length(X[m], tb.shape[2])
        return out

    def _build_module(self, dims, seq_lens):
        self._require_bert()
        bert = load_bert(self.pretrained, type(self).__name__)
        return BertMAGModule(bert, dims, self.beta_shift, self.dropout_prob)
