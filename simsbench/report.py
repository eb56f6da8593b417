"""``simsbench report``: one self-contained HTML file from cached records.

The page holds, for each data set with records under the results directory:
its provenance (description, spec, fingerprint, synthetic or the real file),
every table that has runs (with its notes, Δ-row tests and, with ``ci``, 95 %
confidence intervals), the figures of :mod:`simsbench.figures` drawn from
the same records (label distributions, per-seed distributions, the
critical-difference diagram, learning curves, and the t-SNE figure when
``simsbench figure tsne`` has stored one), the versions, and a red
``SIMULATED DATA`` banner wherever the data is synthetic.  Figures are
inline SVG; the page loads nothing (its Content-Security-Policy forbids any
request).  Nothing is trained; torch is not imported.  Uses jinja2 (the
``report`` extra) and matplotlib (the ``figures`` extra).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from simsbench._version import __version__
from simsbench.results import (
    atomic_write_text,
    data_slug,
    read_data_record,
    read_records,
    versions,
)
from simsbench.tables import (
    build_table,
    get_table,
    table_from_results,
    table_grid,
    tables_for_kind,
)

__all__ = ["build_report", "report_sections", "write_report"]

def _jinja():
    try:
        import jinja2
    except ImportError:
        raise ImportError("the report needs jinja2: pip install 'simsbench[report]'") from None
    return jinja2


def _scoped_svg(svg: str, prefix: str) -> str:
    """Prefix every id of an inline SVG, so several can share one page."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if not ids:
        return svg
    pattern = re.compile(r'(\bid="|url\(#|href="#)(' + "|".join(
        re.escape(i) for i in sorted(ids, key=len, reverse=True)) + r')(["\)])')
    return pattern.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}{m.group(3)}", svg)


def _slugs(results_dir: Path, data: Sequence[str] | None) -> list[str]:
    runs = results_dir / "runs"
    if data:
        out = []
        for d in data:
            slug = data_slug(d)
            if not (runs / slug).is_dir():
                raise ValueError(f"no records for {d} under {runs}; run 'simsbench run' first")
            out.append(slug)
        return out
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and any(p.glob("_data-*.json")))


class _Figures:
    """Draws figures to scoped inline SVG, counting progress steps."""

    def __init__(self, progress):
        self.progress = progress
        self.n = 0

    def svg(self, fig, name: str) -> str:
        from simsbench.figures import svg_text

        self.n += 1
        text = _scoped_svg(svg_text(fig), f"f{self.n}")
        self.progress.step(f"figure {name}")
        return text


def report_sections(results_dir: str | os.PathLike, data: Sequence[str] | None = None, *,
                    mode: str | None = None, ci: bool = False, compare: bool = True,
                    progress=None) -> list[dict]:
    """The report's content, one dict per data set (what the template renders)."""
    from simsbench.figures import (
        StepProgress,
        labels_figure,
        table_figure,
        tsne_figure,
    )

    results_dir = Path(results_dir)
    slugs = _slugs(results_dir, data)
    infos = {s: info for s in slugs if (info := read_data_record(results_dir, s))}
    slugs = [s for s in slugs if s in infos]
    # building the tables is quick; it tells how many figures follow
    built: dict[tuple[str, str], Any] = {}
    for slug in slugs:
        info = infos[slug]
        for name in tables_for_kind(info.get("kind", "sims")):
            table = get_table(name)
            if table.source == "data":
                if "split_table" in info:
                    built[slug, name] = build_table(table, data_info=info, compare=compare)
            else:
                built[slug, name] = table_from_results(name, results_dir, slug,
                                                       compare=compare, mode=mode, ci=ci)
    total = sum(1 + (3 if rt.table.source == "records" and rt.records else 0)
                for rt in built.values())
    total += sum(int(bool(infos[s].get("label_histograms")))
                 + int((results_dir / "figures" / s / "tsne.json").is_file()) for s in slugs)
    progress = progress or StepProgress(total, enabled=False)
    progress.total = max(total, 1)
    draw = _Figures(progress)
    sections = []
    for slug in slugs:
        info = infos[slug]
        synthetic = bool(info.get("synthetic")) or str(info.get("spec", "")).startswith(
            "synthetic:")
        sec: dict[str, Any] = {
            "anchor": f"data-{re.sub(r'[^A-Za-z0-9_-]', '-', slug)}",
            "slug": slug,
            "description": info.get("description") or slug,
            "synthetic": synthetic,
            "tables": [], "figures": [], "not_run": [],
        }
        seen_versions: dict[str, str] = dict(info.get("versions") or {})
        for name in tables_for_kind(info.get("kind", "sims")):
            rt = built.get((slug, name))
            if rt is None:
                continue
            if rt.table.source == "records" and not rt.records:
                sec["not_run"].append(name)
                progress.step(f"{name}: no runs")
                continue
            for r in rt.records:
                for k, v in (r.get("versions") or {}).items():
                    seen_versions.setdefault(k, v)
            sec["tables"].append(_table_block(rt, sec["anchor"], draw, table_figure))
            progress.step(f"table {name}")
        corrections = _corrections_table(results_dir, slug, info, mode)
        if corrections is not None:
            # no per-row figures: each row mixes two configurations
            sec["tables"].append(_table_block(corrections, sec["anchor"], draw, table_figure))
        if info.get("label_histograms"):
            sec["figures"].append({
                "name": "labels", "title": "Label distributions (CH-SIMS Fig. 2)",
                "svg": draw.svg(labels_figure(info), "labels"),
                "caption": "M/T/A/V label histograms and the D_ij discrepancy between "
                           "labels, from the data record.",
            })
        tsne_path = results_dir / "figures" / slug / "tsne.json"
        if tsne_path.is_file():
            payload = json.loads(tsne_path.read_text(encoding="utf-8"))
            if payload.get("data", {}).get("fingerprint") == info.get("fingerprint"):
                import numpy as np

                emb = {m: np.asarray(v) for m, v in payload["embeddings"].items()}
                fig = tsne_figure(emb, payload["labels"], info, payload.get("model", "?"),
                                  payload.get("label", "M"))
                sec["figures"].append({
                    "name": "tsne", "title": "t-SNE of unimodal representations "
                                             "(CH-SIMS Fig. 4 / v2 Fig. 7)",
                    "svg": draw.svg(fig, "tsne"),
                    "caption": f"{payload.get('model')} fitted by 'simsbench figure tsne' "
                               f"(seed {payload.get('seed')}); test clips.",
                })
        sec["provenance"] = _provenance(info, results_dir, slug)
        sec["versions"] = sorted(seen_versions.items())
        sections.append(sec)
    return sections


def _corrections_table(results_dir, slug: str, info: dict, mode: str | None):
    """The corrections table of a data set, when it has corrected runs."""
    from simsbench.corrections import CORRECTION_TABLES, build_corrections_table
    from simsbench.tables import record_variant

    kind = "simsv2" if info.get("kind") == "simsv2" else "sims"
    task = CORRECTION_TABLES[kind].task
    records = [r for r in read_records(results_dir, slug) if r.get("task") == task]
    if not any(record_variant(r) not in (None, "reference") for r in records):
        return None
    rt = build_corrections_table(kind, records, data_info=info, mode=mode)
    rt.table = dataclasses.replace(rt.table, source="corrections")
    return rt


def _table_block(rt, anchor: str, draw: _Figures, table_figure) -> dict:
    head, body = table_grid(rt)
    n_lab = len(rt.table.label_columns) + (1 if rt.compare else 0)
    note_col = len(head) - 1 if head and head[-1] == "Note" else None
    rows = []
    for row, cells in zip(rt.rows, body):
        cls = " ".join(c for c in (row.source, row.kind) if c)
        rows.append({"cls": cls, "cells": [
            {"text": text, "num": n_lab <= i != note_col} for i, text in enumerate(cells)]})
    block = {
        "name": rt.table.name,
        "anchor": f"{anchor}-{rt.table.name}",
        "title": f"{rt.table.paper} {rt.table.paper_table}: {rt.table.title} "
                 f"[{rt.table.name}]",
        "notes": rt.header[1:], "head": head, "body": rows, "figures": [], "skipped": [],
    }
    if rt.table.source != "records":
        return block
    for kind, caption in (
        ("dist", "Each metric over seeds, per row (box: quartiles; points: seeds)."),
        ("cd", "Mean ranks over seeds on the first metric; bars join rows whose mean ranks "
               "differ by less than the Nemenyi critical difference."),
        ("curves", "Train (solid) and valid (dashed) loss per epoch, from the records."),
    ):
        try:
            fig, stem = table_figure(kind, rt)
        except ValueError as exc:
            block["skipped"].append(f"No {kind} figure: {exc}")
            draw.progress.step(f"{rt.table.name} {kind}: skipped")
            continue
        block["figures"].append({"name": stem, "svg": draw.svg(fig, stem), "caption": caption})
    return block


def _provenance(info: dict, results_dir: Path, slug: str) -> list[tuple[str, str]]:
    synthetic = bool(info.get("synthetic")) or str(info.get("spec", "")).startswith(
        "synthetic:")
    out = [
        ("Data", str(info.get("description", ""))),
        ("Spec", str(info.get("spec", ""))),
        ("Source", "synthetic (simsbench's generator; simulated data)" if synthetic
         else "real feature file(s): " + str(info.get("spec", ""))),
        ("Fingerprint", str(info.get("fingerprint", ""))),
        ("Kind", str(info.get("kind", ""))),
        ("Summary", str(info.get("summary", ""))),
        ("Data record written", str(info.get("created", ""))),
        ("Records", str(results_dir / "runs" / slug)),
    ]
    return [(k, v) for k, v in out if v]


def build_report(results_dir: str | os.PathLike = "results",
                 data: Sequence[str] | None = None, *, mode: str | None = None,
                 ci: bool = False, compare: bool = True, progress: bool = False,
                 stream: TextIO | None = None) -> str:
    """Render the HTML report of the records under ``results_dir``.

    Parameters
    ----------
    results_dir : path, default="results"
    data : sequence of str, optional
        Data specs to include (default: every data set with records).
    mode : str, optional
        Which runs (``full``, ``tiny+quick``...; default: each table's newest).
    ci : bool, default=False
        95 % confidence intervals instead of ± std.
    compare : bool, default=True
        Include the published numbers.
    progress : bool, default=False
        Print a progress line with an ETA per table and figure to ``stream``.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    ValueError
        When there are no records to report.
    """
    from simsbench.figures import StepProgress

    jinja2 = _jinja()
    results_dir = Path(results_dir)
    bar = StepProgress(1, stream=stream, enabled=progress)  # report_sections sets the total
    sections = report_sections(results_dir, data, mode=mode, ci=ci, compare=compare,
                               progress=bar)
    if not sections:
        raise ValueError(f"no run records under {results_dir / 'runs'}; run "
                         "'simsbench run TABLE' first")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("simsbench", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("report.html.j2")
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    gen = versions(deep=False)
    for sec in sections:
        sec["versions"] = sec["versions"] or sorted(gen.items())
    return template.render(
        title="simsbench report", version=__version__, created=now,
        results_dir=str(results_dir), sections=sections,
        any_synthetic=any(s["synthetic"] for s in sections),
    )


def write_report(path: str | os.PathLike, results_dir: str | os.PathLike = "results",
                 **kwargs) -> Path:
    """Write :func:`build_report`'s page to ``path`` (atomically); returns it."""
    return atomic_write_text(path, build_report(results_dir, **kwargs))
