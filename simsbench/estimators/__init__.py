"""simsbench estimators: scikit-learn regressors for multimodal sentiment.

Classical baselines import without torch; the deep estimators are loaded on
first access (``from simsbench.estimators import TFN``) and need the
``deep`` extra (torch + skorch).
"""

from __future__ import annotations

import importlib

from simsbench.estimators._classical import ModalityPooler, PooledSVR

# public name -> private module; deep ones are imported lazily (torch).
_LAZY = {
    "EFLSTM": "_ef_lstm",
    "LFDNN": "_lf_dnn",
    "TFN": "_tfn",
    "LMF": "_lmf",
    "MFN": "_mfn",
    "GraphMFN": "_mfn",
    "MulT": "_mult",
    "MLFDNN": "_mlf_dnn",
    "MTFN": "_tfn",
    "MLMF": "_lmf",
    "AVMC": "_avmc",
    "AVMCSemi": "_avmc",
    "MISA": "_misa",
    "MMIM": "_mmim",
    "SelfMM": "_self_mm",
    "BertMAG": "_bert_mag",
    "DeepRegressor": "_deep",
}

__all__ = ["ModalityPooler", "PooledSVR", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        try:
            module = importlib.import_module(f"simsbench.estimators.{_LAZY[name]}")
        except ModuleNotFoundError as exc:
            if exc.name in ("torch", "skorch"):
                raise ImportError(
                    f"simsbench.estimators.{name} needs torch and skorch: "
                    "pip install 'simsbench[deep]' (torch==2.13.0)"
                ) from exc
            raise
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'simsbench.estimators' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
