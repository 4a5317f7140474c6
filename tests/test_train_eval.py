"""A training run with sample-quality evaluation: eval/ at intervals and at the end, the held-out
reference at step 0, and run-level stability/ figures for completed and diverged runs alike."""

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from tests.conftest import TINY
from wavegan.cli import compose
from wavegan.train import train

WITH_EVAL = [
    *[o for o in TINY if not o.startswith(("eval.enabled", "data.slice_len", "data.num_samples"))],
    "data.slice_len=4096",
    "data.num_samples=240",
    "eval.every=2",
    "eval.num_samples=32",
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
