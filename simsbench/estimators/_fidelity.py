"""Reference configuration and named corrections of the paper models.

Every paper model's **defaults reproduce the reference implementation**
(MMSA for the CH-SIMS models, github thuiar/ch-sims-v2 for AV-MC), defects
included, so that a table row reads as "the paper's model under the paper's
protocol".  Each place where simsbench knows a better behaviour is a
:class:`Correction`: a named set of plain constructor parameters with their
reference and corrected values.  ``get_params``, ``clone`` and the runner's
cache key therefore see which configuration ran.

An estimator class declares its corrections in a ``_corrections`` class
attribute; the corrections of its base classes are inherited (the training
shell's protocol corrections hold for every deep model) and a subclass
redeclaring a name replaces the inherited one.

>>> from simsbench.estimators import PooledSVR
>>> corrections(PooledSVR())
()

This module imports neither torch nor the estimators.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "VARIANTS",
    "Correction",
    "apply_variant",
    "corrected_params",
    "corrections",
    "parse_variant",
    "reference_params",
    "variant_of",
]

VARIANTS = ("reference", "corrected")
"""The two whole configurations: the reference implementation's, and every
correction applied.  ``"reference+NAME"`` applies one correction alone (an
ablation row of the corrections table)."""


@dataclass(frozen=True)
class Correction:
    """One deliberate difference from the reference implementation.

    Parameters
    ----------
    name : str
        Short identifier (``"pooling"``, ``"selection"``...), unique per
        estimator.
    summary : str
        One sentence: what the reference does and what the correction does.
    params : mapping of str to (reference, corrected)
        The constructor parameters the correction sets, each with its
        reference value (the class default) and its corrected value.
    """

    name: str
    summary: str
    params: Mapping[str, tuple[Any, Any]] = field(default_factory=dict, hash=False)

    def reference(self) -> dict[str, Any]:
        """The parameters' reference values."""
        return {p: ref for p, (ref, _) in self.params.items()}

    def corrected(self) -> dict[str, Any]:
        """The parameters' corrected values."""
        return {p: cor for p, (_, cor) in self.params.items()}


def _cls(estimator) -> type:
    return estimator if isinstance(estimator, type) else type(estimator)


def corrections(estimator) -> tuple[Correction, ...]:
    """The corrections an estimator (or estimator class) declares.

    Base-class corrections come first; a subclass redeclaring a name
    replaces the inherited one.  Corrections whose parameters the class does
    not have are left out (a shell correction only applies to the models
    whose constructor exposes it).
    """
    cls = _cls(estimator)
    found: dict[str, Correction] = {}
    for klass in reversed(cls.__mro__):
        for corr in klass.__dict__.get("_corrections", ()):
            found[corr.name] = corr
    try:
        names = set(getattr(cls, "_get_param_names")())  # noqa: B009 - any class
    except (AttributeError, RuntimeError):  # not a BaseEstimator
        names = None
    return tuple(c for c in found.values()
                 if names is None or all(p in names for p in c.params))


def _lookup(estimator, names: Iterable[str] | None) -> tuple[Correction, ...]:
    corrs = corrections(estimator)
    if names is None:
        return corrs
    names = list(names)
    known = {c.name: c for c in corrs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"{_cls(estimator).__name__} has no correction {unknown[0]!r}; "
            f"its corrections: {', '.join(known) or 'none'}"
        )
    return tuple(known[n] for n in names)


def reference_params(estimator) -> dict[str, Any]:
    """Parameters that give the reference configuration (every correction off)."""
    out: dict[str, Any] = {}
    for corr in corrections(estimator):
        out.update(corr.reference())
    return out


def corrected_params(estimator, names: Iterable[str] | None = None) -> dict[str, Any]:
    """Parameters that switch the named corrections on (all of them by default)."""
    out: dict[str, Any] = {}
    for corr in _lookup(estimator, names):
        out.update(corr.corrected())
    return out


def parse_variant(variant: str) -> tuple[str, tuple[str, ...]]:
    """Split ``"reference"``, ``"corrected"`` or ``"reference+A+B"``.

    Returns the base variant and the corrections added to it.
    """
    base, *added = str(variant).split("+")
    if base not in VARIANTS or (added and base != "reference") or any(not a for a in added):
        raise ValueError(
            f"variant must be 'reference', 'corrected' or 'reference+CORRECTION', got {variant!r}"
        )
    return base, tuple(added)


def apply_variant(estimator, variant: str):
    """Set an estimator's correction parameters for ``variant`` (in place).

    ``"reference"`` turns every correction off, ``"corrected"`` every one
    on, ``"reference+NAME"`` only NAME on.  Other parameters are left as
    they are.  Returns the estimator.
    """
    base, added = parse_variant(variant)
    params = reference_params(estimator)
    if base == "corrected":
        params.update(corrected_params(estimator))
    else:
        params.update(corrected_params(estimator, added))
    if params:
        estimator.set_params(**params)
    return estimator


def _same(a, b) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def variant_of(estimator) -> str:
    """Which configuration an estimator's parameters are.

    ``"reference"`` (every correction off, also for an estimator without
    corrections), ``"corrected"`` (every one on), ``"reference+A+B"`` (the
    named ones on), or ``"custom"`` (a correction parameter set to neither
    value).
    """
    params = estimator.get_params(deep=False)
    on: list[str] = []
    corrs = corrections(estimator)
    for corr in corrs:
        ref = all(_same(params[p], r) for p, (r, _) in corr.params.items())
        cor = all(_same(params[p], c) for p, (_, c) in corr.params.items())
        if cor and not ref:
            on.append(corr.name)
        elif not ref:
            return "custom"
    if not on:
        return "reference"
    if len(on) == len(corrs):
        return "corrected"
    return "+".join(["reference", *on])
