"""Run-level stability figures (wavegan/metrics/stability.py) on constructed histories.

The scenario suite builds realistic synthetic runs (classifier Fréchet distance from ~3000 at the first
evaluation, held-out reference 30, a good run reaching ~200; 2000 steps, losses logged every 20, evaluated
every 200) and checks that `stability/score` orders them as a GAN researcher would:

    steady improvement (= the same run with drifting losses) > oscillating quality > improve then
    collapse > never learns (flat noise) ~ late divergence > early divergence
"""

import math

import numpy as np
import pytest

from wavegan.metrics.stability import MIN_EVALS, rolling_std, run_stability

MAX_STEPS = 2000
LOG_STEPS = list(range(20, MAX_STEPS + 1, 20))
EVAL_STEPS = list(range(200, MAX_STEPS + 1, 200))  # 10 evaluations, the last at the end
REFERENCE = {"frechet_distance": 30.0, "class_coverage": 1.0, "ndb_over_k": 0.04}
K = np.arange(len(EVAL_STEPS))
STEADY_FD = 180 + 2820 * np.exp(-K / 1.8)  # 3000, 1798, 1108, ..., 213, 199
STEADY_COVERAGE = 0.2 + 0.7 * (1 - np.exp(-K / 2))
STEADY_NDB = 0.15 + 0.75 * np.exp(-K / 2)


def series(values, steps):
    return [(int(s), float(v)) for s, v in zip(steps, values, strict=False)]


def build(fd, coverage=None, ndb=None, end=MAX_STEPS, d_loss=None, g_loss=None, seed=0):
    """A history as train.py records it, cut at step `end` (a diverged run logs nothing after)."""
    rng = np.random.default_rng(seed)
    log_steps = [s for s in LOG_STEPS if s <= end]
    eval_steps = [s for s in EVAL_STEPS if s <= end][: len(fd)]
    t = np.arange(len(log_steps))
    wasserstein = 2.0 * np.exp(-t / 30) + 0.3 + 0.05 * rng.normal(size=len(t))
    h = {
        "train/d_loss": series(-wasserstein + 0.2 if d_loss is None else d_loss, log_steps),
        "train/g_loss": series(0.5 + 0.1 * rng.normal(size=len(t)) if g_loss is None else g_loss, log_steps),
        "train/wasserstein": series(wasserstein, log_steps),
        "train/d_grad_norm": series(3 + 0.3 * rng.normal(size=len(t)), log_steps),
        "train/g_grad_norm": series(1 + 0.1 * rng.normal(size=len(t)), log_steps),
        "eval/frechet_distance": series(fd, eval_steps),
        "eval/output_change": series(0.05 + 0.5 * np.exp(-np.arange(len(fd)) / 3), eval_steps),
    }
    if coverage is not None:
        h["eval/class_coverage"] = series(coverage, eval_steps)
    if ndb is not None:
        h["eval/ndb_over_k"] = series(ndb, eval_steps)
    for name, value in REFERENCE.items():
        h[f"eval/reference/{name}"] = [(0, value)]
    return h


def noisy(values, seed, scale=0.05):
    """Multiplicative evaluation noise, as the FD of a finite sample has."""
    if seed is None:
        return np.asarray(values, dtype=float)
    return np.asarray(values) * np.exp(scale * np.random.default_rng(seed + 100).normal(size=len(values)))


# -- the scenarios -----------------------------------------------------------------------------------


def steady(seed=None):
    return build(noisy(STEADY_FD, seed), STEADY_COVERAGE, STEADY_NDB, seed=seed or 0), "completed", None


def loss_drift(seed=None):
    """The steady run, but the critic's offset drifts: both losses move monotonically and far."""
    n = len(LOG_STEPS)
    h = build(
        noisy(STEADY_FD, seed),
        STEADY_COVERAGE,
        STEADY_NDB,
        d_loss=np.linspace(-1, -60, n),
        g_loss=np.linspace(0, 90, n),
        seed=seed or 0,
    )
    return h, "completed", None


def oscillating(seed=None):
    """Improves for three evaluations, then swings between ~0.9x and ~2x the steady level."""
    swing = np.where(K < 3, 1.0, np.where((K - 3) % 2 == 0, 2.0, 0.9))
    coverage = np.where((K >= 3) & ((K - 3) % 2 == 0), 0.5, STEADY_COVERAGE)
    return build(noisy(STEADY_FD * swing, seed), coverage, STEADY_NDB, seed=seed or 0), "completed", None


def collapse(seed=None):
    """Steady to ~280 at step 1400, then modes are dropped: FD back up to 1600, coverage to 0.18."""
    fd = np.concatenate([STEADY_FD[:7], [700, 1300, 1600]])
    coverage = np.concatenate([STEADY_COVERAGE[:7], [0.4, 0.27, 0.18]])
    ndb = np.concatenate([STEADY_NDB[:7], [0.5, 0.7, 0.8]])
    return build(noisy(fd, seed), coverage, ndb, seed=seed or 0), "completed", None


def flat_noise(seed=None):
    """Never learns: the FD stays where it started, give or take 10 %; coverage stays at 1-2 classes."""
    rng = np.random.default_rng(7 if seed is None else seed)
    fd = 3000 * np.exp(0.1 * rng.normal(size=len(K)))
    coverage = rng.choice([0.09, 0.18], size=len(K))
    return build(fd, coverage, 0.9 + 0.02 * rng.normal(size=len(K)), seed=seed or 0), "completed", None


def late_divergence(seed=None):
    """Steady to ~240 at step 1600, then the losses explode and training stops at step 1700."""
    h = build(noisy(STEADY_FD[:8], seed), STEADY_COVERAGE[:8], STEADY_NDB[:8], end=1700, seed=seed or 0)
    return h, "diverged", 1700


def early_divergence(seed=None):
    """One evaluation (step 200, FD ~3000), diverged at step 300."""
    h = build(noisy(STEADY_FD[:1], seed), STEADY_COVERAGE[:1], STEADY_NDB[:1], end=300, seed=seed or 0)
    return h, "diverged", 300


SCENARIOS = {
    "steady": steady,
    "loss_drift": loss_drift,
    "oscillating": oscillating,
    "collapse": collapse,
    "flat_noise": flat_noise,
    "late_divergence": late_divergence,
    "early_divergence": early_divergence,
}


def figures(scenario, seed=None, **kwargs):
    h, outcome, diverged_step = SCENARIOS[scenario](seed)
    return run_stability(h, outcome, diverged_step, MAX_STEPS, **kwargs)


def scores(seed=None, **kwargs):
    return {name: figures(name, seed, **kwargs)["stability/score"] for name in SCENARIOS}


def test_scenario_scores_follow_the_researchers_order():
    s = scores()
    assert s["steady"] == s["loss_drift"]  # losses do not enter the score
    assert s["steady"] > s["oscillating"] > s["collapse"] > s["late_divergence"] > s["early_divergence"]
    assert s["early_divergence"] < s["flat_noise"] < s["collapse"]  # never learning is low ...
    assert s["late_divergence"] / 3 < s["flat_noise"] < 3 * s["late_divergence"]  # ... near divergence
    for value in s.values():
        assert 0.0 <= value <= 1.0
    # the closed forms of the module doc
    assert s["steady"] == pytest.approx(30 / STEADY_FD[-1])  # never lost ground: reference / final
    assert s["collapse"] == pytest.approx(30 / 1600)  # its worst setback is its end: reference / final
    assert s["late_divergence"] == pytest.approx(1700 / 2000 * 30 / 3000)  # progress x reference / worst
    assert s["early_divergence"] == pytest.approx(300 / 2000 * 30 / 3000)


@pytest.mark.parametrize("seed", range(5))
def test_scenario_order_survives_evaluation_noise(seed):
    s = scores(seed)
    assert s["steady"] == s["loss_drift"]
    assert s["steady"] > s["oscillating"] > s["collapse"] > s["late_divergence"] > s["early_divergence"]
    assert s["early_divergence"] < s["flat_noise"] < min(s["oscillating"], s["collapse"])


def test_oscillation_ending_on_a_good_phase_still_scores_below_steady():
    """The setback counts the swings the final value hides."""
    h, outcome, _ = oscillating()
    fd = [v for _, v in h["eval/frechet_distance"]]
    fd[-1] = STEADY_FD[-1]  # ends exactly where the steady run ends
    h["eval/frechet_distance"] = series(fd, EVAL_STEPS)
    out = run_stability(h, outcome, None, MAX_STEPS)
    assert out["stability/final_quality"] == figures("steady")["stability/final_quality"]
    assert out["stability/score"] < 0.6 * figures("steady")["stability/score"]


def test_losses_and_diagnostics_never_enter_the_score():
    base = figures("steady")
    h, outcome, _ = steady()
    offset = {k: [(s, 1e4 + 50 * v) for s, v in h[k]] if k.startswith("train/") else h[k] for k in h}
    bare = {k: v for k, v in h.items() if not k.startswith("train/") and k != "eval/output_change"}
    for variant in (offset, bare):
        assert run_stability(variant, outcome, None, MAX_STEPS)["stability/score"] == base["stability/score"]


def test_higher_is_better_quality_gives_the_same_scores():
    """An Inception-Score-like figure, 1 / FD up to scale, orders and scores runs identically."""
    for name in SCENARIOS:
        h, outcome, step = SCENARIOS[name]()
        h["eval/inception_score"] = [(s, 1000 / v) for s, v in h["eval/frechet_distance"]]
        h["eval/reference/inception_score"] = [(0, 1000 / 30)]
        by_is = run_stability(h, outcome, step, MAX_STEPS, quality_key="eval/inception_score")
        assert by_is["stability/score"] == pytest.approx(figures(name)["stability/score"])
        assert by_is["stability/setback"] == pytest.approx(figures(name)["stability/setback"], nan_ok=True)


def test_scenario_raw_figures():
    st, osc, col, flat = (figures(n) for n in ("steady", "oscillating", "collapse", "flat_noise"))
    late, early = figures("late_divergence"), figures("early_divergence")
    assert st["stability/worsening_fraction"] == 0 and st["stability/final_over_best"] == 1
    assert st["stability/setback"] == 1 and st["stability/collapse"] == 0
    assert st["stability/best_step"] == MAX_STEPS and st["stability/num_evals"] == 10
    assert osc["stability/worsening_fraction"] == pytest.approx(4 / 9)
    assert osc["stability/final_over_best"] == pytest.approx(2.0 * STEADY_FD[9] / (0.9 * STEADY_FD[8]))
    assert col["stability/collapse"] == 1 and col["stability/collapse_step"] == 1600
    assert col["stability/coverage_drop"] == pytest.approx(1 - 0.18 / STEADY_COVERAGE[6])
    assert col["stability/ndb_rise"] == pytest.approx(0.8 - STEADY_NDB[6])
    assert col["stability/best_step"] == 1400 and col["stability/final_over_best"] > 5
    assert flat["stability/worsening_fraction"] > 0.3 and flat["stability/final_over_best"] > 1
    assert late["stability/diverged"] == 1 and late["stability/diverged_step"] == 1700
    assert late["stability/progress"] == pytest.approx(0.85) and late["stability/survival"] == 0.85
    assert late["stability/hold_factor"] == pytest.approx(STEADY_FD[7] / 3000)
    assert early["stability/num_evals"] == 1 and math.isnan(early["stability/setback"])
    assert early["stability/final_over_best"] == 1


# -- each raw figure ---------------------------------------------------------------------------------


def fd_history(values, steps=None, reference=30.0):
    steps = steps or [100 * (i + 1) for i in range(len(values))]
    h = {"eval/frechet_distance": series(values, steps)}
    if reference is not None:
        h["eval/reference/frechet_distance"] = [(0, reference)]
    return h


def test_quality_trajectory_figures():
    out = run_stability(fd_history([900, 300, 450, 200, 260]), "completed", None, 500)
    assert out["stability/first_quality"] == 900 and out["stability/final_quality"] == 260
    assert out["stability/best_quality"] == 200 and out["stability/best_step"] == 400
    assert out["stability/final_over_best"] == pytest.approx(1.3)
    assert out["stability/final_over_first"] == pytest.approx(260 / 900)  # learned: below a third
    assert out["stability/worsening_fraction"] == pytest.approx(2 / 4)
    assert out["stability/setback"] == pytest.approx(1.5)  # 450 after a best-so-far of 300
    assert out["stability/reach_factor"] == pytest.approx(30 / 200)
    assert out["stability/hold_factor"] == pytest.approx(1 / 1.5)
    assert out["stability/score"] == pytest.approx(30 / 200 / 1.5)
    assert out["stability/score"] <= 30 / 260  # never above the final quality ratio
    assert out["stability/reference_quality"] == 30


def test_trajectory_figures_need_min_evals():
    assert MIN_EVALS == 3
    two = run_stability(fd_history([300, 450]), "completed", None, 200)
    assert math.isnan(two["stability/worsening_fraction"]) and math.isnan(two["stability/setback"])
    assert two["stability/final_over_best"] == pytest.approx(1.5)
    # with two evaluations the score is the final quality ratio: the only setback is the end
    assert two["stability/score"] == pytest.approx(30 / 450)
    one = run_stability(fd_history([300]), "completed", None, 100)
    assert one["stability/score"] == pytest.approx(0.1) and one["stability/final_over_best"] == 1
    assert two["stability/final_over_first"] == pytest.approx(1.5)
    assert math.isnan(one["stability/final_over_first"])  # one evaluation cannot show learning
    inception = run_stability(
        {"eval/inception_score": series([2.0, 8.0], [1, 2])}, "completed", None, 2, "eval/inception_score"
    )
    assert inception["stability/final_over_first"] == pytest.approx(0.25)  # oriented: IS rose fourfold
    cov = run_stability({"eval/class_coverage": series([0.9, 0.1], [1, 2])}, "completed", None, 2)
    assert cov["stability/coverage_final"] == pytest.approx(0.1) and math.isnan(cov["stability/collapse"])


def test_reach_is_capped_at_the_reference_and_reference_can_be_given():
    out = run_stability(fd_history([100, 40, 20]), "completed", None, 300)
    assert out["stability/reach_factor"] == 1.0 and out["stability/score"] == 1.0
    given = run_stability(fd_history([100, 40, 20]), "completed", None, 300, reference=10.0)
    assert given["stability/reach_factor"] == pytest.approx(0.5)
    none = run_stability(fd_history([100, 40, 20], reference=None), "completed", None, 300)
    assert none["stability/reach_factor"] == 1.0 and math.isnan(none["stability/reference_quality"])


def test_coverage_and_ndb_figures():
    steps = [100, 200, 300, 400, 500]
    h = {
        "eval/class_coverage": series([0.4, 0.8, 0.5, 0.9, 0.8], steps),
        "eval/ndb_over_k": series([0.8, 0.3, 0.5, 0.2, 0.25], steps),
    }
    out = run_stability(h, "completed", None, 500)
    assert out["stability/coverage_final"] == 0.8 and out["stability/coverage_best"] == 0.9
    assert out["stability/coverage_drop"] == pytest.approx(0.3 / 0.8)  # a dip counts even if recovered
    assert out["stability/collapse"] == 0 and math.isnan(out["stability/collapse_step"])
    assert out["stability/ndb_final"] == 0.25 and out["stability/ndb_best"] == 0.2
    assert out["stability/ndb_rise"] == pytest.approx(0.2)
    h["eval/class_coverage"] = series([0.4, 0.8, 0.4, 0.9, 0.8], steps)  # exactly half: a collapse
    out = run_stability(h, "completed", None, 500)
    assert out["stability/collapse"] == 1 and out["stability/collapse_step"] == 300


def test_output_change_and_gradient_norms():
    h = {
        "eval/output_change": series([0.6, 0.2, 0.1, 0.0], [100, 200, 300, 400]),
        "train/d_grad_norm": series([1, 2, 3, 40], [10, 20, 30, 40]),
        "train/g_grad_norm": series([0.5, 0.5, float("nan"), 0.7], [10, 20, 30, 40]),
    }
    out = run_stability(h, "completed", None, 400)
    assert out["stability/output_change_final"] == 0 and out["stability/output_change_max"] == 0.6
    assert out["stability/output_change_median"] == pytest.approx(0.15)
    assert out["stability/d_grad_norm_median"] == 2.5 and out["stability/d_grad_norm_max"] == 40
    assert out["stability/g_grad_norm_median"] == 0.5 and out["stability/g_grad_norm_max"] == 0.7
    empty = run_stability({}, "completed", None, 400)
    for key in ("output_change_final", "d_grad_norm_median", "coverage_final", "ndb_rise", "d_loss_osc"):
        assert math.isnan(empty[f"stability/{key}"]), key


def test_loss_oscillation_diagnostic_is_in_loss_units():
    t = np.arange(40)
    h = {
        "train/d_loss": series(-3 + 3 * np.sin(2 * np.pi * t / 6), t * 10),
        "train/g_loss": series(t, t * 10),
    }
    out = run_stability(h, "completed", None, 400)
    scaled = {k: [(s, 50 * v) for s, v in h[k]] for k in h}
    assert run_stability(scaled, "completed", None, 400)["stability/d_loss_osc"] == pytest.approx(
        50 * out["stability/d_loss_osc"]
    )
    assert out["stability/d_loss_osc"] > 1 and out["stability/score"] == 1.0  # diagnostics only


def test_divergence_survival_and_progress():
    h = fd_history([3000, 1000, 500])
    out = run_stability(h, "diverged", 350, 1000)
    assert out["stability/diverged"] == 1 and out["stability/progress"] == pytest.approx(0.35)
    assert out["stability/score"] == pytest.approx(0.35 * 30 / 3000)
    # the outcome says diverged but not when: the last step recorded
    assert run_stability(h, "diverged", None, 1000)["stability/diverged_step"] == 300
    # later divergence beats earlier, at the same evaluations
    assert run_stability(h, "diverged", 900, 1000)["stability/score"] > out["stability/score"]
    # diverged before the first evaluation, evaluation on (a reference exists): 0
    ref_only = {"eval/reference/frechet_distance": [(0, 30.0)], "train/d_loss": [(1, float("nan"))]}
    assert run_stability(ref_only, "diverged", 1, 1000)["stability/score"] == 0.0
    # evaluation off altogether: the score is survival alone
    assert run_stability({}, "diverged", 250, 1000)["stability/score"] == pytest.approx(0.25)
    assert run_stability({}, "completed", None, 1000)["stability/score"] == 1.0
    # a completed run that should have been evaluated but was not: unknown
    assert math.isnan(run_stability(ref_only, "completed", None, 1000)["stability/score"])


def test_stopped_early_is_not_a_divergence():
    out = run_stability(fd_history([3000, 1000, 500]), "pruned", None, 1000)
    assert out["stability/diverged"] == 0 and out["stability/diverged_step"] == 1000
    assert out["stability/progress"] == pytest.approx(0.3) and out["stability/survival"] == 1.0
    assert out["stability/score"] == pytest.approx(30 / 500)


def test_non_finite_and_unordered_values_are_tolerated():
    h = fd_history([3000, float("nan"), 500, float("inf"), 400])
    h["eval/frechet_distance"] = list(reversed(h["eval/frechet_distance"]))
    out = run_stability(h, "completed", None, 500)
    assert out["stability/num_evals"] == 3 and out["stability/final_quality"] == 400
    assert out["stability/worsening_fraction"] == 0


def test_score_never_exceeds_the_final_quality_ratio():
    rng = np.random.default_rng(3)
    for _ in range(200):
        fd = 30 * np.exp(rng.uniform(0, 5, size=rng.integers(1, 12)))
        out = run_stability(fd_history(list(fd)), "completed", None, 10_000)
        assert 0 < out["stability/score"] <= min(1.0, 30 / fd[-1]) + 1e-12


def test_rolling_std_values():
    assert rolling_std([1, 1, 1, 1], 2).tolist() == [0, 0, 0]
    assert rolling_std([0, 2, 0, 2], 2).tolist() == [1, 1, 1]
    assert rolling_std([0, 2, 4], 3) == pytest.approx([np.std([0, 2, 4])])
    assert rolling_std([0, 2], 5) == pytest.approx([1.0])  # fewer values than the window: one figure
    assert len(rolling_std([1.0], 5)) == 0
    assert rolling_std([0, float("nan"), 2], 2) == pytest.approx([1.0])  # non-finite values dropped
