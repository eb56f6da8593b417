"""simsbench's estimator tags: the capabilities the protocols and checks read.

scikit-learn (>= 1.6) describes an estimator by the :class:`sklearn.utils.Tags`
dataclass its ``__sklearn_tags__`` returns.  simsbench subclasses it,
:class:`Tags`, adding one field, ``simsbench``, a :class:`SimsbenchTags`
(as scikit-learn's own ``input_tags``/``target_tags`` are nested
dataclasses).  scikit-learn's code reads a :class:`Tags` like its own (it
*is* one), and simsbench reads the capabilities with :func:`get_simsbench_tags`
instead of recognising models by their class names.

An estimator declares its capabilities in ``__sklearn_tags__``::

    def __sklearn_tags__(self):
        tags = as_simsbench_tags(super().__sklearn_tags__())
        tags.simsbench.semi_supervised = True
        return tags

A plain scikit-learn estimator (``Ridge`` from a spec, or a user's own) has
no ``simsbench`` field: :func:`get_simsbench_tags` then derives the tags from
what scikit-learn's tags and the estimator say: multi-task when
``target_tags.multi_output``, semi-supervised when its class sets
``_semi_supervised = True``, its ``modalities`` parameter when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sklearn.utils import Tags as _SklearnTags
from sklearn.utils import get_tags

from simsbench.datasets import MODALITIES

__all__ = ["SimsbenchTags", "Tags", "as_simsbench_tags", "get_simsbench_tags"]


@dataclass(slots=True)
class SimsbenchTags:
    """What a simsbench estimator can learn from and what it needs.

    Parameters
    ----------
    multi_task : bool, default=False
        It learns from the ``(n, 4)`` M/T/A/V target (one head per label);
        the protocols then give it the unimodal labels.
    semi_supervised : bool, default=False
        It learns from unlabelled rows (all-NaN ``y``): the protocols fit it on
        the training rows plus the dataset's unlabelled rows.
    needs_bert : bool, default=False
        It runs BERT on the tokens (``X["text_bert"]``) and needs a local
        checkpoint (``pretrained=PATH``); it cannot fit on features alone.
    modalities : tuple of str, default=("text", "audio", "vision")
        The modalities it reads from ``X``.
    """

    multi_task: bool = False
    semi_supervised: bool = False
    needs_bert: bool = False
    modalities: tuple[str, ...] = MODALITIES


@dataclass(slots=True)
class Tags(_SklearnTags):
    """:class:`sklearn.utils.Tags` with simsbench's :class:`SimsbenchTags`."""

    simsbench: SimsbenchTags = field(default_factory=SimsbenchTags)


def as_simsbench_tags(tags: _SklearnTags) -> Tags:
    """``tags`` as a :class:`Tags` (the same object when it already is one).

    Call it on ``super().__sklearn_tags__()`` in an estimator's
    ``__sklearn_tags__`` before setting ``tags.simsbench`` fields.
    """
    if isinstance(tags, Tags):
        return tags
    return Tags(**{f.name: getattr(tags, f.name) for f in fields(_SklearnTags)})


def declared_modalities(estimator) -> tuple[str, ...]:
    """The estimator's ``modalities`` parameter in canonical order (all three
    when it has none or the value is not a valid subset: tags never raise)."""
    mods = getattr(estimator, "modalities", MODALITIES)
    if isinstance(mods, str):
        mods = (mods,)
    try:
        chosen = set(mods)
    except TypeError:
        return MODALITIES
    out = tuple(m for m in MODALITIES if m in chosen)
    return out if out and len(out) == len(chosen) else MODALITIES


def get_simsbench_tags(estimator) -> SimsbenchTags:
    """The :class:`SimsbenchTags` of an estimator instance.

    Parameters
    ----------
    estimator : estimator instance
        A simsbench estimator, or any scikit-learn estimator (its tags are
        then derived from its scikit-learn tags).

    Returns
    -------
    tags : SimsbenchTags

    Examples
    --------
    >>> from simsbench.estimators import PooledSVR
    >>> from simsbench.utils.tags import get_simsbench_tags
    >>> get_simsbench_tags(PooledSVR(modalities=("audio", "text")))
    SimsbenchTags(multi_task=False, semi_supervised=False, needs_bert=False, modalities=('text', 'audio'))
    """  # noqa: E501
    try:
        tags = get_tags(estimator)
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator: no capability
        return SimsbenchTags(modalities=declared_modalities(estimator))
    own = getattr(tags, "simsbench", None)
    if isinstance(own, SimsbenchTags):
        return own
    return SimsbenchTags(
        multi_task=bool(tags.target_tags.multi_output),
        semi_supervised=bool(getattr(type(estimator), "_semi_supervised", False)),
        modalities=declared_modalities(estimator),
    )
