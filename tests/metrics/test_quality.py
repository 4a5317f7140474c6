"""Each quality metric against values known in closed form (wavegan/metrics/quality.py)."""

import numpy as np
import pytest
from scipy import linalg
from scipy.spatial.distance import cdist

from wavegan.metrics.quality import (
    class_coverage,
    frechet_distance,
    inception_score,
    lower_is_better,
    ndb,
    ndb_from_bins,
    nearest_neighbour_distances,
)


def one_hot(labels, num_classes):
    return np.eye(num_classes)[np.asarray(labels)]


# -- Inception Score ---------------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [2, 5, 11])
def test_inception_score_of_confident_balanced_predictions_is_the_number_of_classes(num_classes):
    probs = one_hot(np.tile(np.arange(num_classes), 7), num_classes)
    assert inception_score(probs) == pytest.approx(num_classes, rel=1e-9)


def test_inception_score_of_identical_rows_is_one():
    row = np.array([0.7, 0.2, 0.1])
    assert inception_score(np.tile(row, (50, 1))) == pytest.approx(1.0)
    assert inception_score(one_hot([2] * 30, 4)) == pytest.approx(1.0)


def test_inception_score_splits_average_the_parts():
    probs = one_hot(np.tile(np.arange(4), 10), 4)  # each half is balanced: 4 in both
    assert inception_score(probs, splits=2) == pytest.approx(4.0)
    halves = np.concatenate([one_hot([0] * 20, 4), one_hot([1] * 20, 4)])  # each half one class
    assert inception_score(halves, splits=2) == pytest.approx(1.0)
    assert inception_score(halves, splits=1) == pytest.approx(2.0)


# -- Fréchet distance --------------------------------------------------------------------------------


def test_frechet_distance_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_shifted_sets_is_the_squared_shift():
    x = np.random.default_rng(1).normal(size=(400, 6))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 0.25])
    assert frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-8)


def test_frechet_distance_of_gaussians_matches_the_formula():
    # N(0, I) against N(mu, 4 I) in D dims: ||mu||^2 + D (1 + 4 - 2 * 2) = ||mu||^2 + D.
    rng = np.random.default_rng(2)
    d, mu = 4, np.full(4, 0.5)
    a = rng.normal(size=(200_000, d))
    b = mu + 2.0 * rng.normal(size=(200_000, d))
    assert frechet_distance(a, b) == pytest.approx(float(mu @ mu) + d, rel=0.02)


def test_frechet_distance_agrees_with_scipy_sqrtm_and_survives_singular_covariances():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(100, 10)), rng.normal(size=(80, 10)) @ rng.normal(size=(10, 10))
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(0) - b.mean(0)
    expected = diff @ diff + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    few = rng.normal(size=(5, 32))  # 5 examples in 32 dims: rank-4 covariances
    fd = frechet_distance(few, few + 0.1)
    assert np.isfinite(fd) and fd == pytest.approx(32 * 0.01, rel=1e-4)


def test_frechet_distance_rejects_mismatched_or_tiny_sets():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


# -- class coverage and entropy ----------------------------------------------------------------------


def test_class_coverage_and_entropy_on_hand_made_histograms():
    assert class_coverage(one_hot([0, 1, 2, 3] * 5, 4)) == pytest.approx((1.0, 1.0))
    assert class_coverage(one_hot([3] * 20, 4)) == pytest.approx((0.25, 0.0))
    coverage, entropy = class_coverage(one_hot([0, 0, 1, 1], 4))
    assert coverage == 0.5 and entropy == pytest.approx(np.log(2) / np.log(4))
    # 3:1 over two of four classes: H = -(3/4 ln 3/4 + 1/4 ln 1/4) / ln 4
    coverage, entropy = class_coverage(one_hot([0, 0, 0, 1], 4))
    assert coverage == 0.5
    assert entropy == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)) / np.log(4))
    assert class_coverage(one_hot([0, 0, 0, 1], 4), min_count=2)[0] == 0.25


def test_class_coverage_uses_the_argmax_of_soft_predictions():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.4, 0.35, 0.25]])
    assert class_coverage(probs)[0] == pytest.approx(2 / 3)


# -- NDB ---------------------------------------------------------------------------------------------


class BinsFromFirstColumn:
    """A stand-in for a fitted KMeans: the bin is the first feature (so bin shares are hand-made)."""

    def __init__(self, n_clusters):
        self.n_clusters = n_clusters

    def predict(self, x):
        return np.asarray(x)[:, 0].astype(int)


def bins(counts):
    return np.repeat(np.arange(len(counts)), counts)[:, None].astype(np.float32)


def test_ndb_two_proportion_test_on_hand_made_bins():
    assigner = BinsFromFirstColumn(2)
    # 50/50 against 70/30 with 100 each: z = 0.2 / sqrt(0.24 * 0.02) = 2.89, p = 0.004: both bins differ.
    assert ndb(bins([50, 50]), bins([70, 30]), kmeans=assigner)[0] == 1.0
    # 50/50 against 55/45: z = 0.71, p = 0.48: no bin differs.
    assert ndb(bins([50, 50]), bins([55, 45]), kmeans=assigner)[0] == 0.0


def test_ndb_js_divergence_is_zero_for_equal_shares_and_one_for_disjoint_bins():
    assigner = BinsFromFirstColumn(10)
    same = ndb(bins([40] * 5 + [0] * 5), bins([8] * 5 + [0] * 5), kmeans=assigner)
    assert same == (0.0, pytest.approx(0.0, abs=1e-12))
    disjoint = ndb(bins([40] * 5 + [0] * 5), bins([0] * 5 + [8] * 5), kmeans=assigner)
    assert disjoint == (1.0, pytest.approx(1.0))


def js_divergence_by_definition(p, q):
    """JS(p, q) = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2, base 2, 0 log 0 = 0 (the formula
    quality.py wrote out by hand before it used scipy.spatial.distance.jensenshannon)."""
    m = (p + q) / 2

    def kl(x):
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return (kl(p) + kl(q)) / 2


def test_ndb_js_divergence_equals_the_definition_on_random_histograms():
    rng = np.random.default_rng(4)
    for trial in range(200):
        k = int(rng.integers(2, 60))
        train_counts = rng.integers(0, 50, size=k) * (rng.random(k) > 0.2)  # some empty bins
        train_counts[0] += 1
        gen_bins = (
            rng.integers(0, k, size=int(rng.integers(1, 400)))
            if trial % 2
            else rng.choice(k, size=300, p=rng.dirichlet(np.full(k, 0.3)))
        )
        js = ndb_from_bins(train_counts, gen_bins)[1]
        gen_counts = np.bincount(gen_bins, minlength=k)
        expected = js_divergence_by_definition(
            train_counts / train_counts.sum(), gen_counts / gen_counts.sum()
        )
        assert js == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert 0.0 <= js <= 1.0


def test_ndb_js_divergence_of_nearly_equal_shares_is_a_number():
    counts = np.full(7, 10**9) + np.arange(7)  # shares that differ in the 10th digit
    js = ndb_from_bins(counts, np.repeat(np.arange(7), 1000))[1]
    assert js == pytest.approx(0.0, abs=1e-12)


def mixture(n, rng, offset=0.0):
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6], [3, 12]], float) + offset
    return centres[rng.integers(len(centres), size=n)] + rng.normal(size=(n, 2))


def test_ndb_on_samples_of_the_training_distribution_is_about_the_false_positive_rate():
    rng = np.random.default_rng(0)
    train = mixture(5000, rng)
    from wavegan.metrics.quality import fit_kmeans

    kmeans = fit_kmeans(train, k=20, seed=0)
    rates = [ndb(train, mixture(1000, rng), kmeans=kmeans)[0] for _ in range(10)]
    assert np.mean(rates) <= 0.12  # alpha = 0.05 in expectation
    far = ndb(train, mixture(1000, rng, offset=100.0), kmeans=kmeans)
    assert far[0] >= 0.9 and far[1] > 0.5


def test_ndb_fits_its_own_kmeans_when_none_is_given():
    rng = np.random.default_rng(1)
    train = mixture(2000, rng)
    rate, js = ndb(train, train[:500], k=10, seed=0)
    assert 0.0 <= rate <= 0.3 and js < 0.05


# -- nearest neighbours ------------------------------------------------------------------------------


def test_nearest_neighbour_distances_on_constructed_points():
    train = np.array([[0.0, 0.0], [10.0, 0.0]])
    gen = np.array([[1.0, 0.0], [1.0, 0.0], [10.0, 3.0]])
    out = nearest_neighbour_distances(gen, train)
    assert out["nn_to_train"] == pytest.approx((1 + 1 + 3) / 3)
    # the two duplicates are each other's neighbour (0); the third is sqrt(81 + 9) from them
    assert out["nn_to_generated"] == pytest.approx(np.sqrt(90) / 3, abs=1e-6)


def test_memorised_and_collapsed_sets_have_zero_distances():
    train = np.random.default_rng(0).normal(size=(50, 16))
    assert nearest_neighbour_distances(train[:20], train)["nn_to_train"] == pytest.approx(0, abs=1e-6)
    assert nearest_neighbour_distances(np.tile(train[:1], (10, 1)), train)[
        "nn_to_generated"
    ] == pytest.approx(0, abs=1e-6)


def test_nearest_neighbour_distances_equal_brute_force_on_random_sets():
    rng = np.random.default_rng(5)
    for n_gen, n_train, dim in [(40, 70, 3), (300, 600, 64), (129, 513, 1024)]:
        gen = rng.normal(size=(n_gen, dim))
        gen[1] = gen[0]  # an exact duplicate: each is the other's neighbour
        train = rng.normal(size=(n_train, dim))
        among = cdist(gen, gen)
        np.fill_diagonal(among, np.inf)
        out = nearest_neighbour_distances(gen, train)
        assert out["nn_to_train"] == pytest.approx(cdist(gen, train).min(axis=1).mean(), rel=1e-9)
        assert out["nn_to_generated"] == pytest.approx(among.min(axis=1).mean(), rel=1e-9)


def test_metric_directions():
    assert not lower_is_better("eval/inception_score")
    assert not lower_is_better("eval/reference/class_coverage")
    assert lower_is_better("eval/frechet_distance") and lower_is_better("eval/ndb_over_k")
