"""Statistics over seeds: tests for the tables' Δ rows, confidence intervals, rankings.

Everything here is numpy + scipy (no torch, no extra dependency) and works on
plain numbers: the per-seed scores a table cell averages.

* :func:`compare` tests two sets of per-seed scores: a **paired t** test when the
  two runs of a seed share that seed's randomness (same derived seed, same batch
  order), **Welch's t** test otherwise.  It never raises on degenerate input; it
  returns a :class:`TestResult` whose ``test`` is ``None`` and whose ``reason``
  says why no test was possible (fewer than two seeds, no spread).
* Conventions for the degenerate cases, fixed here so every table agrees:

  - all paired differences exactly zero (identical seeds) → ``p = 1.0`` with
    ``statistic = 0.0``: the data give no evidence at all of a difference;
  - Welch with both groups constant and equal → ``p = 1.0`` likewise;
  - paired differences all equal but non-zero, or Welch with both groups
    constant and different → no test (t is infinite, ``p`` undefined), and the
    ``reason`` says so;
  - fewer than two usable values (pairs, or values on either side for Welch)
    → no test, ``reason`` starts with ``"n < 2"``.

  NaN scores are dropped before testing (a paired test drops the whole pair).
* :func:`marker` turns a p-value into the tables' stars (``*`` p < 0.05,
  ``**`` p < 0.01); CSV output carries the exact p-value instead.
* :func:`ci95` is the t-interval of a mean over seeds, the ``--ci`` columns.
* :func:`welch_from_summary` tests simsbench against a paper's ``mean ± std``;
  the papers report means of :data:`PAPER_RUNS` runs, which is an assumption
  the caller must print beside the result.
* :func:`friedman_nemenyi` ranks several models over common blocks (seeds or
  datasets) for a critical-difference diagram: Friedman's chi-square test and
  the Nemenyi critical difference from the studentized range distribution
  (Demšar, "Statistical comparisons of classifiers over multiple data sets",
  JMLR 7, 2006).  It lives in :mod:`simsbench.stats_ranking` and is
  re-exported here, with :class:`RankingResult` and :func:`nemenyi_cd`.

Why not Wilcoxon's signed-rank test?  With ``n`` paired seeds its exact
two-sided p-value cannot go below ``2 / 2**n`` (:func:`wilcoxon_floor`): 0.0625
for the papers' five seeds, so it could never mark a five-seed difference as
significant at 0.05.  The t tests assume roughly normal per-seed scores; with
five seeds they are the only tests that can say anything, and their p-values
should be read as indications, not proofs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

from simsbench.stats_ranking import RankingResult, friedman_nemenyi, nemenyi_cd

__all__ = [
    "ALPHA_STRONG",
    "ALPHA_WEAK",
    "PAIRED_T",
    "PAPER_RUNS",
    "WELCH_T",
    "RankingResult",
    "TestResult",
    "ci",
    "ci95",
    "compare",
    "format_p",
    "friedman_nemenyi",
    "marker",
    "nemenyi_cd",
    "welch_from_summary",
    "wilcoxon_floor",
]

#: Name of the paired t test in :attr:`TestResult.test`.
PAIRED_T = "paired t"
#: Name of Welch's unequal-variance t test in :attr:`TestResult.test`.
WELCH_T = "Welch t"
#: p below this earns ``*``.
ALPHA_WEAK = 0.05
#: p below this earns ``**``.
ALPHA_STRONG = 0.01
_EPS = 1e-12

#: Runs behind each published mean ± std (CH-SIMS and CH-SIMS v2 both report
#: the mean of five random seeds); an assumption when testing against a paper.
PAPER_RUNS = 5


@dataclass(frozen=True)
class TestResult:
    """Outcome of one two-sample comparison.

    Attributes
    ----------
    diff_mean : float
        Mean of ``a`` minus mean of ``b`` over the values used (for a paired
        test, the mean of the per-seed differences).  NaN when either side is
        empty.
    p : float or None
        Two-sided p-value; ``None`` when no test was possible.
    n : int
        Number of pairs for a paired test, else ``min(n_a, n_b)``.
    test : {"paired t", "Welch t"} or None
        The test performed, ``None`` when none was possible.
    statistic : float or None
        The t statistic (``None`` without a test).
    reason : str or None
        Why no test was possible, or a note on a degenerate convention
        (identical seeds → ``p = 1``); ``None`` for an ordinary test.
    n_a, n_b : int
        Values used on each side.
    df : float or None
        Degrees of freedom of the t distribution used.
    """

    __test__ = False  # not a pytest class, despite the name

    diff_mean: float
    p: float | None
    n: int
    test: str | None
    statistic: float | None = None
    reason: str | None = None
    n_a: int = 0
    n_b: int = 0
    df: float | None = None

    @property
    def marker(self) -> str:
        """The significance marker of :attr:`p` (see :func:`marker`)."""
        return marker(self.p)

    @property
    def n_label(self) -> str:
        """``"5"`` for a paired test or equal sides, else ``"5/4"``."""
        if self.test == PAIRED_T or self.n_a == self.n_b:
            return str(self.n)
        return f"{self.n_a}/{self.n_b}"

    def describe(self) -> str:
        """One line for a table's notes, e.g. ``"paired t, n=5, p=0.0031"``."""
        if self.test is None:
            return f"no test ({self.reason})"
        text = f"{self.test}, n={self.n_label}, p={format_p(self.p)}"
        return f"{text} ({self.reason})" if self.reason else text


def _clean(values) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float64).reshape(-1)
    return arr[np.isfinite(arr)]


def _paired_arrays(a, b) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        keys = [k for k in a if k in b]
        a = [a[k] for k in keys]
        b = [b[k] for k in keys]
    elif isinstance(a, Mapping) or isinstance(b, Mapping):
        raise TypeError("compare(paired=True) needs two mappings or two sequences, not one of each")
    x = np.asarray(list(a), dtype=np.float64).reshape(-1)
    y = np.asarray(list(b), dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(
            f"a paired test needs as many values on each side (got {x.size} and {y.size}); "
            "pass mappings keyed by seed to pair them by seed"
        )
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def compare(
    a: Sequence[float] | Mapping[Any, float],
    b: Sequence[float] | Mapping[Any, float],
    *,
    paired: bool,
) -> TestResult:
    """Test whether two sets of per-seed scores differ (two-sided).

    Parameters
    ----------
    a, b : sequence of float, or mapping seed -> float
        Per-seed scores.  With ``paired=True`` two sequences are paired by
        position and two mappings by their shared keys (seeds).
    paired : bool
        Paired t test (the runs of a seed share its randomness) or Welch's t
        test (independent runs).

    Returns
    -------
    TestResult
        ``diff_mean`` is ``mean(a) - mean(b)``.  See the module docstring for
        the degenerate cases (identical seeds → ``p = 1``; ``n < 2`` → no test).

    Raises
    ------
    ValueError
        ``paired=True`` with two sequences of different lengths.
    """
    if paired:
        x, y = _paired_arrays(a, b)
        n = int(x.size)
        if n == 0:
            return TestResult(math.nan, None, 0, None, reason="n < 2: no seed on both sides")
        d = x - y
        mean = float(d.mean())
        if n < 2:
            return TestResult(
                mean, None, n, None, reason="n < 2: only one seed on both sides", n_a=n, n_b=n
            )
        sd = float(d.std(ddof=1))
        # a spread at rounding level is no spread (x + c - x is not always c)
        if sd <= _EPS * max(1.0, float(np.abs(x).max()), float(np.abs(y).max())):
            if np.all(d == 0.0):
                return TestResult(
                    0.0, 1.0, n, PAIRED_T, 0.0,
                    reason="identical on every seed; p = 1 by definition",
                    n_a=n, n_b=n, df=float(n - 1),
                )
            return TestResult(
                mean, None, n, None,
                reason="the same difference on every seed; t is undefined (no spread)",
                n_a=n, n_b=n,
            )
        t = mean / (sd / math.sqrt(n))
        p = float(2.0 * _st.t.sf(abs(t), n - 1))
        return TestResult(mean, p, n, PAIRED_T, float(t), n_a=n, n_b=n, df=float(n - 1))

    x = _clean(a.values() if isinstance(a, Mapping) else a)
    y = _clean(b.values() if isinstance(b, Mapping) else b)
    mean = float(x.mean() - y.mean()) if x.size and y.size else math.nan
    na, nb = int(x.size), int(y.size)
    if na < 2 or nb < 2:
        return TestResult(
            mean, None, min(na, nb), None,
            reason=f"n < 2: {na} and {nb} values; Welch's test needs two on each side",
            n_a=na, n_b=nb,
        )
    return _welch(mean, float(x.var(ddof=1)), na, float(y.var(ddof=1)), nb)


def _welch(diff: float, var1: float, n1: int, var2: float, n2: int) -> TestResult:
    se2 = var1 / n1 + var2 / n2
    n = min(n1, n2)
    if se2 <= _EPS**2 * max(1.0, abs(diff)) ** 2:
        if diff == 0.0:
            return TestResult(
                0.0, 1.0, n, WELCH_T, 0.0,
                reason="both sides constant and equal; p = 1 by definition", n_a=n1, n_b=n2,
            )
        return TestResult(
            diff, None, n, None,
            reason="both sides constant and different; t is undefined (no spread)",
            n_a=n1, n_b=n2,
        )
    t = diff / math.sqrt(se2)
    df = se2**2 / (
        (var1 / n1) ** 2 / (n1 - 1) + (var2 / n2) ** 2 / (n2 - 1)
    )
    p = float(2.0 * _st.t.sf(abs(t), df))
    return TestResult(diff, p, n, WELCH_T, float(t), n_a=n1, n_b=n2, df=float(df))


def welch_from_summary(
    mean1: float, sd1: float, n1: int, mean2: float, sd2: float, n2: int
) -> TestResult:
    """Welch's t test from two ``mean ± sd (n runs)`` summaries.

    Used for simsbench vs a paper, where only the published mean and standard
    deviation exist; the paper's ``n`` is normally :data:`PAPER_RUNS`, an
    assumption the caller states.  ``sd`` is the sample standard deviation
    (``ddof=1``).

    Parameters
    ----------
    mean1, sd1, n1 : float, float, int
        First sample's mean, standard deviation and size.
    mean2, sd2, n2 : float, float, int
        Second sample's.

    Returns
    -------
    TestResult
        ``diff_mean = mean1 - mean2``; no test when either ``n < 2`` or a
        value is missing.
    """
    vals = (mean1, sd1, mean2, sd2)
    if any(v is None or not math.isfinite(float(v)) for v in vals):
        diff = (
            float(mean1) - float(mean2)
            if mean1 is not None and mean2 is not None
            else math.nan
        )
        return TestResult(diff, None, 0, None, reason="a mean or standard deviation is missing")
    if sd1 < 0 or sd2 < 0:
        raise ValueError(f"standard deviations must be >= 0 (got {sd1} and {sd2})")
    diff = float(mean1) - float(mean2)
    n1, n2 = int(n1), int(n2)
    if n1 < 2 or n2 < 2:
        return TestResult(
            diff, None, min(n1, n2), None,
            reason=f"n < 2: {n1} and {n2} runs; Welch's test needs two on each side",
            n_a=n1, n_b=n2,
        )
    return _welch(diff, float(sd1) ** 2, n1, float(sd2) ** 2, n2)


def marker(p: float | None) -> str:
    """Significance marker: ``"**"`` if p < 0.01, ``"*"`` if p < 0.05, else ``""``.

    ``None`` and NaN (no test) give ``""``.
    """
    if p is None or not math.isfinite(p):
        return ""
    if p < ALPHA_STRONG:
        return "**"
    if p < ALPHA_WEAK:
        return "*"
    return ""


def format_p(p: float | None) -> str:
    """A p-value for Markdown/LaTeX notes: 2 significant digits, ``<0.001`` below."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def ci(values, level: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean of ``values``.

    Parameters
    ----------
    values : iterable of float
        Per-seed scores; NaN values are dropped.
    level : float, default=0.95
        Coverage, in (0, 1).

    Returns
    -------
    (float, float)
        ``(low, high)``; ``(nan, nan)`` with fewer than two values, and
        ``(mean, mean)`` when all values are equal.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    x = _clean(values)
    if x.size < 2:
        return (math.nan, math.nan)
    mean = float(x.mean())
    half = float(_st.t.ppf(0.5 + level / 2.0, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(
        x.size
    )
    return (mean - half, mean + half)


def ci95(values) -> tuple[float, float]:
    """95 % t confidence interval of the mean over seeds (:func:`ci` at 0.95)."""
    return ci(values, 0.95)


def wilcoxon_floor(n: int) -> float:
    """Smallest exact two-sided p-value of Wilcoxon's signed-rank test with ``n`` pairs.

    All ``n`` differences with one sign is the most extreme of the ``2**n``
    equally likely sign patterns, on each side: ``p = 2 / 2**n`` (0.0625 for
    five seeds, so five seeds can never reach p < 0.05 with that test).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return min(1.0, 2.0 / 2.0**n)
