"""simsbench.stats on hand-made per-seed scores whose answers are known."""

import math

import numpy as np
import pytest
from scipy import stats as st

from simsbench import stats

SEEDS = [0.71, 0.69, 0.73, 0.70, 0.72]


def test_identical_seeds_paired_gives_p_one():
    res = stats.compare(SEEDS, list(SEEDS), paired=True)
    assert res.test == stats.PAIRED_T
    assert res.p == 1.0
    assert res.diff_mean == 0.0 and res.statistic == 0.0 and res.n == 5
    assert "p = 1 by definition" in res.reason
    assert res.marker == ""


def test_identical_constant_groups_welch_gives_p_one():
    res = stats.compare([0.5] * 4, [0.5] * 3, paired=False)
    assert res.test == stats.WELCH_T and res.p == 1.0
    assert res.n_label == "4/3"


def test_constant_shift_with_small_noise_is_significant():
    rng = np.random.default_rng(0)
    b = np.array(SEEDS)
    a = b + 0.02 + rng.normal(0, 0.002, size=b.size)
    paired = stats.compare(a, b, paired=True)
    assert paired.test == stats.PAIRED_T and paired.p < 0.01
    assert paired.marker == "**"
    assert paired.diff_mean == pytest.approx(float(np.mean(a - b)))
    # the same numbers agree with scipy's paired test
    ref = st.ttest_rel(a, b)
    assert paired.p == pytest.approx(ref.pvalue)
    assert paired.statistic == pytest.approx(ref.statistic)
    # unpaired, the seed-to-seed spread (sd ~0.016) hides most of the 0.02 shift
    welch = stats.compare(a, b, paired=False)
    ref = st.ttest_ind(a, b, equal_var=False)
    assert welch.test == stats.WELCH_T
    assert welch.p == pytest.approx(ref.pvalue) and welch.statistic == pytest.approx(ref.statistic)
    assert welch.p > paired.p


@pytest.mark.parametrize("paired", [True, False])
def test_fewer_than_two_seeds_gives_no_test_and_a_reason(paired):
    res = stats.compare([0.7], [0.6], paired=paired)
    assert res.test is None and res.p is None and res.statistic is None
    assert res.reason.startswith("n < 2")
    assert res.diff_mean == pytest.approx(0.1)
    assert res.marker == "" and res.describe().startswith("no test (n < 2")


def test_nan_scores_are_dropped_pairwise():
    a = {0: 0.7, 1: math.nan, 2: 0.72, 3: 0.69}
    b = {0: 0.6, 1: 0.61, 2: 0.63, 3: 0.60, 4: 0.9}  # seed 4 has no partner
    res = stats.compare(a, b, paired=True)
    assert res.n == 3
    assert res.diff_mean == pytest.approx(np.mean([0.1, 0.09, 0.09]))
    # only one pair left -> no test
    res = stats.compare({0: 0.7, 1: math.nan}, {0: 0.6, 1: 0.5}, paired=True)
    assert res.test is None and res.reason.startswith("n < 2")


def test_same_nonzero_difference_on_every_seed_is_undefined():
    a = np.array(SEEDS)
    res = stats.compare(a + 0.125, a, paired=True)  # exact in binary: no rounding spread
    assert res.test is None and "no spread" in res.reason
    assert res.diff_mean == pytest.approx(0.125)


def test_paired_sequences_of_different_lengths_raise():
    with pytest.raises(ValueError, match="as many values on each side"):
        stats.compare([1.0, 2.0], [1.0], paired=True)


def test_welch_from_summary_matches_scipy_and_states_n():
    res = stats.welch_from_summary(0.78, 0.01, 5, 0.80, 0.015, stats.PAPER_RUNS)
    ref = st.ttest_ind_from_stats(0.78, 0.01, 5, 0.80, 0.015, 5, equal_var=False)
    assert res.test == stats.WELCH_T
    assert res.p == pytest.approx(ref.pvalue)
    assert res.diff_mean == pytest.approx(-0.02)
    assert stats.welch_from_summary(0.7, 0.01, 1, 0.7, 0.01, 5).reason.startswith("n < 2")
    missing = stats.welch_from_summary(0.7, math.nan, 5, 0.7, 0.01, 5)
    assert missing.test is None and "missing" in missing.reason


@pytest.mark.parametrize(
    ("p", "mark"),
    [(None, ""), (math.nan, ""), (0.2, ""), (0.05, ""), (0.049, "*"), (0.01, "*"), (0.0099, "**")],
)
def test_marker(p, mark):
    assert stats.marker(p) == mark


def test_ci95_is_the_t_interval():
    lo, hi = stats.ci95(SEEDS)
    m, se = np.mean(SEEDS), st.sem(SEEDS)
    ref = st.t.interval(0.95, len(SEEDS) - 1, loc=m, scale=se)
    assert (lo, hi) == pytest.approx(ref)
    assert all(math.isnan(v) for v in stats.ci95([0.5]))
    assert stats.ci95([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_wilcoxon_floor_for_five_seeds():
    assert stats.wilcoxon_floor(5) == 0.0625
    # scipy's exact test reaches exactly that floor with all five differences positive
    assert st.wilcoxon([0.1, 0.2, 0.3, 0.4, 0.5], method="exact").pvalue == pytest.approx(0.0625)


def test_friedman_nemenyi_matches_scipy_and_demsar_cd():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 1)) * 0.05
    scores = base + np.array([0.0, 0.01, 0.05, 0.051]) + rng.normal(0, 0.001, (6, 4))
    res = stats.friedman_nemenyi(scores, ["a", "b", "c", "d"])
    ref = st.friedmanchisquare(*scores.T)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    # Demšar (2006) table 5: q_0.05 for k = 4 is 2.569
    assert res.cd == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 6)), abs=2e-3)
    assert [res.names[i] for i in res.order()] == ["d", "c", "b", "a"]
    assert res.groups() == [(0, 1), (1, 2), (2, 3)]
    # lower-is-better flips the ranking
    low = stats.friedman_nemenyi(scores, ["a", "b", "c", "d"], higher_is_better=False)
    assert [low.names[i] for i in low.order()] == ["a", "b", "c", "d"]


def test_friedman_nemenyi_degenerate_inputs():
    one = stats.friedman_nemenyi([[0.1, 0.2]], ["a", "b"])
    assert one.p is None and one.reason == "fewer than two blocks"
    tied = stats.friedman_nemenyi([[0.1, 0.1], [0.3, 0.3]], ["a", "b"])
    assert tied.p == 1.0 and "ties" in tied.reason
    nan_row = stats.friedman_nemenyi([[0.1, math.nan], [0.1, 0.2], [0.3, 0.4]], ["a", "b"])
    assert nan_row.n_blocks == 2 and nan_row.dropped_blocks == 1
    with pytest.raises(ValueError, match="columns"):
        stats.friedman_nemenyi([[0.1, 0.2]], ["a"])


def test_stats_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, simsbench.stats; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
