"""Confidence intervals against known cases (wavegan/metrics/intervals.py)."""

import math

import numpy as np
import pytest

from wavegan.metrics.intervals import bootstrap_interval, bootstrap_rows, distinguishable, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Published values (Brown, Cai & DasGupta 2001; any Wilson calculator), z = 1.95996
        (0, 5, 0.0, 0.4345),
        (5, 5, 0.5655, 1.0),
        (1, 10, 0.01787, 0.4042),
        (50, 100, 0.4038, 0.5962),
        (3, 12, 0.0893, 0.5323),
    ],
)
def test_wilson_interval_known_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-4)


def test_wilson_interval_edges():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(4, 3)
    # a wider interval for fewer runs at the same rate
    assert np.diff(wilson_interval(1, 4)) > np.diff(wilson_interval(25, 100))


def test_bootstrap_interval_of_a_mean_matches_the_normal_theory_interval():
    """For the mean of 400 normal draws the percentile bootstrap agrees with mean +- 1.96 s/sqrt(n)."""
    x = np.random.default_rng(3).normal(10.0, 2.0, 400)
    low, high = bootstrap_interval(x, np.mean, n_boot=2000)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert low == pytest.approx(x.mean() - half, abs=0.05)
    assert high == pytest.approx(x.mean() + half, abs=0.05)


def test_bootstrap_is_seeded_and_handles_tiny_samples():
    x = [3.0, 1.0, 4.0, 1.0, 5.0]
    assert bootstrap_interval(x) == bootstrap_interval(x)
    assert bootstrap_interval([7.0]) == (7.0, 7.0)
    assert all(math.isnan(v) for v in bootstrap_interval([]))
    assert all(math.isnan(v) for v in bootstrap_interval([float("nan")]))


def test_bootstrap_rows_resamples_aligned_rows_together():
    """Rows of two arrays stay paired: the statistic of (a - b) on identical arrays is exactly 0."""
    a = np.arange(50.0)
    low, high = bootstrap_rows(lambda idx: float(np.mean(a[idx] - a[idx])), len(a), n_boot=100)
    assert (low, high) == (0.0, 0.0)


def test_distinguishable_means_no_overlap():
    assert distinguishable((0.0, 1.0), (1.5, 2.0))
    assert not distinguishable((0.0, 1.6), (1.5, 2.0))
    assert not distinguishable((0.0, float("nan")), (1.5, 2.0))


def test_bias_corrected_bootstrap_contains_a_set_statistic_that_resampling_inflates():
    """The number of distinct rows: every resample has fewer (~63 %), so the plain percentile interval
    lies wholly below the full-set value; the bias-corrected one contains it."""
    n = 200

    def distinct(idx):
        return float(len(np.unique(idx)))

    plain = bootstrap_rows(distinct, n, n_boot=300)
    corrected = bootstrap_rows(distinct, n, n_boot=300, bias_correct=True)
    assert plain[1] < n
    assert corrected[0] <= n <= corrected[1]
