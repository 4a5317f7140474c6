"""Confidence intervals for the figures a run, a multirun and a study report: pure numpy/scipy.

    wilson_interval(k, n)                  a rate k/n (divergence, collapse, classifier accuracy)
    bootstrap_interval(values, np.median)  a statistic of one sample (median quality over seeds)
    bootstrap_rows(stat, n, ...)           a statistic of a whole set, resampling its rows
                                           (FD, IS, NDB/K, coverage of generated clips)
    distinguishable(a, b)                  whether two intervals do not overlap

Why these: the Wilson score interval keeps its coverage for the small n of a seed count (3-10) and
for rates at 0 or 1, where the normal (Wald) interval collapses to a point (Brown, Cai & DasGupta
2001). The percentile bootstrap (Efron & Tibshirani 1993) needs no distributional form, which set
statistics such as the Fréchet distance do not have; its intervals are seeded, so the same inputs
give the same interval. "Not distinguishable" is the conservative reading of two 95 % intervals that
overlap: a reader should not rank two settings whose intervals share values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import norm

__all__ = ["bootstrap_interval", "bootstrap_rows", "distinguishable", "wilson_interval"]

LEVEL = 0.95
N_BOOTSTRAP = 1000


def wilson_interval(k: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n; (nan, nan) when n == 0."""
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Clip rounding: at k = 0 the lower end is exactly 0, at k = n the upper end exactly 1.
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_rows(
    statistic: Callable[[np.ndarray], float],
    n: int,
    n_boot: int = N_BOOTSTRAP,
    level: float = LEVEL,
    seed: int = 0,
    bias_correct: bool = False,
) -> tuple[float, float]:
    """Percentile interval of `statistic(indices)` over `n_boot` resamples of range(n) with replacement.

    `statistic` receives an index array (length n, with repeats) and returns one number computed on
    those rows, so several aligned arrays can be resampled together. Non-finite resample values are
    dropped; (nan, nan) if fewer than half are finite or n < 2.

    `bias_correct`: shift the interval by the bootstrap's own bias, mean(resamples) - statistic(all
    rows), clipped at 0 from below. Set statistics need it: a resample repeats ~37 % of its rows, which
    shrinks the set's spread and coverage, so resampled Fréchet distances run high and coverages low and
    a plain percentile interval can miss the estimate itself (seen: FD 11.9 with [12.7, 29.2]).
    """
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(int(n_boot))], dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < n_boot / 2:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    if bias_correct:
        estimate = float(statistic(np.arange(n)))
        bias = float(values.mean()) - estimate
        low, high = max(0.0, low - bias), max(0.0, high - bias)
        # a constant statistic (every resample equal) must not miss itself by a rounding error
        low, high = min(low, estimate), max(high, estimate)
    return float(low), float(high)


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.median,
    n_boot: int = N_BOOTSTRAP,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over one sample of numbers (finite ones only).

    With one value the interval is that value (nothing to resample: the caller reports n = 1);
    with none it is (nan, nan).
    """
    x = np.asarray([v for v in np.asarray(values, dtype=np.float64).ravel() if math.isfinite(v)])
    if len(x) == 0:
        return float("nan"), float("nan")
    if len(x) == 1:
        return float(x[0]), float(x[0])
    return bootstrap_rows(lambda idx: float(statistic(x[idx])), len(x), n_boot, level, seed)


def distinguishable(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when intervals a and b do not overlap (both finite); False when they share any value."""
    if not all(math.isfinite(v) for v in (*a, *b)):
        return False
    return a[1] < b[0] or b[1] < a[0]
