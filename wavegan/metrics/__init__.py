"""Sample quality, run stability and multi-seed summaries (DESIGN.md section 5).

    quality.py          pure metric functions: IS, Fréchet distance, class coverage/entropy, NDB, NN distances
    features.py         log-mel features the metrics are computed on
    classifier.py       the quality classifier trained on the data set's own labels: settings, prediction,
                        cross-validation; its models: discriminant.py (small data), cnn.py (larger data)
    classifier_fit.py   which rows fit and which measure the classifier; fitting it, its held-out accuracy
    reference_cache.py  the per-store cache: classifier, NDB's k-means, features of every real clip
    evaluator.py        Evaluator: score() and reference() of clips against a store's cache
    stability.py        run-level figures (stability/...) from a run's metric history
    seeds.py            across-seed summary (seeds/...) of one configuration

Importing this package does not import TensorFlow: the stability and seed summaries run in sweep
drivers and reports that should not pay for it.
"""

from wavegan.metrics.quality import (
    class_coverage,
    frechet_distance,
    inception_score,
    lower_is_better,
    ndb,
    nearest_neighbour_distances,
)
from wavegan.metrics.seeds import summarize_seeds
from wavegan.metrics.stability import rolling_std, run_stability

__all__ = [
    "Evaluator",
    "class_coverage",
    "frechet_distance",
    "inception_score",
    "lower_is_better",
    "ndb",
    "nearest_neighbour_distances",
    "rolling_std",
    "run_stability",
    "summarize_seeds",
]


def __getattr__(name: str):
    # Lazy: the Evaluator pulls in librosa and, for labelled data, TensorFlow.
    if name == "Evaluator":
        from wavegan.metrics.evaluator import Evaluator

        return Evaluator
    raise AttributeError(f"module 'wavegan.metrics' has no attribute {name!r}")
