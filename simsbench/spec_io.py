"""What every spec file shares: the error type, TOML reading, key checks
and the canonical form of parameter values (for cache keys)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SpecError", "canonical", "check_keys", "read_toml", "spec_hash", "tupled"]


class SpecError(ValueError):
    """A spec file is malformed; the message names the file and the key."""


def tupled(value):
    """TOML lists as tuples (the estimators' sequence hyperparameters are tuples)."""
    if isinstance(value, list):
        return tuple(tupled(v) for v in value)
    if isinstance(value, dict):
        return {k: tupled(v) for k, v in value.items()}
    return value


def canonical(value) -> Any:
    """A JSON-able, order-stable form of a parameter value (for cache keys)."""
    import numbers

    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        # 1 and 1.0 are the same hyperparameter value.
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    if isinstance(value, type):
        return f"{value.__module__}:{value.__qualname__}"
    if hasattr(value, "get_params"):  # a nested estimator
        return {
            "__class__": f"{type(value).__module__}:{type(value).__qualname__}",
            "params": canonical(value.get_params(deep=False)),
        }
    if callable(value):
        return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', repr(value))}"
    return repr(value)


def spec_hash(obj) -> str:
    """SHA-256 of the canonical JSON form of ``obj``."""
    text = json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None


def check_keys(path, data: Mapping, allowed: set[str], where: str = "") -> None:
    for key in data:
        if key not in allowed:
            loc = f" in [{where}]" if where else ""
            raise SpecError(
                f"{path}: unknown key {key!r}{loc}; allowed: {', '.join(sorted(allowed))}"
            )
