"""The data record: what the records and tables say about their data.

Every grid stores one per data fingerprint,
``<results>/runs/<data>/_data-<fingerprint>.json``: the data's description,
fingerprint and kind, its split table (CH-SIMS Table 3) and its label
statistics (CH-SIMS Figure 2), so that tables and figures render from the
results directory without loading the data again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simsbench.results import data_slug, new_record, read_data_record, versions, write_data_record

__all__ = ["check_data", "data_info_of", "data_record", "is_synthetic", "store_data_record"]


def is_synthetic(info) -> bool:
    """Whether a data record (or a record's data info) describes synthetic data.

    Tables and figures carry a ``SIMULATED DATA`` banner when it does.
    """
    return bool(info.get("synthetic")) or str(info.get("spec", "")).startswith("synthetic:")


def check_data(data: str) -> None:
    """Fail early (one line) on a data spec naming a feature file that does
    not exist.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        On a malformed spec (:func:`~simsbench.datasets.parse_data_spec`).
    """
    from simsbench.datasets import parse_data_spec

    kind, opts = parse_data_spec(data)
    if kind == "file":
        for path in (opts["path"], opts["unlabelled"]):
            if path and not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such feature file")


def data_info_of(dataset, data_spec: str) -> dict[str, Any]:
    """What a record says about its data."""
    return {
        "spec": data_spec,
        "slug": data_slug(data_spec),
        "name": dataset.name,
        "kind": dataset.kind,
        "fingerprint": dataset.fingerprint,
        "description": dataset.description,
        "synthetic": data_spec.startswith("synthetic:"),
    }


def store_data_record(results_dir, dataset, data_spec: str) -> dict:
    """Save the data's description, split table and label statistics;
    returns the record as stored (as :func:`data_record` reads it back)."""
    from simsbench.datasets import label_statistics, split_table

    info = data_info_of(dataset, data_spec)
    split = split_table(dataset)
    info["split_table"] = {
        "columns": list(split.columns), "index": list(split.index),
        "values": split.values.tolist(),
    }
    try:
        stats = label_statistics(dataset)
        info["label_histograms"] = {
            "columns": list(stats["histograms"].columns),
            "index": list(stats["histograms"].index),
            "values": stats["histograms"].values.tolist(),
        }
        info["label_difference"] = {
            "labels": list(stats["difference"].index),
            "values": stats["difference"].values.tolist(),
        }
    except ValueError:
        pass
    info["summary"] = dataset.summary()
    info["created"] = new_record()["created"]
    info["versions"] = versions(deep=False)  # the data does not depend on torch
    path = write_data_record(results_dir, info["slug"], info)
    return json.loads(path.read_text(encoding="utf-8"))


def data_record(data: str, results_dir="results") -> dict:
    """The newest stored data record of ``data``; when there is none, the
    data is loaded and its record stored."""
    info = read_data_record(results_dir, data_slug(data))
    if info is None:
        from simsbench.datasets import load_dataset

        check_data(data)
        info = store_data_record(results_dir, load_dataset(data), data)
    return info
