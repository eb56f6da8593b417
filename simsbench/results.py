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
invocation.  Nothing here imports torch.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FINISHED",
    "RECORD_SCHEMA",
    "aggregate",
    "atomic_write_text",
    "data_slug",
    "new_record",
    "read_data_record",
    "read_records",
    "record_path",
    "versions",
    "write_data_record",
    "write_record",
]

RECORD_SCHEMA = 1
FINISHED = ("ok", "skipped")
"""Statuses of finished runs (never recomputed without ``--force``)."""


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


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """One record, or None when the file is unreadable (then it is ignored)."""
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("schema") != RECORD_SCHEMA:
        return None
    return rec


def read_records(results_dir: str | os.PathLike, slug: str | None = None) -> list[dict]:
    """All run records (of one data slug, or of every slug)."""
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
