"""Turning a data spec string (CLI ``--data``, task files) into a dataset."""

from __future__ import annotations

import functools
import os

from simsbench.datasets._base import MultimodalDataset

SYNTHETIC_KINDS = ("sims", "simsv2")
DEFAULT_DATA = "synthetic:sims"


def parse_data_spec(spec: str) -> tuple[str, dict]:
    """Split ``"synthetic:sims"``, ``"synthetic:simsv2?n_unlabelled=500"`` or
    ``"PATH[+UNLABELLED_PATH]"`` into ``(kind, options)``.

    ``kind`` is ``"synthetic"`` or ``"file"``.  A path may itself contain
    '+': an existing file named by the whole spec is taken as it is, and
    ``PATH+UNLABELLED_PATH`` is cut where both sides are existing files.
    """
    if spec.startswith("synthetic:"):
        rest = spec[len("synthetic:"):]
        name, _, query = rest.partition("?")
        if name not in SYNTHETIC_KINDS:
            raise ValueError(
                f"unknown synthetic dataset {spec!r}; use one of "
                + ", ".join(f"synthetic:{k}" for k in SYNTHETIC_KINDS)
            )
        opts: dict = {"kind": name}
        for item in filter(None, query.split("&")):
            key, _, val = item.partition("=")
            if key not in ("random_state", "n_unlabelled"):
                raise ValueError(f"{spec!r}: unknown synthetic option {key!r}")
            try:
                opts[key] = int(val)
            except ValueError:
                raise ValueError(f"{spec!r}: option {key!r} needs an integer") from None
        return "synthetic", opts
    path, unlabelled = _split_files(spec)
    return "file", {"path": path, "unlabelled": unlabelled}


def _split_files(spec: str) -> tuple[str, str | None]:
    """``PATH`` or ``PATH+UNLABELLED_PATH``, where either path may contain '+'.

    An existing file named by the whole spec wins; otherwise the spec is cut
    at the '+' whose two sides are existing files (an error if several are);
    otherwise at the first '+' whose left side exists, or at the first '+'
    (the loader then names the missing file).
    """
    def file(p: str) -> bool:
        return os.path.isfile(os.path.expanduser(p))

    whole = os.path.expanduser(spec)
    if "+" not in spec or file(spec):
        return whole, None
    cuts = [(spec[:i], spec[i + 1:]) for i, c in enumerate(spec) if c == "+"]
    both = [(a, b) for a, b in cuts if file(a) and file(b)]
    if len(both) > 1:
        raise ValueError(
            f"{spec!r}: ambiguous: it can be read as "
            + " or as ".join(f"{a!r} + unlabelled {b!r}" for a, b in both)
            + "; rename or link one of the files"
        )
    left = [(a, b) for a, b in cuts if file(a)]
    path, unlabelled = (both or left or cuts)[0]
    return os.path.expanduser(path), os.path.expanduser(unlabelled) if unlabelled else None


@functools.lru_cache(maxsize=4)
def load_dataset(spec: str = DEFAULT_DATA) -> MultimodalDataset:
    """Load a dataset from a spec string (cached per process).

    ``synthetic:sims`` (the default) and ``synthetic:simsv2`` generate the
    embedded synthetic data; any other string is the path of an MMSA-format
    pickle, optionally followed by ``+PATH`` of the v2 unlabelled file.
    """
    from simsbench.datasets._mmsa import load_mmsa
    from simsbench.datasets._synthetic import make_synthetic

    kind, opts = parse_data_spec(spec)
    if kind == "synthetic":
        return make_synthetic(**opts)
    return load_mmsa(opts["path"], unlabelled=opts["unlabelled"])


def dataset_kind(spec: str = DEFAULT_DATA) -> str:
    """The kind (``"sims"``, ``"simsv2"``, ...) of the dataset ``spec`` names.

    Read from the spec for the synthetic data and from the feature cache's
    metadata for a file loaded before (no array is read); a file never
    loaded is loaded (and cached) once.
    """
    from simsbench.datasets._cache import cached_kind

    kind, opts = parse_data_spec(spec)
    if kind == "synthetic":
        return opts["kind"]
    paths = [opts["path"]] + ([opts["unlabelled"]] if opts["unlabelled"] else [])
    return cached_kind(paths) or load_dataset(spec).kind
