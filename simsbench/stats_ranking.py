"""Ranking several models over common blocks: Friedman test, Nemenyi critical difference.

:func:`friedman_nemenyi` ranks ``k`` models over ``N`` blocks (seeds or data
sets) for a critical-difference diagram (:func:`simsbench.figures.cd_figure`):
Friedman's chi-square test with the tie correction and the Nemenyi critical
difference from the studentized range distribution (Demšar, "Statistical
comparisons of classifiers over multiple data sets", JMLR 7, 2006).  The
two-sample tests and intervals of the tables are in :mod:`simsbench.stats`,
which re-exports these names.  numpy + scipy only; imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as _st

__all__ = ["RankingResult", "friedman_nemenyi", "nemenyi_cd"]


@dataclass(frozen=True)
class RankingResult:
    """Friedman test and Nemenyi critical difference over ``k`` models.

    Attributes
    ----------
    names : list of str
        The models, in the input order.
    mean_ranks : numpy.ndarray of shape (k,)
        Average rank of each model over the blocks (1 = best; ties get the
        average of the ranks they span).
    n_blocks : int
        Blocks (rows) that entered the ranking: those with no missing score.
    statistic : float or None
        Friedman's chi-square; ``None`` when no test was possible.
    p : float or None
        p-value of the Friedman test.
    cd : float or None
        Nemenyi critical difference of mean ranks at ``alpha``.
    alpha : float
        Level of the critical difference.
    reason : str or None
        Why no test was possible, or ``None``.
    """

    names: list[str]
    mean_ranks: np.ndarray
    n_blocks: int
    statistic: float | None
    p: float | None
    cd: float | None
    alpha: float = 0.05
    reason: str | None = None
    dropped_blocks: int = field(default=0)

    def groups(self) -> list[tuple[int, int]]:
        """Maximal runs of models (in rank order) not separated by the CD.

        Returns
        -------
        list of (int, int)
            ``(first, last)`` positions in :meth:`order`, ``last > first``,
            of each maximal clique whose mean ranks differ by less than the
            critical difference; the bars of a critical-difference diagram.
        """
        if self.cd is None:
            return []
        ranks = self.mean_ranks[self.order()]
        out: list[tuple[int, int]] = []
        for i in range(len(ranks)):
            j = i
            while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < self.cd:
                j += 1
            if j > i and not any(a <= i and j <= b for a, b in out):
                out.append((i, j))
        return out

    def order(self) -> np.ndarray:
        """Indices of :attr:`names` from the best mean rank to the worst."""
        return np.argsort(self.mean_ranks, kind="stable")


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks for ``k`` models over ``n_blocks`` blocks.

    ``CD = q_alpha * sqrt(k (k + 1) / (6 N))`` with ``q_alpha`` the upper
    ``alpha`` quantile of the studentized range of ``k`` means (infinite degrees
    of freedom) divided by ``sqrt(2)`` (Demšar 2006, section 3.2.2).
    """
    if k < 2 or n_blocks < 1:
        raise ValueError(f"the Nemenyi CD needs k >= 2 models and >= 1 block (got {k}, {n_blocks})")
    q = float(_st.studentized_range.ppf(1.0 - alpha, k, np.inf)) / math.sqrt(2.0)
    return q * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def friedman_nemenyi(
    scores,
    names: Sequence[str],
    *,
    higher_is_better: bool = True,
    alpha: float = 0.05,
) -> RankingResult:
    """Rank ``k`` models over ``N`` blocks; Friedman test and Nemenyi CD.

    Parameters
    ----------
    scores : array-like of shape (n_blocks, k)
        One row per block (a seed, or a dataset), one column per model.
        Rows with a missing (NaN) score are dropped.
    names : sequence of str
        The ``k`` model names.
    higher_is_better : bool, default=True
        Whether a larger score ranks first (False for MAE).
    alpha : float, default=0.05
        Level of the critical difference.

    Returns
    -------
    RankingResult
        ``statistic``, ``p`` and ``cd`` are ``None`` with fewer than two blocks
        or models (``reason`` says which); a block where all models tie adds
        equal ranks and no evidence.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"scores must be 2-D (blocks x models), got shape {arr.shape}")
    names = [str(n) for n in names]
    if arr.shape[1] != len(names):
        raise ValueError(f"scores has {arr.shape[1]} columns but {len(names)} names")
    keep = np.all(np.isfinite(arr), axis=1)
    dropped = int((~keep).sum())
    arr = arr[keep]
    k, n = arr.shape[1], arr.shape[0]
    if n == 0:
        return RankingResult(
            names, np.full(k, np.nan), 0, None, None, None, alpha,
            reason="no block has a score for every model", dropped_blocks=dropped,
        )
    ranks = _st.rankdata(-arr if higher_is_better else arr, axis=1)
    mean_ranks = ranks.mean(axis=0)
    if k < 2 or n < 2:
        why = "fewer than two models" if k < 2 else "fewer than two blocks"
        return RankingResult(
            names, mean_ranks, n, None, None, None, alpha, reason=why, dropped_blocks=dropped
        )
    cd = nemenyi_cd(k, n, alpha)
    # Friedman's chi-square with the tie correction (as scipy's
    # friedmanchisquare, computed here so k = 2 is allowed too).
    ssr = n * float(np.sum((mean_ranks - (k + 1) / 2.0) ** 2))
    ties = 0.0
    for row in ranks:
        _, counts = np.unique(row, return_counts=True)
        ties += float(np.sum(counts**3 - counts))
    denom = 1.0 - ties / (n * (k**3 - k))
    if denom <= 0.0:
        return RankingResult(
            names, mean_ranks, n, 0.0, 1.0, cd, alpha,
            reason="every block ties all models; p = 1 by definition", dropped_blocks=dropped,
        )
    chi2 = 12.0 * ssr / (k * (k + 1)) / denom
    p = float(_st.chi2.sf(chi2, k - 1))
    return RankingResult(names, mean_ranks, n, float(chi2), p, cd, alpha, dropped_blocks=dropped)
