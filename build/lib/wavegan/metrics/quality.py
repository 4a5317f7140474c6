"""Sample-quality and diversity metrics as pure functions of feature arrays (numpy, scipy, scikit-learn).

Each function states its definition; none knows about audio, classifiers or files, so each can be
checked against closed-form values (tests/metrics/test_quality.py). Which features they are fed is the
Evaluator's business (wavegan/metrics/evaluator.py).

Direction: Inception Score, class coverage and class entropy are higher-is-better; every other figure
here (Fréchet distance, NDB/K, JS divergence) is lower-is-better. Nearest-neighbour distances have no
direction on their own: read them against the held-out reference (too small to train = memorisation,
too small among generated = low diversity).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.special import ndtr
from sklearn.neighbors import NearestNeighbors

__all__ = [
    "HIGHER_IS_BETTER",
    "GaussianStats",
    "class_coverage",
    "fit_kmeans",
    "frechet_distance",
    "inception_score",
    "inception_score_std",
    "lower_is_better",
    "ndb",
    "ndb_from_bins",
    "nearest_neighbour_distances",
    "one_thread",
]

# Metric names (without the eval/ or eval/reference/ prefix) where a larger value is better.
HIGHER_IS_BETTER = frozenset({"inception_score", "class_coverage", "class_entropy"})

_EPS = 1e-12


def lower_is_better(key: str) -> bool:
    """Whether a metric key (`eval/frechet_distance`, `eval/reference/inception_score`, ...) improves
    downwards. Unknown names count as lower-is-better, like distances and divergences."""
    return key.rsplit("/", 1)[-1] not in HIGHER_IS_BETTER


def inception_score(probs: np.ndarray, splits: int = 1) -> float:
    """IS = exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the set (Salimans et al. 2016).

    `probs` [N, C] are a classifier's class probabilities. IS lies in [1, C]: 1 when every example gets
    the same distribution (one class, or equally unsure everywhere), C when predictions are confident
    and classes are used equally often. With `splits` > 1 the set is cut into that many equal parts
    and the mean of their scores is returned (the original reports 10 splits; small sets need 1).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"expected class probabilities [N, C], got shape {p.shape}")
    p = p / np.maximum(p.sum(axis=1, keepdims=True), _EPS)  # tolerate float32 rounding
    scores = []
    for part in np.array_split(p, max(1, int(splits))):
        if len(part) == 0:
            continue
        marginal = part.mean(axis=0, keepdims=True)
        # 0 log 0 = 0: classes with zero probability contribute nothing.
        kl = np.where(
            part > 0, part * (np.log(np.maximum(part, _EPS)) - np.log(np.maximum(marginal, _EPS))), 0
        )
        scores.append(float(np.exp(kl.sum(axis=1).mean())))
    return float(np.mean(scores))


def inception_score_std(probs: np.ndarray, splits: int) -> float:
    """Standard deviation of the Inception Score over `splits` equal parts (what the reference reports
    beside the mean); 0 for one split."""
    p = np.asarray(probs, dtype=np.float64)
    scores = [inception_score(part) for part in np.array_split(p, max(1, int(splits))) if len(part)]
    return float(np.std(scores))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative rounding noise clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _as_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


class GaussianStats:
    """Mean, covariance and the covariance's symmetric square root of one feature set [N, D].

    Computed once for the fixed side of a Fréchet distance (the training set), so scoring a generated
    set, or a thousand bootstrap resamples of it, costs one covariance and one eigendecomposition each.
    """

    def __init__(self, features: np.ndarray) -> None:
        a = _as_rows(features)
        if a.ndim != 2 or len(a) < 2:
            raise ValueError(f"the Fréchet distance needs at least 2 examples [N, D], got shape {a.shape}")
        self.mean = a.mean(axis=0)
        self.cov = np.atleast_2d(np.cov(a, rowvar=False))
        self.root = _sqrt_psd(self.cov)
        self.trace = float(np.trace(self.cov))

    def frechet_distance(self, features: np.ndarray) -> float:
        """FD between these statistics and a Gaussian fitted to `features` [M, D] (see frechet_distance)."""
        b = _as_rows(features)
        if b.ndim != 2 or b.shape[1] != len(self.mean):
            raise ValueError(f"expected features [M, {len(self.mean)}], got shape {b.shape}")
        if len(b) < 2:
            raise ValueError("the Fréchet distance needs at least 2 examples in each set")
        mean_diff = self.mean - b.mean(axis=0)
        cov_b = np.atleast_2d(np.cov(b, rowvar=False))
        inner = self.root @ cov_b @ self.root
        trace_cross = float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum())
        fd = float(mean_diff @ mean_diff + self.trace + np.trace(cov_b) - 2.0 * trace_cross)
        return max(fd, 0.0)  # rounding can leave -1e-12 for identical sets


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to two sets.

    `a` [N, D] and `b` [M, D] (rows are examples; 1-D input is one feature). Covariances are unbiased
    (ddof 1). Stable square root: Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), and the
    inner matrix is symmetric PSD, so both roots come from symmetric eigendecompositions: no complex
    parts and no failure on the singular covariances that small sets (N < D) give, where scipy's
    sqrtm needs the usual epsilon-on-the-diagonal retry. FD is 0 for identical sets; it depends on the
    set sizes (a finite-sample bias of order 1/M), so compare figures computed at equal sizes.
    """
    a, b = _as_rows(a), _as_rows(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected feature sets [N, D] and [M, D], got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 examples in each set")
    return GaussianStats(a).frechet_distance(b)


def class_coverage(probs: np.ndarray, min_count: int = 1) -> tuple[float, float]:
    """(coverage, entropy) of the predicted-label histogram (argmax of `probs` [N, C]).

    coverage: the fraction of the C classes predicted for at least `min_count` examples (1 by default:
    "predicted at least once"; raise it to ignore stray predictions in large sets). entropy: Shannon
    entropy of the predicted-label histogram divided by log C, so 1 is every class equally often and
    0 is a single class. Mode collapse shows as both falling; entropy also sees imbalance that
    coverage misses.
    """
    p = np.asarray(probs)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"expected class probabilities [N, C], got shape {p.shape}")
    num_classes = p.shape[1]
    counts = np.bincount(np.argmax(p, axis=1), minlength=num_classes).astype(np.float64)
    coverage = float(np.mean(counts >= max(1, int(min_count))))
    if num_classes < 2:
        return coverage, 0.0
    share = counts / counts.sum()
    share = share[share > 0]
    entropy = max(0.0, float(-(share * np.log(share)).sum() / np.log(num_classes)))
    return coverage, entropy


class _Assigner(Protocol):
    def predict(self, x: np.ndarray) -> np.ndarray: ...


def fit_kmeans(train_features: np.ndarray, k: int = 50, seed: int = 0):
    """The k-means that NDB bins by (scikit-learn KMeans, k capped at the number of examples)."""
    from sklearn.cluster import KMeans

    x = np.asarray(train_features, dtype=np.float32)
    k = int(min(k, len(x)))
    with one_thread():
        return KMeans(n_clusters=k, n_init=3, max_iter=100, random_state=seed).fit(x)


def one_thread():
    """A context in which numpy/scipy/scikit-learn use one thread (OpenMP and BLAS).

    On these small problems the threads mostly wait for each other: on 2 busy cores, beside
    TensorFlow's pools, k-means on 1640 x 1024 took 10 s instead of 0.8 s and log-mels of 2048 clips
    2.4-8.8 s instead of 0.6 s. The Evaluator runs its numpy work inside it.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def ndb(
    train_features: np.ndarray,
    gen_features: np.ndarray,
    k: int = 50,
    alpha: float = 0.05,
    seed: int = 0,
    kmeans: _Assigner | None = None,
) -> tuple[float, float]:
    """(NDB/K, JS divergence): number of statistically different bins (Richardson & Weiss 2018).

    k-means with K centres on the training features (or the fitted `kmeans` given, so an evaluator
    fits once); every training and generated example goes to its nearest centre; per bin, a
    two-proportion z-test (pooled proportion, two-sided) of the training share against the generated
    share; NDB is the number of bins with p < `alpha`, reported over K. With samples from the training
    distribution NDB/K is about `alpha` (the test's false-positive rate); when generated samples fill
    other bins or only a few, it tends to 1. The JS divergence is that of the two bin-share
    histograms, base 2, so it lies in [0, 1] (0: same shares; 1: disjoint bins).
    """
    train = np.asarray(train_features, dtype=np.float32)
    gen = np.asarray(gen_features, dtype=np.float32)
    if kmeans is None:
        kmeans = fit_kmeans(train, k, seed)
    k = int(getattr(kmeans, "n_clusters", k))
    with one_thread():
        train_counts = np.bincount(kmeans.predict(train), minlength=k).astype(np.float64)
        gen_bins = kmeans.predict(gen)
    return ndb_from_bins(train_counts, gen_bins, alpha)


def ndb_from_bins(train_counts: np.ndarray, gen_bins: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """NDB/K and JS divergence from the training set's per-bin counts [K] and each generated example's
    bin index [M] (the test of `ndb`, without the k-means assignment)."""
    train_counts = np.asarray(train_counts, dtype=np.float64)
    k = len(train_counts)
    gen_counts = np.bincount(np.asarray(gen_bins), minlength=k).astype(np.float64)
    n_train, n_gen = train_counts.sum(), gen_counts.sum()
    p_train, p_gen = train_counts / n_train, gen_counts / n_gen
    pooled = (train_counts + gen_counts) / (n_train + n_gen)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_train + 1 / n_gen))
    z = np.divide(p_gen - p_train, se, out=np.zeros(k), where=se > 0)
    p_values = 2 * ndtr(-np.abs(z))  # two-sided normal tail
    different = int(np.sum((p_values < alpha) & (se > 0)))
    return different / k, _js_divergence(p_train, p_gen)


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two histograms, base 2, in [0, 1].

    SciPy's `jensenshannon` returns the JS *distance*, the square root of the divergence (a metric);
    squared, it is the divergence this figure has always been.
    """
    with np.errstate(invalid="ignore"):
        distance = float(jensenshannon(p, q, base=2))
    if math.isnan(distance) and np.isfinite(p).all() and np.isfinite(q).all():
        distance = 0.0  # nearly equal shares can round to a hair below 0 under the root: that is 0
    return float(np.clip(distance**2, 0.0, 1.0))


def nearest_neighbour_distances(gen: np.ndarray, train: np.ndarray) -> dict[str, float]:
    """Mean Euclidean distance from each generated example to its nearest neighbour (WaveGAN paper).

    `nn_to_train`: to the nearest training example (small: memorisation; compare with held-out real
    data, whose distance to the training set is the honest level). `nn_to_generated`: to the nearest
    other generated example, itself excluded but exact duplicates counted (small: low diversity; a
    generator that repeats one sample gets 0). Inputs are feature vectors [N, D]; the distance is
    plain Euclidean in whatever space the caller chose (the Evaluator: standardised, time-pooled
    log-mel scaled by 1/sqrt(D), i.e. root-mean-square difference per feature).
    """
    g = np.asarray(gen, dtype=np.float64)
    t = np.asarray(train, dtype=np.float64)
    g = g.reshape(len(g), -1)
    t = t.reshape(len(t), -1)
    if len(g) == 0 or len(t) == 0 or g.shape[1] != t.shape[1]:
        raise ValueError(f"expected non-empty feature sets with equal widths, got {g.shape} and {t.shape}")
    to_train = float(NearestNeighbors(n_neighbors=1).fit(t).kneighbors(g)[0].mean())
    # kneighbors() without a query set leaves each point out of its own neighbours (by index, so an
    # exact duplicate still counts).
    to_gen = float(NearestNeighbors(n_neighbors=1).fit(g).kneighbors()[0].mean()) if len(g) > 1 else math.nan
    return {"nn_to_train": to_train, "nn_to_generated": to_gen}
