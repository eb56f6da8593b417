"""Run records on disk: one JSON file per run, written atomically.

Layout under the results directory (``results/`` by default)::

    runs/<data-slug>/<key>.json       one record per (estimator, task, seed, data, version)
    runs/<data-slug>/_data-<fp>.json  the data's split table and statistics
    logs/<key>.log                    the run's captured output
    tables/<data-slug>/<table>.md|.tex|.csv

A record is a flat JSON object (see :func:`new_record`).  Its ``status`` is
``"ok"`` (with ``scores``), ``"skipped"`` (the protocol or the estimator
said why), ``"error"`` (the run raised; one-line ``reason``, traceback in the
log) or ``"unavailable"`` (the class cannot be imported).  Only ``ok`` and
``skipped`` runs count as finished; the others are retried by the next
invocation.  A file that is unreadable, malformed or holds another run's
record (its ``key`` is not the file name) is skipped with a
:class:`RecordWarning`, and its run recomputed.  Nothing here imports torch.
"""

from __future__ import annotations

import datetime as _dt
import json
import numbers
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FINISHED",
    "RECORD_SCHEMA",
    "STATUSES",
    "RecordWarning",
    "aggregate",
    "atomic_write_text",
    "check_record",
    "data_slug",
    "new_record",
    "read_data_record",
    "read_record",
    "read_records",
    "record_path",
    "versions",
    "write_data_record",
    "write_record",
]

RECORD_SCHEMA = 1
FINISHED = ("ok", "skipped")
"""Statuses of finished runs (never recomputed without ``--force``)."""
STATUSES = ("ok", "skipped", "error", "unavailable")
"""Every status a record can have."""


class RecordWarning(UserWarning):
    """A record file was skipped: unreadable, malformed, or not the run its
    file name (its key) says.  The run is recomputed by the next ``run``."""


def data_slug(data_spec: str) -> str:
    """A folder name for a data spec: ``synthetic:sims`` -> ``synthetic-sims``.

    A file path gives its file name without extension (plus that of the
    unlabelled file).
    """
    if data_spec.startswith("synthetic:"):
        text = data_spec.replace(":", "-").replace("?", "-").replace("&", "-")
    else:
        parts = [Path(os.path.expanduser(p)).stem for p in data_spec.split("+") if p]
        text = "+".join(parts) or "data"
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", text)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    A reader (or a crash) never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def versions(deep: bool = True) -> dict[str, str]:
    """Versions of simsbench, Python and the numeric stack (and, with
    ``deep``, of torch/skorch/transformers when they are loaded)."""
    import platform

    import sklearn

    from simsbench._version import __version__

    out = {
        "simsbench": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }
    for mod in ("torch", "skorch", "transformers") if deep else ():
        if mod in sys.modules:
            out[mod] = getattr(sys.modules[mod], "__version__", "?")
    return out


def new_record(**fields: Any) -> dict[str, Any]:
    """A record with the schema version and creation time filled in."""
    rec: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "status": "ok",
        "reason": "",
        "scores": {},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    rec.update(fields)
    return rec


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    return repr(obj)


def _dumps(obj) -> str:
    # NaN is written as null: valid JSON, read back as None.
    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, Mapping):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), indent=1, sort_keys=True, default=_json_default) + "\n"


def record_path(results_dir: str | os.PathLike, slug: str, key: str) -> Path:
    return Path(results_dir) / "runs" / slug / f"{key}.json"


def write_record(results_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write one run record atomically; returns its path."""
    path = record_path(results_dir, record["data"]["slug"], record["key"])
    return atomic_write_text(path, _dumps(record))


def check_record(rec: Any) -> str:
    """What is wrong with a record's structure (``""`` when nothing is).

    Checks what the runner and the tables read: the identity fields
    (``key``, ``estimator``, ``task``, ``seed``, ``mode``, ``data`` with its
    ``fingerprint`` and ``slug``), the ``status`` and ``scores`` (a mapping of
    metric names to numbers or null), ``created`` and ``versions``.
    """
    if not isinstance(rec, Mapping):
        return f"not a JSON object but {type(rec).__name__}"
    if rec.get("schema") != RECORD_SCHEMA:
        return f"schema {rec.get('schema')!r}, this simsbench reads schema {RECORD_SCHEMA}"
    for name in ("key", "estimator", "task", "mode", "created"):
        if not isinstance(rec.get(name), str) or not rec.get(name):
            return f"{name!r} is missing or not a non-empty string"
    seed = rec.get("seed")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        return f"'seed' is missing or not an integer: {seed!r}"
    if rec.get("status") not in STATUSES:
        return f"'status' is {rec.get('status')!r}, not one of {', '.join(STATUSES)}"
    data = rec.get("data")
    if not isinstance(data, Mapping) or not all(
            isinstance(data.get(k), str) for k in ("fingerprint", "slug")):
        return "'data' is missing or has no 'fingerprint'/'slug'"
    scores = rec.get("scores")
    if not isinstance(scores, Mapping):
        return f"'scores' is not a mapping but {type(scores).__name__}"
    for metric, value in scores.items():
        if value is not None and (not isinstance(value, numbers.Real)
                                  or isinstance(value, bool)):
            return f"score {metric!r} is not a number: {value!r}"
    for name in ("versions", "params"):
        if name in rec and not isinstance(rec[name], Mapping):
            return f"{name!r} is not a mapping"
    for name in ("reason", "estimator_label"):
        if name in rec and not isinstance(rec[name], str):
            return f"{name!r} is not a string"
    return ""


def _skip_warning(path, problem: str) -> None:
    warnings.warn(f"{path}: {problem}; record ignored (the run is recomputed by the next "
                  "'simsbench run')", RecordWarning, stacklevel=3)


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """One record, or None (with a :class:`RecordWarning`) when the file is
    unreadable, malformed (:func:`check_record`), or holds another run's
    record (its ``key`` is not the file name)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _skip_warning(path, f"unreadable ({type(exc).__name__}: {exc})")
        return None
    problem = check_record(rec)
    if not problem and rec["key"] != path.stem:
        problem = f"holds the record of run {rec['key']}, not of run {path.stem}"
    if problem:
        _skip_warning(path, problem)
        return None
    return rec


def read_records(results_dir: str | os.PathLike, slug: str | None = None) -> list[dict]:
    """All run records (of one data slug, or of every slug); damaged or
    misplaced files are skipped with a :class:`RecordWarning`."""
    base = Path(results_dir) / "runs"
    dirs = [base / slug] if slug else sorted(p for p in base.glob("*") if p.is_dir())
    out = []
    for d in dirs:
        for path in sorted(d.glob("*.json")):
            if path.name.startswith("_"):
                continue
            rec = read_record(path)
            if rec is not None:
                out.append(rec)
    return out


def write_data_record(results_dir: str | os.PathLike, slug: str, info: Mapping) -> Path:
    path = Path(results_dir) / "runs" / slug / f"_data-{info['fingerprint'][:16]}.json"
    return atomic_write_text(path, _dumps(dict(info)))


def read_data_record(results_dir: str | os.PathLike, slug: str,
                     fingerprint: str | None = None) -> dict | None:
    """The stored data description of ``slug`` (the newest, or the one with
    ``fingerprint``)."""
    d = Path(results_dir) / "runs" / slug
    best, best_time = None, ""
    for path in d.glob("_data-*.json"):
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if fingerprint and info.get("fingerprint") != fingerprint:
            continue
        if info.get("created", "") >= best_time:
            best, best_time = info, info.get("created", "")
    return best


def aggregate(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, population standard deviation (ddof=0) and count of finite values."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    return float(arr.mean()), float(arr.std(ddof=0)), int(arr.size)
