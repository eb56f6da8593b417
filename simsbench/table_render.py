"""Rendering a built table as Markdown, LaTeX (booktabs) or CSV.

Rounding happens here and nowhere else.  Markdown and LaTeX go through
:func:`tabulate.tabulate`, with two table formats of its own building blocks
(:class:`tabulate.TableFormat`) where its stock ``pipe`` and
``latex_booktabs`` formats would change the output the golden tests fix:

* ``pipe`` pads a column whose header is its widest cell by two spaces
  (``tabulate.MIN_PADDING``), right-justifies the right-aligned columns and
  writes its rule as ``|:---|---:|``; the Markdown here left-justifies every
  cell, marks the metric columns right-aligned (``| :--- | ---: |``) and has
  no extra padding.  So the header goes in as the first row, the rule as
  tabulate's ``SEPARATING_LINE`` after it.
* ``latex_booktabs`` pads the cells, escapes with its own rules (not those
  of the signs printed here: ±, Δ, ², ×) and draws ``SEPARATING_LINE`` as a
  ``\\midrule``; the LaTeX here has unpadded cells and an
  ``\\addlinespace`` before each simsbench row that follows a 'paper' row.

CSV is written by :mod:`csv`.  Imports no torch.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from tabulate import SEPARATING_LINE, DataRow, Line, TableFormat, tabulate

from simsbench.table_summary import Cell, TableContent

__all__ = ["EXTENSIONS", "FORMATS", "latex_escape", "render", "table_grid"]

FORMATS = ("markdown", "latex", "csv")
EXTENSIONS = {"markdown": "md", "latex": "tex", "csv": "csv"}


def _fmt(cell: Cell, decimals: int, with_std: bool = True, ci: bool = False) -> str:
    nan = f"NaN in {cell.n_nan} of {cell.n + cell.n_nan} seeds" if cell.n_nan else ""
    if cell.mean is None or (isinstance(cell.mean, float) and math.isnan(cell.mean)):
        return f"n/a ({nan})" if nan else "n/a"
    if cell.pvalue:
        return f"{cell.mean:.3g}"
    mark = cell.test.marker if cell.test is not None else cell.marker
    if cell.signed:
        return f"{cell.mean:+.{decimals}f}{mark}"
    text = f"{cell.mean:.{decimals}f}"
    if ci and cell.ci is not None and cell.n > 1:
        text += f" [{cell.ci[0]:.{decimals}f}, {cell.ci[1]:.{decimals}f}]"
    elif with_std and cell.std is not None and (cell.n > 1 or cell.n == 0):
        text += f" ± {cell.std:.{decimals}f}"
    if nan:  # the mean is over the other seeds: say so in the cell
        text += f" ({nan})"
    return text + mark


def table_grid(rt: TableContent) -> tuple[list[str], list[list[str]]]:
    """The formatted header and body cells of a table (one body row per
    ``rt.rows`` entry), as the Markdown and LaTeX outputs print them."""
    t = rt.table
    data_table = t.source == "data"
    head = [*t.label_columns, *(["Source"] if rt.compare else []),
            *(t.metric_labels.get(c, c) for c in rt.columns)]
    has_note = any(r.note for r in rt.rows)
    if has_note:
        head.append("Note")
    body = []
    for r in rt.rows:
        line = [*r.labels, *([r.source] if rt.compare else [])]
        line += [_fmt(r.cells.get(c, Cell()), 0 if data_table else t.decimals(c), ci=rt.ci)
                 for c in rt.columns]
        body.append(line + ([r.note] if has_note else []))
    return head, body


def _left_aligned(rt: TableContent, head: list[str]) -> list[bool]:
    """Label, Source and Note columns are left-aligned, values right-aligned."""
    n_lab = len(rt.table.label_columns) + (1 if rt.compare else 0)
    return [i < n_lab or (name == "Note" and i == len(head) - 1) for i, name in enumerate(head)]


def _markdown(rt: TableContent) -> str:
    head, body = table_grid(rt)
    left = _left_aligned(rt, head)

    def rule(widths, _aligns):  # widths include tabulate's one-space padding
        segs = [(":" + "-" * max(w - 3, 2)) if lft else ("-" * max(w - 3, 2) + ":")
                for w, lft in zip(widths, left)]
        return "| " + " | ".join(s.ljust(w - 2) for s, w in zip(segs, widths)) + " |"

    fmt = TableFormat(lineabove=None, linebelowheader=rule, linebetweenrows=None,
                      linebelow=None, headerrow=DataRow("|", "|", "|"),
                      datarow=DataRow("|", "|", "|"), padding=1, with_header_hide=None)
    rows = [[c.replace("|", "\\|") for c in row] for row in [head, *body]]
    text = tabulate([rows[0], SEPARATING_LINE, *rows[1:]], tablefmt=fmt,
                    colalign=["left"] * len(head), disable_numparse=True)
    return "\n".join([*(f"> {h}" for h in rt.header), "", text]) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "²": r"$^2$", "−": "--", "×": r"$\times$",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (and the few Unicode signs we print)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


_ADDLINESPACE = "\\addlinespace"


def _latex_row(cells, _widths, _aligns) -> str:
    return cells[0] if cells[0] == _ADDLINESPACE else " & ".join(cells) + r" \\"


def _latex(rt: TableContent) -> str:
    head, body = table_grid(rt)
    spec = "".join("l" if lft else "r" for lft in _left_aligned(rt, head))
    rows, prev_source = [], None
    for row, cells in zip(rt.rows, body):
        if rt.compare and row.source == "simsbench" and prev_source == "paper":
            rows.append([_ADDLINESPACE] + [""] * (len(cells) - 1))
        prev_source = row.source
        rows.append([latex_escape(c) for c in cells])
    fmt = TableFormat(
        lineabove=Line(f"\\begin{{tabular}}{{{spec}}}\n\\toprule", "", "", ""),
        linebelowheader=Line("\\midrule", "", "", ""), linebetweenrows=None,
        linebelow=Line("\\bottomrule\n\\end{tabular}", "", "", ""),
        headerrow=DataRow("", " & ", r" \\"), datarow=_latex_row, padding=0,
        with_header_hide=None)
    # colalign None: tabulate pads no cell
    text = tabulate(rows, [latex_escape(h) for h in head], tablefmt=fmt,
                    colalign=[None] * len(head), disable_numparse=True)
    out = [*(f"% {latex_escape(h)}" for h in rt.header), "% requires \\usepackage{booktabs}", text]
    return "\n".join(out) + "\n"


def _csv(rt: TableContent) -> str:
    t = rt.table
    buf = io.StringIO()
    for h in rt.header:
        buf.write(f"# {h}\n")
    w = csv.writer(buf, lineterminator="\n")
    head = [c.lower() for c in t.label_columns] + ["source"]
    data_table = t.source == "data"
    for c in rt.columns:
        head += [c] if data_table else [c, f"{c}_std"]
    head += ["n", "note"]
    if not data_table:  # appended, so the columns before keep their places
        head += ["test"] + [f"{c}_p" for c in rt.columns]
        if rt.ci:
            head += [f"{c}_{end}" for c in rt.columns for end in ("ci_low", "ci_high")]
    w.writerow(head)
    for r in rt.rows:
        line: list[Any] = [*r.labels, r.source]
        ns = []
        for c in rt.columns:
            cell = r.cells.get(c, Cell())
            dec = 0 if data_table else t.decimals(c)
            mean = ("" if cell.mean is None or math.isnan(cell.mean)
                    else repr(float(cell.mean)) if cell.pvalue else f"{cell.mean:.{dec}f}")
            line.append(mean)
            if not data_table:
                std = "" if cell.std is None or math.isnan(cell.std) else f"{cell.std:.{dec}f}"
                line.append(std)
            ns.append(cell.n)
        line += [max(ns) if ns else 0, r.note]
        if not data_table:
            cells = [r.cells.get(c, Cell()) for c in rt.columns]
            kinds = []
            for cell in cells:
                if cell.test is not None and cell.test.test and cell.test.test not in kinds:
                    kinds.append(cell.test.test)
            line.append("; ".join(kinds))
            line += ["" if cell.test is None or cell.test.p is None else repr(cell.test.p)
                     for cell in cells]
            if rt.ci:
                for c, cell in zip(rt.columns, cells):
                    if cell.ci is not None and cell.n > 1:
                        line += [f"{v:.{t.decimals(c)}f}" for v in cell.ci]
                    else:
                        line += ["", ""]
        w.writerow(line)
    return buf.getvalue()


def render(rt: TableContent, fmt: str = "markdown") -> str:
    """Format a built table as ``"markdown"``, ``"latex"`` or ``"csv"``."""
    fmt = {"md": "markdown", "tex": "latex"}.get(fmt, fmt)
    writers = {"markdown": _markdown, "latex": _latex, "csv": _csv}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return writers[fmt](rt)
