"""The errors of reading an MMSA feature file, and how their messages name places.

Every refusal, from the safe unpickler (:mod:`simsbench.datasets._safe_pickle`)
or from the validation of the arrays (:mod:`simsbench.datasets._mmsa`), is one
line, ``path: split/key: what is wrong``; :func:`fmt_key` and
:func:`key_path` write the ``split/key`` part and :func:`human` the sizes.
"""

from __future__ import annotations

import pickle


class MMSAFormatError(ValueError):
    """A feature file is not a valid MMSA-format pickle.

    The message is one line, ``path: split/key: what is wrong``.
    """


class UnsafePickleError(MMSAFormatError, pickle.UnpicklingError):
    """A pickle asked for something other than plain data (never executed)."""


def fmt_key(key: object) -> str:
    """A dict key as it appears in a ``split/key`` location."""
    if isinstance(key, str) and key.isprintable() and "/" not in key and 0 < len(key) <= 60:
        return key
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def human(n: float) -> str:
    """``n`` bytes for a message: ``"1.5 GiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def key_path(keys: list) -> str:
    """The ``split/key`` path of a value from the dict keys above it."""
    return "/".join(fmt_key(k) for k in keys) or "(top level)"
