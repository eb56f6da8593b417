"""Progress lines on stderr: elapsed time and an ETA per finished step.

:class:`StepProgress` counts the steps of ``simsbench figure`` and
``simsbench report``; :func:`format_duration` writes their times and those of
the run grid's progress (:class:`simsbench.runner.Progress`).  Imports no torch.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["StepProgress", "format_duration"]


class StepProgress:
    """One line per finished step, with elapsed time and an ETA (stderr)."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = max(int(total), 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def step(self, label: str) -> None:
        """Count one finished step called ``label``."""
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * max(self.total - self.done, 0)
        print(f"[{self.done}/{self.total} {100 * self.done / self.total:3.0f}% "
              f"elapsed {format_duration(elapsed)} ETA {format_duration(eta)}] {label}",
              file=self.stream, flush=True)


def format_duration(seconds: float) -> str:
    """``"4m05s"``, or ``"1h02m03s"`` from an hour on (rounded to the second)."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"
