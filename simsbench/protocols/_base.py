"""The protocol base class and its registry."""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from simsbench.datasets import (
    LABELS,
    MODALITIES,
    UNLABELLED,
    MultimodalDataset,
    MultimodalX,
)
from simsbench.metrics import score_all

__all__ = ["PROTOCOLS", "FitData", "Protocol", "ProtocolError", "get_protocol"]

PROTOCOLS: dict[str, type[Protocol]] = {}
"""Protocol classes by name (filled by ``Protocol.__init_subclass__``)."""


class ProtocolError(ValueError):
    """A protocol was given parameters it cannot use."""


@dataclass
class FitData:
    """What one run fits on and is scored on."""

    X_train: MultimodalX
    y_train: np.ndarray
    X_valid: MultimodalX | None
    y_valid: np.ndarray | None
    X_test: MultimodalX
    y_test: np.ndarray
    score_label: str = "M"


def _as_tuple(values: str | Sequence[str] | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        return (values,)
    return tuple(values)


def estimator_params(estimator) -> dict[str, Any]:
    try:
        return estimator.get_params(deep=False)
    except Exception:  # noqa: BLE001 - not an sklearn estimator
        return {}


def is_multitask(estimator) -> bool:
    """Whether ``estimator`` learns from the ``(n, 4)`` M/T/A/V target (its
    ``multi_task`` tag, :func:`simsbench.utils.tags.get_simsbench_tags`)."""
    from simsbench.utils.tags import get_simsbench_tags

    return get_simsbench_tags(estimator).multi_task


def uses_unlabelled(estimator) -> bool:
    """Whether ``estimator`` learns from unlabelled rows (all-NaN ``y``): its
    ``semi_supervised`` tag."""
    from simsbench.utils.tags import get_simsbench_tags

    return get_simsbench_tags(estimator).semi_supervised


def accepts_validation(estimator) -> bool:
    """Whether ``estimator.fit`` takes ``X_valid``/``y_valid``."""
    try:
        sig = inspect.signature(estimator.fit)
    except (TypeError, ValueError):
        return False
    return "X_valid" in sig.parameters and "y_valid" in sig.parameters


def estimator_check(estimator, dataset: MultimodalDataset) -> tuple[bool, str]:
    """Ask an estimator whether it can run on ``dataset``.

    Estimators may define ``check_runnable(dataset) -> (runnable, reason)``
    (for instance a BERT model without a local checkpoint).  Returns
    ``(skip, reason)``.
    """
    check = getattr(estimator, "check_runnable", None)
    if check is None:
        return False, ""
    try:
        out = check(dataset)
    except Exception as exc:  # noqa: BLE001 - the reason is the message
        return True, _one_line(exc)
    if isinstance(out, tuple):
        ok, reason = (bool(out[0]), str(out[1]) if len(out) > 1 else "")
    else:
        ok, reason = bool(out), ""
    return (not ok), (reason or f"{type(estimator).__name__} cannot run on this data")


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = msg[0] if msg else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Protocol:
    """Base class of the evaluation protocols.

    A protocol is a frozen dataclass whose fields are task TOML keys
    (``modalities``, ``labels``, ``variant``): :meth:`from_task` builds it
    from a task's keys, taking the fields it declares.  It has a ``name``
    (its registry key and the TOML ``protocol`` value), ``params`` (a plain
    dict, part of every run's cache key), :meth:`skip`, :meth:`configure`
    (the estimator's parameters it fixes) and :meth:`fit_data` (which arrays
    the estimator is fitted and scored on).  :meth:`evaluate` runs one fit
    and one test score.

    Subclasses register themselves under ``name``.
    """

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            PROTOCOLS[cls.name] = cls

    @classmethod
    def from_task(cls, keys: Mapping[str, Any]) -> Protocol:
        """The protocol of a task: its fields read from the task's TOML ``keys``
        (keys that are not fields, or are None, are left to the defaults)."""
        return cls(**{f.name: keys[f.name] for f in fields(cls)  # type: ignore[arg-type]
                      if keys.get(f.name) is not None})

    # -- description ---------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """What a run's cache key records of this protocol."""
        return {}

    @property
    def label(self) -> str:
        """How a table row names this protocol's setting (a cell of a task grid)."""
        return self.describe()

    def describe(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({inner})"

    def __repr__(self) -> str:
        return self.describe()

    # -- hooks -----------------------------------------------------------------
    def required_labels(self, estimator) -> tuple[str, ...]:
        """Labels the dataset must have for this protocol and estimator."""
        return ("M",)

    def estimator_overrides(self, estimator) -> dict[str, Any]:
        """Parameters this protocol sets on the estimator."""
        return {}

    def input_modalities(self) -> tuple[str, ...]:
        """Modalities put into ``X``."""
        return MODALITIES

    def train_labels(self, estimator) -> str | tuple[str, ...]:
        return ("M", "T", "A", "V") if is_multitask(estimator) else "M"

    def score_label(self) -> str:
        return "M"

    # -- public API ------------------------------------------------------------
    def skip(self, estimator, dataset: MultimodalDataset) -> tuple[bool, str]:
        """Whether this protocol cannot run ``estimator`` on ``dataset``.

        Returns
        -------
        skip : bool
        reason : str
            Why, in one line (empty when ``skip`` is False).
        """
        have = set(dataset.available_labels)
        missing = [lab for lab in self.required_labels(estimator) if lab not in have]
        if missing:
            return True, (
                f"{self.name} needs label(s) {', '.join(missing)}; {dataset.name} has only "
                f"{', '.join(dataset.available_labels) or 'none'}"
            )
        params = estimator_params(estimator)
        for key in self.estimator_overrides(estimator):
            if key not in params:
                return True, (
                    f"{type(estimator).__name__} has no parameter {key!r}, which the "
                    f"{self.name} protocol sets"
                )
        return estimator_check(estimator, dataset)

    def configure(self, estimator):
        """Return ``estimator`` with the protocol's parameters set (in place)."""
        overrides = self.estimator_overrides(estimator)
        if overrides:
            estimator.set_params(**overrides)
        return estimator

    def fit_data(self, estimator, dataset: MultimodalDataset) -> FitData:
        """The arrays of one run: train (+ unlabelled), valid and test."""
        mods = self.input_modalities()
        bert = "text" in mods and dataset["train"].text_bert is not None
        labels = self.train_labels(estimator)

        def X(split):
            return dataset.X(split, mods, text_bert=bert)

        X_train, y_train = X("train"), dataset.y("train", labels)
        if uses_unlabelled(estimator) and dataset.has_unlabelled:
            X_u = dataset.X(
                UNLABELLED, mods,
                text_bert=bert and dataset[UNLABELLED].text_bert is not None,
            )
            keys = [k for k in X_train if k in X_u]
            X_train = MultimodalX(
                **{k: np.concatenate([X_train[k], X_u[k]]) for k in keys}
            )
            y_u = dataset.y(UNLABELLED, labels)
            y_train = np.concatenate([y_train, y_u])
        score = self.score_label()
        return FitData(
            X_train=X_train,
            y_train=y_train,
            X_valid=X("valid"),
            y_valid=dataset.y("valid", labels),
            X_test=X("test"),
            y_test=dataset.y("test", score),
            score_label=score,
        )

    def evaluate(
        self,
        estimator,
        dataset: MultimodalDataset,
        metrics: Sequence[str],
    ) -> dict[str, Any]:
        """Configure, fit and score ``estimator``; returns metrics and timings.

        The estimator is fitted on train (with valid as ``X_valid``/``y_valid``
        when its ``fit`` accepts them) and scored on test with ``metrics``
        (``"metrics"``) and on the validation split (``"valid_scores"``, what
        ``simsbench tune`` selects on).  A test split without labels (any
        NaN) gives NaN test scores and ``"test_labels": "missing"``.
        """
        self.configure(estimator)
        data = self.fit_data(estimator, dataset)
        t0 = time.perf_counter()
        if accepts_validation(estimator):
            estimator.fit(data.X_train, data.y_train,
                          X_valid=data.X_valid, y_valid=data.y_valid)
        else:
            y = data.y_train
            keep = ~np.isnan(y if y.ndim == 1 else y[:, 0])
            estimator.fit(data.X_train[keep], y[keep])
        fit_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_pred = np.asarray(estimator.predict(data.X_test), dtype=np.float64)
        predict_time = time.perf_counter() - t0
        if y_pred.ndim == 2:
            y_pred = y_pred[:, 0]
        info: dict[str, Any] = {
            "fit_time": fit_time,
            "predict_time": predict_time,
            "n_train": int(len(data.y_train)),
            "n_test": int(len(data.y_test)),
            "score_label": data.score_label,
        }
        if np.all(np.isfinite(data.y_test)):
            info["metrics"] = score_all(data.y_test, y_pred, metrics)
        else:
            info["metrics"] = {m: float("nan") for m in metrics}
            info["test_labels"] = "missing"
        if data.X_valid is not None:
            y_valid = dataset.y("valid", data.score_label)
            p_valid = np.asarray(estimator.predict(data.X_valid), dtype=np.float64)
            info["valid_scores"] = score_all(
                y_valid, p_valid[:, 0] if p_valid.ndim == 2 else p_valid, metrics)
            info["n_valid"] = int(len(y_valid))
        for attr in ("n_epochs_", "best_epoch_", "n_params_"):
            if hasattr(estimator, attr):
                info[attr.rstrip("_")] = int(getattr(estimator, attr))
        return info


def get_protocol(name: str, **params) -> Protocol:
    """Build a protocol from its registry name and parameters."""
    try:
        cls = PROTOCOLS[name]
    except KeyError:
        raise ProtocolError(
            f"unknown protocol {name!r}; choose from {sorted(PROTOCOLS)}"
        ) from None
    return cls(**params)


def check_modalities(values, what: str = "modalities") -> tuple[str, ...]:
    mods = _as_tuple(values)
    bad = [m for m in mods if m not in MODALITIES]
    if bad or not mods or len(set(mods)) != len(mods):
        raise ProtocolError(
            f"{what} must be distinct names from {list(MODALITIES)}, got {list(mods)}"
        )
    return tuple(m for m in MODALITIES if m in mods)


def check_labels(values, what: str = "labels") -> tuple[str, ...]:
    labs = _as_tuple(values)
    bad = [lab for lab in labs if lab not in LABELS]
    if bad or len(set(labs)) != len(labs):
        raise ProtocolError(f"{what} must be distinct names from {list(LABELS)}, got {list(labs)}")
    return labs
