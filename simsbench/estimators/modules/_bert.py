"""Text-encoder code shared by the BERT family (MISA, MMIM, Self-MM, BERT-MAG).

Two text-encoder modes (estimator parameter ``text_encoder``):

* ``"features"``: the precomputed 768-d BERT token features ``X["text"]``
  (position 0 = [CLS]) replace the BERT forward pass.  The pooling that the
  reference applies to BERT's last hidden states ([CLS] or the masked mean) is
  done once, in numpy, when the inputs are prepared.
* ``"bert"``: a local Hugging Face BERT checkpoint (``pretrained=PATH``) is
  loaded with ``local_files_only=True`` and fine-tuned, fed from
  ``X["text_bert"]`` (ids, mask and segment ids as floats).

``transformers`` is imported only in ``"bert"`` mode, inside functions.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from simsbench.estimators._constraints import options, validate_params
from simsbench.estimators._inputs import lengths_of, masked_mean

__all__ = [
    "CLS_FEATURES_DOC",
    "FITTED_SHAPES_DOC",
    "TEXT_ENCODER_DOC",
    "TEXT_ENCODERS",
    "encode_modalities",
    "BertTextEncoder",
    "BertFamilyMixin",
    "load_bert",
    "bert_param_groups",
]

TEXT_ENCODERS = ("features", "bert")

#: Docstring text of the BERT family: the features variant of the models that
#: read BERT's [CLS] vector (MMIM, Self-MM) ...
CLS_FEATURES_DOC = """
    This is the **features variant** by default (``text_encoder="features"``):
    the precomputed BERT token features' [CLS] vector (``X["text"][:, 0]``)
    stands in for BERT's forward pass; everything after BERT is the reference
    architecture.  ``text_encoder="bert"`` with ``pretrained=PATH`` fine-tunes
    a local BERT checkpoint on ``X["text_bert"]`` instead.
"""
#: ... the ``text_encoder`` and ``pretrained`` parameters (the first two of
#: the Parameters section) ...
TEXT_ENCODER_DOC = """
    Parameters
    ----------
    text_encoder : {"features", "bert"}, default="features"
        Where the text vector comes from (see above).
    pretrained : str or None, default=None
        Local Hugging Face BERT checkpoint directory (``"bert"`` mode only;
        never downloaded)."""
#: ... and the last fitted attributes.
FITTED_SHAPES_DOC = """
    feature_dims_, seq_lens_ : dict
        Input shapes seen in ``fit``.
    n_params_ : int
        Trainable parameters (BERT included in ``"bert"`` mode)."""


def load_bert(path, owner: str):
    """Load a ``transformers.BertModel`` from a local checkpoint directory.

    Never downloads.  A missing or unreadable path is a one-line ValueError.
    """
    if path is None:
        raise ValueError(
            f"{owner}: text_encoder='bert' needs pretrained=PATH, a local Hugging Face "
            "BERT checkpoint directory (e.g. bert-base-chinese saved with save_pretrained)"
        )
    path = os.fspath(path)
    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "config.json")):
        raise ValueError(
            f"{owner}: pretrained={path!r} is not a local BERT checkpoint directory "
            "(no config.json there)"
        )
    try:
        from transformers import BertModel
    except ImportError as exc:  # pragma: no cover - transformers is installed in CI
        raise ImportError(f"{owner}: text_encoder='bert' needs the transformers package") from exc
    try:
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            model = BertModel.from_pretrained(path, local_files_only=True)
        finally:
            hf_logging.set_verbosity(verbosity)
            if bar:
                hf_logging.enable_progress_bar()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(
            f"{owner}: cannot load a BERT checkpoint from pretrained={path!r}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    return model


class BertTextEncoder(nn.Module):
    """A fine-tuned BERT: ``text_bert`` (B, 3, L) -> last hidden states (B, L, H)."""

    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert
        self.hidden_size = int(bert.config.hidden_size)

    @staticmethod
    def split(text_bert: torch.Tensor):
        ids = text_bert[:, 0, :].long()
        mask = text_bert[:, 1, :]
        segments = text_bert[:, 2, :].long()
        return ids, mask, segments

    def forward(self, text_bert: torch.Tensor) -> torch.Tensor:
        ids, mask, segments = self.split(text_bert)
        out = self.bert(input_ids=ids, attention_mask=mask.long(), token_type_ids=segments)
        return out.last_hidden_state


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[CLS] (position 0) or the mean over the masked (real) tokens."""
    if pooling == "cls":
        return hidden[:, 0, :]
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def encode_modalities(module, encoders: dict, pooling: str, text=None, text_bert=None,
                      audio=None, vision=None, audio_lengths=None, vision_lengths=None,
                      **kw) -> dict:
    """``{modality: vector}`` for the modalities ``module`` uses.

    Text: BERT's pooled output (``module.text_encoder``, ``pooling`` as in
    :func:`pool_tokens`) when ``text_bert`` is given, else the precomputed
    ``text`` vector.  Then, in the order of ``encoders`` (``{modality:
    attribute name}``), each sequence modality through ``module``'s encoder
    ``encoder(x, lengths)``.
    """
    inputs = {"audio": (audio, audio_lengths), "vision": (vision, vision_lengths)}
    reps = {}
    if "text" in module.modalities:
        if text_bert is not None:
            reps["text"] = pool_tokens(module.text_encoder(text_bert), text_bert[:, 1], pooling)
        else:
            reps["text"] = text
    for m, name in encoders.items():
        if m in module.modalities:
            reps[m] = getattr(module, name)(*inputs[m])
    return reps


def bert_param_groups(lr: float, weight_decay: float, prefix: str = "text_encoder.",
                      no_decay: bool = True) -> list:
    """skorch ``param_groups`` for the BERT weights (first match wins).

    With ``no_decay`` BERT's biases and LayerNorm parameters get no weight
    decay (Self-MM's grouping).
    """
    groups = []
    if no_decay:
        groups += [
            (f"{prefix}*LayerNorm*", {"lr": lr, "weight_decay": 0.0}),
            (f"{prefix}*bias", {"lr": lr, "weight_decay": 0.0}),
        ]
    groups.append((f"{prefix}*", {"lr": lr, "weight_decay": weight_decay}))
    return groups


class BertFamilyMixin:
    """Text-encoder handling shared by the BERT-family estimators.

    Subclasses set ``_text_pooling`` (``"cls"`` or ``"mean"``) and have the
    ``text_encoder`` and ``pretrained`` parameters.
    """

    _text_pooling = "cls"
    _features_mode = True  # False: the model exists only in "bert" mode

    if TYPE_CHECKING:  # provided by the estimator the mixin is combined with
        text_encoder: str
        pretrained: str | None

        def _modalities(self) -> tuple[str, ...]: ...

    _parameter_constraints = {
        "text_encoder": [options(*TEXT_ENCODERS)],
        "pretrained": [str, os.PathLike, None],
    }

    def _uses_bert(self) -> bool:
        return "text" in self._modalities() and self.text_encoder == "bert"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            tags.simsbench.needs_bert = self._uses_bert()
        except ValueError:  # invalid parameters: fit reports them
            tags.simsbench.needs_bert = self.text_encoder == "bert"
        return tags

    def _text_encoder_module(self, dims: dict):
        """(BertTextEncoder or None, text width)."""
        if "text" not in dims:
            return None, 0
        if self._uses_bert():
            enc = BertTextEncoder(load_bert(self.pretrained, type(self).__name__))
            return enc, enc.hidden_size
        return None, int(dims["text"])

    def _text_inputs(self, X) -> dict:
        """Model inputs of the text modality (numpy)."""
        if "text" not in self._modalities():
            return {}
        if self._uses_bert():
            if "text_bert" not in X:
                raise ValueError(
                    f"{type(self).__name__}: text_encoder='bert' needs X['text_bert'] "
                    "(use dataset.X(split, text_bert=True))"
                )
            tb = np.asarray(X["text_bert"])
            if tb.ndim != 3 or tb.shape[1] != 3:
                raise ValueError(
                    f"{type(self).__name__}: X['text_bert'] must have shape (n, 3, L), "
                    f"got {tb.shape}"
                )
            return {"text_bert": tb}
        text = np.asarray(X["text"], dtype=np.float32)
        if self._text_pooling == "cls":
            return {"text": text[:, 0, :]}
        return {"text": masked_mean(text, lengths_of(X, "text"))}

    def check_runnable(self, dataset=None) -> tuple[bool, str]:
        """Whether ``fit`` can run with these parameters (and on ``dataset``).

        Parameters
        ----------
        dataset : MultimodalDataset, default=None
            When given, also checks that it has the inputs the model needs
            (``text_bert`` in ``"bert"`` mode).

        Returns
        -------
        ok : bool
        reason : str
            Empty when ``ok``; otherwise one line saying why not.
        """
        name = type(self).__name__
        try:  # (the other parameters are checked by ``fit``: a bad one fails the run)
            validate_params(self, ("text_encoder", "pretrained", "modalities"))
            mods = self._modalities()
        except ValueError as exc:
            return False, str(exc)
        mode = self.text_encoder
        if not self._features_mode and mode != "bert":
            return False, (f"{name} exists only with text_encoder='bert' and a local BERT "
                           "checkpoint (pretrained=PATH): its gate sits inside BERT")
        if mode == "bert" and "text" in mods:
            path = self.pretrained
            if path is None:
                return False, f"{name}: text_encoder='bert' needs pretrained=PATH"
            if not os.path.isfile(os.path.join(os.fspath(path), "config.json")):
                return False, f"{name}: pretrained={path!r} is not a local BERT checkpoint"
            try:
                import transformers  # noqa: F401
            except ImportError:
                return False, f"{name}: text_encoder='bert' needs the transformers package"
            if dataset is not None:
                try:
                    split = dataset["train"]
                except KeyError:
                    split = None
                if split is not None and getattr(split, "text_bert", None) is None:
                    return False, f"{name}: dataset {dataset.name} has no text_bert (BERT ids)"
        return True, ""
