"""A training run with sample-quality evaluation: eval/ at intervals and at the end, the held-out
reference at step 0, and run-level stability/ figures for completed and diverged runs alike."""

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from tests.conftest import TINY
from wavegan.cli.app import compose
from wavegan.training.run import train

WITH_EVAL = [
    *[o for o in TINY if not o.startswith(("eval.enabled", "data.slice_len", "data.num_samples"))],
    "data.slice_len=4096",
    "data.num_samples=240",
    "eval.every=2",
    "eval.num_samples=32",
    "eval.classifier.cv_folds=0",  # the classifier's cross-validation has its own tests (test_classifier_fit)
    "tracking.log_model=false",
]


def test_eval_metrics_reference_and_stability_are_logged():
    result = train(compose(WITH_EVAL))
    assert result.outcome == "completed"
    client = MlflowClient(mlflow.get_tracking_uri())
    steps = [m.step for m in client.get_metric_history(result.run_id, "eval/frechet_distance")]
    assert steps == [2, 4]
    metrics = client.get_run(result.run_id).data.metrics
    for key in (
        "eval/inception_score",
        "eval/class_coverage",
        "eval/ndb_over_k",
        "eval/nn_to_train",
        "eval/reference/frechet_distance",
        "stability/score",
        "stability/diverged",
    ):
        assert key in metrics, key
    assert metrics["stability/diverged"] == 0 and 0.0 <= metrics["stability/score"] <= 1.0
    # an untrained generator is far from the data; held-out real data is close to it
    assert metrics["eval/frechet_distance"] > metrics["eval/reference/frechet_distance"]


def test_a_diverged_run_still_gets_stability_figures():
    result = train(compose([*WITH_EVAL, "trainer.loss_bound=1e-9"]))
    assert result.outcome == "diverged"
    assert result.metrics["stability/diverged"] == 1.0
    assert np.isfinite(result.metrics["stability/score"])


def test_generated_and_reference_sets_are_scored_at_the_same_n_with_intervals():
    """eval.num_samples above the held-out count: both sides drop to the held-out count (FD is biased
    by 1/N, NDB's power grows with N), and every headline figure has its bootstrap interval."""
    result = train(compose([*WITH_EVAL, "eval.num_samples=100000", "trainer.max_steps=2"]))
    metrics = result.metrics
    n = metrics["eval/reference/num_samples"]
    assert metrics["eval/num_samples"] == n and 2 <= n < 100000
    for prefix in ("eval/", "eval/reference/"):
        for name in ("frechet_distance", "inception_score", "ndb_over_k", "class_coverage"):
            low, value, high = (metrics[f"{prefix}{name}{s}"] for s in ("_ci_low", "", "_ci_high"))
            assert low <= value <= high, (prefix, name, low, value, high)
        # a count-based figure of an untrained G can be the same in every resample; FD never is
        assert metrics[f"{prefix}frechet_distance_ci_low"] < metrics[f"{prefix}frechet_distance_ci_high"]
    assert metrics["eval/inception_score_std"] >= 0
    assert not any(k.startswith("eval/reference_raw/") for k in metrics)  # waveforms: no round trip


def test_a_spectrogram_model_is_read_against_the_round_trip_of_real_clips():
    """The reference of a spectrogram model is held-out audio after transform -> clip -> Griffin-Lim: the
    ceiling it can reach. The raw clips' figures stay visible as eval/reference_raw/."""
    from wavegan.data.pipeline import load_features
    from wavegan.data.store import open_store
    from wavegan.metrics.evaluator import Evaluator
    from wavegan.training.evaluation import reference_figures

    cfg = compose([*WITH_EVAL, "model=dcgan", "data.slice_len=16384", "data.num_samples=160"])
    store = open_store(cfg.data, progress=False)
    _, representation = load_features(store, cfg.preprocessing)
    evaluator = Evaluator.for_store(store, cfg.eval)
    figures = reference_figures(evaluator, store, representation)
    raw, reachable = (
        figures["eval/reference_raw/mel_frechet_distance"],
        figures["eval/reference/mel_frechet_distance"],
    )
    # Griffin-Lim and the 3-sigma clip lose detail: the reachable figure is worse than the raw one.
    assert reachable > raw
    assert figures["eval/reference/num_samples"] == figures["eval/reference_raw/num_samples"]
