"""What every figure shares: the matplotlib import, the canvas with its title,
data footer and ``SIMULATED DATA`` banner, and writing a figure out.

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly (no
pyplot, no global backend switch: the Agg canvas) and saved as PNG and SVG
(text kept as text in the SVG, so it is searchable and small).  matplotlib is
imported when a figure is drawn, never on import.  Imports no torch.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from simsbench._data_record import is_synthetic

__all__ = ["BANNER", "FIGURE_FORMATS", "new_figure", "png_base64", "save_figure", "svg_text"]

FIGURE_FORMATS = ("png", "svg")

BANNER = "SIMULATED DATA: not CH-SIMS results"
_BANNER_COLOUR = "#b00020"
_RC = {"svg.fonttype": "none", "svg.hashsalt": "simsbench", "font.size": 9}


def _mpl():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "figures need matplotlib: pip install 'simsbench[figures]'"
        ) from None
    return matplotlib, Figure


def _data_line(info: Mapping, extra: str = "") -> str:
    desc = str(info.get("description") or info.get("spec") or "unknown data")
    fp = info.get("fingerprint")
    text = f"Data: {desc}" + (f" | fingerprint {str(fp)[:16]}" if fp else "")
    return text + (f" | {extra}" if extra else "")


def new_figure(width: float, height: float, title: str, info: Mapping, extra: str = ""):
    """A Figure with a title, the data footer and (synthetic data) the banner.

    Returns the figure and the rectangle (figure fraction) left for axes.
    """
    _, Figure = _mpl()
    synthetic = is_synthetic(info)
    top_in = 0.45 + (0.32 if synthetic else 0.0)
    bottom_in = 0.42
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(
        rect=(0.0, bottom_in / height, 1.0, 1.0 - (top_in + bottom_in) / height)
    )
    y = 1.0 - 0.06 / height
    if synthetic:
        fig.text(0.5, y, BANNER, ha="center", va="top", color="white", fontsize=10,
                 fontweight="bold", gid="simulated-banner",
                 bbox={"boxstyle": "square,pad=0.25", "facecolor": _BANNER_COLOUR,
                       "edgecolor": "none"})
        y -= 0.32 / height
    fig.text(0.5, y, title, ha="center", va="top", fontsize=11, fontweight="bold",
             gid="figure-title")
    fig.text(0.01, 0.08 / height, _data_line(info, extra), ha="left", va="bottom",
             fontsize=7, color="#444444", gid="data-footer", wrap=True)
    return fig


def save_figure(fig, stem: str | os.PathLike, formats: Iterable[str] = FIGURE_FORMATS,
                description: str = "") -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` / ``<stem>.svg``; returns the paths."""
    matplotlib, _ = _mpl()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        if fmt not in FIGURE_FORMATS:
            raise ValueError(f"unknown figure format {fmt!r}; choose from png, svg")
        path = stem.with_suffix(f".{fmt}")
        meta: dict[str, str | None] = {"Title": stem.name, "Description": description}
        if fmt == "svg":
            meta["Date"] = None
        tmp = path.with_name(f".{path.name}.tmp")
        with matplotlib.rc_context(_RC):
            fig.savefig(tmp, format=fmt, dpi=120, metadata=meta)
        os.replace(tmp, path)
        out.append(path)
    return out


def svg_text(fig) -> str:
    """The figure as an inline SVG document (no XML prolog), for HTML."""
    matplotlib, _ = _mpl()
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def png_base64(fig, dpi: int = 100) -> str:
    """The figure as a base64 PNG (for a ``data:`` URI)."""
    matplotlib, _ = _mpl()
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")

