"""Run-level stability figures and the across-seed summary on constructed histories."""

import math

import numpy as np
import pytest

from wavegan.metrics.seeds import summarize_seeds
from wavegan.metrics.stability import rolling_std, run_stability

MAX_STEPS = 400
STEPS = list(range(10, MAX_STEPS + 1, 10))  # logged every 10 steps


def series(values, steps=STEPS):
    return [(s, float(v)) for s, v in zip(steps, values, strict=False)]


def history(d_loss, g_loss, fd=(), reference=28.0, steps=STEPS):
    eval_steps = [100, 200, 300, 400][: len(fd)]
    out = {"train/d_loss": series(d_loss, steps), "train/g_loss": series(g_loss, steps)}
    if fd:
        out["eval/frechet_distance"] = series(fd, eval_steps)
        out["eval/reference/frechet_distance"] = series([reference] * len(fd), eval_steps)
    return out


def smooth_run():
    rng = np.random.default_rng(0)
    t = np.arange(len(STEPS))
    d = -8 * np.exp(-t / 8) - 1 + 0.02 * rng.normal(size=len(t))
    g = 4 * np.exp(-t / 8) + 0.5 + 0.02 * rng.normal(size=len(t))
    return history(d, g, fd=[300, 120, 60, 40])


def oscillating_run():
    t = np.arange(len(STEPS))
    d = -3 + 3 * np.sin(2 * np.pi * t / 6)
    g = 1 + 2 * np.cos(2 * np.pi * t / 5)
    return history(d, g, fd=[300, 150, 200, 120])


def diverged_run():
    steps = STEPS[:20]  # diverged at step 200: nothing logged after
    t = np.arange(len(steps))
    d = -8 * np.exp(-t / 8) - 1 + 0.1 * t**2 / 40
    g = 4 * np.exp(-t / 8) + 0.5 + 0.1 * t**2 / 40
    return history(d, g, fd=[300, 200], steps=steps)


def test_rolling_std_values():
    assert rolling_std([1, 1, 1, 1], 2).tolist() == [0, 0, 0]
    assert rolling_std([0, 2, 0, 2], 2).tolist() == [1, 1, 1]
    assert rolling_std([0, 2, 4], 3) == pytest.approx([np.std([0, 2, 4])])
    assert rolling_std([0, 2], 5) == pytest.approx([1.0])  # fewer values than the window: one figure
    assert len(rolling_std([1.0], 5)) == 0
    assert rolling_std([0, float("nan"), 2], 2) == pytest.approx([1.0])  # non-finite values dropped


def test_smooth_run_figures():
    out = run_stability(smooth_run(), "completed", None, MAX_STEPS)
    assert out["stability/diverged"] == 0 and out["stability/diverged_step"] == MAX_STEPS
    assert out["stability/final_quality"] == 40 and out["stability/best_quality"] == 40
    assert out["stability/quality_factor"] == pytest.approx(28 / 40)
    assert out["stability/survival"] == 1.0 and out["stability/calm"] > 0.9
    assert 0.6 < out["stability/score"] <= 1.0


def test_diverged_run_figures():
    out = run_stability(diverged_run(), "diverged", 200, MAX_STEPS)
    assert out["stability/diverged"] == 1 and out["stability/diverged_step"] == 200
    assert out["stability/survival"] == pytest.approx(0.5 * 200 / 400)
    assert out["stability/final_quality"] == 200
    # an outcome of "diverged" without a step: the last logged step
    assert run_stability(diverged_run(), "diverged", None, MAX_STEPS)["stability/diverged_step"] == 200


def test_score_ranks_smooth_over_oscillating_over_diverged():
    smooth = run_stability(smooth_run(), "completed", None, MAX_STEPS)
    oscillating = run_stability(oscillating_run(), "completed", None, MAX_STEPS)
    diverged = run_stability(diverged_run(), "diverged", 200, MAX_STEPS)
    assert oscillating["stability/d_loss_osc"] > 10 * smooth["stability/d_loss_osc"]
    assert oscillating["stability/g_loss_osc"] > 10 * smooth["stability/g_loss_osc"]
    assert smooth["stability/score"] > oscillating["stability/score"] > diverged["stability/score"]
    for out in (smooth, oscillating, diverged):
        assert 0.0 <= out["stability/score"] <= 1.0
    # the same order on the stability factors alone (no quality figure to tell the runs apart)
    scores = [
        run_stability(h, o, d, MAX_STEPS, quality_key="eval/none")["stability/score"]
        for h, o, d in (
            (smooth_run(), "completed", None),
            (oscillating_run(), "completed", None),
            (diverged_run(), "diverged", 200),
        )
    ]
    assert scores[0] > 0.9 and scores[0] > scores[1] > scores[2]


def test_oscillation_is_unit_free():
    base = run_stability(oscillating_run(), "completed", None, MAX_STEPS)
    h = oscillating_run()
    scaled = {k: [(s, 50 * v) for s, v in h[k]] if k.startswith("train/") else h[k] for k in h}
    out = run_stability(scaled, "completed", None, MAX_STEPS)
    assert out["stability/calm"] == pytest.approx(base["stability/calm"])
    assert out["stability/d_loss_osc"] == pytest.approx(50 * base["stability/d_loss_osc"])


def test_quality_reference_and_direction():
    h = smooth_run()
    assert run_stability(h, "completed", None, MAX_STEPS, reference=40.0)["stability/quality_factor"] == 1.0
    h["eval/inception_score"] = series([2.0, 6.0, 5.0], [100, 200, 300])
    out = run_stability(h, "completed", None, MAX_STEPS, quality_key="eval/inception_score", reference=10.0)
    assert out["stability/best_quality"] == 6.0 and out["stability/final_quality"] == 5.0
    assert out["stability/quality_factor"] == pytest.approx(0.5)


def test_no_evaluation_leaves_quality_unknown_not_penalised():
    h = smooth_run()
    del h["eval/frechet_distance"], h["eval/reference/frechet_distance"]
    out = run_stability(h, "completed", None, MAX_STEPS)
    assert math.isnan(out["stability/final_quality"]) and out["stability/quality_factor"] == 1.0
    assert run_stability({}, "completed", None, MAX_STEPS)["stability/score"] == 1.0


# -- across seeds ------------------------------------------------------------------------------------


def runs(*pairs):
    return [{"outcome": o, "eval/frechet_distance": q, "stability/score": 0.5} for o, q in pairs]


def test_summarize_seeds_counts_and_quantiles():
    out = summarize_seeds(runs(("completed", 10), ("completed", 12), ("completed", 14), ("diverged", 900)))
    assert out["seeds/count"] == 4 and out["seeds/diverged"] == 1
    assert out["seeds/divergence_rate"] == 0.25
    assert out["seeds/quality_median"] == 12 and out["seeds/quality_iqr"] == pytest.approx(2.0)
    assert (out["seeds/quality_min"], out["seeds/quality_max"], out["seeds/quality_best"]) == (10, 14, 10)
    assert out["seeds/stability_score"] == pytest.approx(0.75 / (1 + 2 / 12))
    assert out["seeds/run_score_median"] == 0.5


def test_failed_runs_are_left_out_and_direction_is_explicit():
    out = summarize_seeds(runs(("completed", 10), ("failed", float("nan"))))
    assert out["seeds/count"] == 1 and out["seeds/failed"] == 1 and out["seeds/divergence_rate"] == 0
    ins = [{"outcome": "completed", "eval/inception_score": v} for v in (3.0, 5.0, 4.0)]
    assert summarize_seeds(ins, quality_key="eval/inception_score")["seeds/quality_best"] == 5.0
    assert (
        summarize_seeds(ins, quality_key="eval/inception_score", lower_is_better=True)["seeds/quality_best"]
        == 3.0
    )


def test_seed_score_rewards_fewer_divergences_and_less_spread():
    tight = summarize_seeds(runs(("completed", 10), ("completed", 10.5), ("completed", 11)))
    spread = summarize_seeds(runs(("completed", 5), ("completed", 10.5), ("completed", 30)))
    failing = summarize_seeds(runs(("completed", 10), ("diverged", 1), ("diverged", 1)))
    assert tight["seeds/stability_score"] > spread["seeds/stability_score"]
    assert tight["seeds/stability_score"] > failing["seeds/stability_score"]
    assert summarize_seeds(runs(("diverged", 1), ("diverged", 2)))["seeds/stability_score"] == 0.0
    one = summarize_seeds(runs(("completed", 10)))
    assert one["seeds/stability_score"] == 1.0 and one["seeds/quality_iqr"] == 0.0
    empty = summarize_seeds([])
    assert empty["seeds/count"] == 0 and math.isnan(empty["seeds/stability_score"])
