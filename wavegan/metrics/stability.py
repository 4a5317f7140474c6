"""Run-level stability figures (`stability/...`) from one run's metric history: pure functions.

A history is what the training loop records, {metric name: [(step, value), ...]}: the `eval/...`
figures at every evaluation (every `eval.every` steps and at the end), `eval/reference/...` for
held-out real data (step 0), and the `train/...` diagnostics at every log step. Any of them may be
missing; a figure that cannot be computed is NaN (the caller logs only finite values).

What a GAN researcher judges a run on (Lucic et al. 2018; Kurach et al. 2019; DESIGN.md section 5) is
divergence, sample quality and how it evolves, and mode coverage; losses are diagnostics, not
comparable across losses (a WGAN critic's losses carry a free additive offset that drifts without
anything being wrong). So the raw figures come first, each under its own name, and the one composite
score is built from the quality figure alone.

Raw figures (all under `stability/`)

    diverged, diverged_step   1/0; the step of divergence (max_steps when the run did not diverge)
    progress                  fraction of the budget trained: diverged_step / max_steps, or the last
                              step recorded / max_steps for a run stopped early, 1 when completed
    num_evals                 evaluations of the quality figure (eval.quality_key)
    first_quality, final_quality, best_quality, best_step, reference_quality
    final_over_best           final / best, oriented so that >= 1 (best / final for a higher-is-better
                              figure): 1 = the run ended at its best (still improving or on a plateau)
    final_over_first          final / first, oriented as above: whether the run learned at all (the
                              measurement bar for a run long enough to learn is <= 1/3: FD fell to a third)
    worsening_fraction        share of consecutive evaluations in which quality got worse (any amount):
                              ~0 steady improvement, ~0.5 a noisy plateau or an oscillation
    setback                   the largest factor by which the run was ever worse than its best so far,
                              max_t q_t / min_{s<=t} q_s (oriented as above), >= 1: 1 = never lost
                              ground, 3 = at some evaluation it was three times its best FD so far
    coverage_final, coverage_best, coverage_drop, collapse, collapse_step
                              `eval/class_coverage`: last, highest, the largest relative drop below its
                              running best, max_t (c*_t - c_t) / c*_t in [0, 1]; collapse = 1 when that
                              drop reached COLLAPSE_DROP, at collapse_step
    ndb_final, ndb_best, ndb_rise
                              `eval/ndb_over_k`: last, lowest, the largest rise above its running best
                              (NDB/K units): statistically different bins appearing = modes dropped
    output_change_final, output_change_median, output_change_max
                              `eval/output_change` (RMS change of G's output for a fixed latent batch
                              between evaluations): ~0 = a frozen generator; spikes = jumps
    d_grad_norm_median, d_grad_norm_max, g_grad_norm_median, g_grad_norm_max
    d_loss_osc, g_loss_osc    loss diagnostics (loss units, not comparable across losses): the median
                              rolling standard deviation (`window` logged points) over the second half
    survival, reach_factor, hold_factor, score      the score and its three factors (below)

Trajectory figures (worsening_fraction, setback, coverage_drop, collapse, ndb_rise) need at least
MIN_EVALS = 3 evaluations of their metric and are NaN below that: three is the fewest with an
evaluation between the first and the last, where a run can be seen to lose ground and recover (with
two, "got worse" is one comparison, already in final_over_best).

The score (`stability/score`, in [0, 1], higher is better): quality held, relative to real data

Write q for the quality figure oriented so that lower is better (q itself for distances, 1/q for
IS-like figures), r for its held-out reference, best = min q, and setback as above. Then

    completed (or stopped early):   score = reach x hold             = min(1, r / best) / setback
    diverged at step t:             score = (t / max_steps) x min(1, r / best) x best / worst

* reach = min(1, r / best): how close the run got to the reachable ceiling. r / q is the only scale
  every quality figure shares with real data: 1 once the generator is as close to the training data as
  unseen real data is, 1/k at k times the reference FD. Capped at 1 because beating held-out data is
  sampling noise or memorisation, not more quality.
* hold = 1 / setback: how well it kept what it reached. Since setback >= final / best, reach x hold
  <= r / final: the score is never above the final quality ratio, equals it when the run's worst
  setback is at its end (a steady run, a run that collapsed), and is lower when the run, on its way,
  fell further back than where it ended (an oscillation that happens to end on a good phase). Every
  factor is a ratio of the same figure, so a setback of 2x costs exactly as much as ending twice as far
  from real data: no weights, no constants. The setback in the score runs over every evaluation: with
  one or two it can only be final / best, so the score is then the final quality ratio (no trajectory
  statistic is drawn from fewer than MIN_EVALS points). The sampling noise of an FD estimate (a few
  per cent at eval.num_samples=256) reads as small setbacks and costs the score about as much.
  A collapse of the modes shows in the Fréchet distance (the features' means and covariances move), so
  it is counted there, once; coverage and NDB are reported raw (coverage is coarse, 1/classes per
  step, and absent without labels).
* A diverged run ends with a broken generator (non-finite or exploding output), so it is scored as if
  its last evaluation had returned the worst quality it ever measured (in practice its first, nearly
  untrained one): reach x hold becomes min(1, r / best) x best / worst (r / worst when best >= r), the
  score of a run that learned nothing. The factor survival = t / max_steps then ranks a later
  divergence above an earlier one: each step trained is evidence that the setting holds. A run that
  diverged before its first evaluation (evaluation on: a reference exists) scores 0.
* A run stopped early on purpose (outcome pruned, ...) has survival 1 and is scored on what it
  reached: stopping is the study's decision, not the run's instability (`progress` says how far it got).
* Losses, gradient norms and output change do not enter the score: losses are not comparable across
  losses, and a drifting critic offset is not instability (the divergence bound in the trainer decides
  when a loss has exploded).

Resulting order (tests/metrics/test_stability.py, synthetic FD histories with reference 30): steady
improvement (= the same run with monotonically drifting losses) > oscillating quality > improve then
collapse > never learns (flat noise) ~ late divergence > early divergence.

Unknowns: without any evaluation, or without a reference, the factor that needs it is 1 (not
penalised): with evaluation off the score is survival alone; with a reference but no evaluation a
diverged run scores 0 and any other run NaN. The ratios assume a positive, ratio-scale figure (FD, IS);
a figure that can be 0 (NDB/K, coverage) makes them degenerate: keep eval.quality_key a distance or IS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from wavegan.metrics.quality import lower_is_better

# A run learned when final_over_first is at most this: its last evaluation's quality is at most a third of
# the first one's (FD fell to a third), the bar the default runs are held to
# (benchmarks/default_runs_learn.py).
LEARNING_BAR = 1 / 3

__all__ = [
    "COLLAPSE_DROP",
    "LEARNING_BAR",
    "MIN_EVALS",
    "History",
    "reference_key",
    "rolling_std",
    "run_stability",
]

History = Mapping[str, Sequence[tuple[int, float]]]

# Trajectory figures need this many evaluations (module doc): the fewest with one between first and last.
MIN_EVALS = 3
# `stability/collapse`: coverage fell to half of its running best or lower, i.e. the generator stopped
# producing the majority of the classes it had produced, the usual sense of mode collapse ("a few
# modes"); a flag for counting runs only, the continuous figure is `stability/coverage_drop`. Smaller
# drops are common sampling noise of coverage (one class of 11 missing from one evaluation is 9%).
COLLAPSE_DROP = 0.5
_TINY = 1e-12
_NAN = float("nan")


def rolling_std(values: Sequence[float], window: int) -> np.ndarray:
    """Population standard deviation of each run of `window` consecutive values.

    Returns len(values) - window + 1 figures; with fewer values than the window, one figure over all
    of them (none for fewer than two). Non-finite values are dropped first.
    """
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    window = max(2, int(window))
    if len(x) < 2:
        return np.zeros(0)
    if len(x) < window:
        return np.array([x.std()])
    return np.lib.stride_tricks.sliding_window_view(x, window).std(axis=1)


def reference_key(quality_key: str) -> str:
    """`eval/frechet_distance` -> `eval/reference/frechet_distance`."""
    return (
        quality_key.replace("eval/", "eval/reference/", 1) if quality_key.startswith("eval/") else quality_key
    )


def _series(history: History, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metric, finite values only, in step order."""
    pairs = []
    for step, value in history.get(key, []):
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            pairs.append((int(step), v))
    pairs.sort(key=lambda p: p[0])
    return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.float64)


def _badness(values: np.ndarray, lower: bool) -> np.ndarray:
    """Quality oriented so that lower is better and positive: ratios of it are the module's currency."""
    return np.maximum(values, _TINY) if lower else 1.0 / np.maximum(values, _TINY)


def _oscillation(values: np.ndarray, window: int) -> float:
    """Median rolling standard deviation over the second half of a logged series (loss units)."""
    if len(values) < 2:
        return _NAN
    late = rolling_std(values[len(values) // 2 :], window)
    if len(late) == 0:  # a second half of one value: use the last two
        late = rolling_std(values[-2:], window)
    return float(np.median(late))


def _shortfall(values: np.ndarray, higher: bool) -> np.ndarray:
    """Per evaluation, the shortfall from the best so far: relative for coverage (higher is better),
    absolute for NDB/K (lower is better, already a fraction)."""
    if higher:
        best = np.maximum.accumulate(values)
        return np.where(best > _TINY, (best - values) / np.maximum(best, _TINY), 0.0)
    return values - np.minimum.accumulate(values)


def _quality_figures(
    history: History, quality_key: str, reference: float | None, min_evals: int
) -> dict[str, float]:
    lower = lower_is_better(quality_key)
    steps, q = _series(history, quality_key)
    n = len(q)
    out = {
        "stability/num_evals": float(n),
        "stability/first_quality": _NAN,
        "stability/final_quality": _NAN,
        "stability/best_quality": _NAN,
        "stability/best_step": _NAN,
        "stability/reference_quality": _NAN,
        "stability/final_over_best": _NAN,
        "stability/final_over_first": _NAN,
        "stability/worsening_fraction": _NAN,
        "stability/setback": _NAN,
    }
    if reference is None:
        _, ref_values = _series(history, reference_key(quality_key))
        reference = float(ref_values[-1]) if len(ref_values) else None
    if reference is not None and math.isfinite(reference):
        out["stability/reference_quality"] = float(reference)
    if n == 0:
        return out
    bad = _badness(q, lower)
    i_best = int(np.argmin(bad))  # the first evaluation at the best value
    running_best = np.minimum.accumulate(bad)
    out.update(
        {
            "stability/first_quality": float(q[0]),
            "stability/final_quality": float(q[-1]),
            "stability/best_quality": float(q[i_best]),
            "stability/best_step": float(steps[i_best]),
            "stability/final_over_best": float(bad[-1] / bad[i_best]),
        }
    )
    if n >= 2:  # one evaluation cannot show learning
        out["stability/final_over_first"] = float(bad[-1] / bad[0])
    if n >= min_evals:
        out["stability/worsening_fraction"] = float(np.mean(np.diff(bad) > 0))
        out["stability/setback"] = float(np.max(bad / running_best))
    return out


def _score(
    history: History,
    quality_key: str,
    figures: dict[str, float],
    diverged: bool,
    survival: float,
) -> dict[str, float]:
    """survival x reach x hold (module doc)."""
    lower = lower_is_better(quality_key)
    _, q = _series(history, quality_key)
    reference = figures["stability/reference_quality"]
    has_reference = math.isfinite(reference)
    if len(q) == 0:  # nothing evaluated: the quality part is unknown
        if has_reference:  # evaluation was on: a diverged run failed before its first evaluation
            return {
                "stability/reach_factor": _NAN,
                "stability/hold_factor": _NAN,
                "stability/score": 0.0 if diverged else _NAN,
            }
        return {"stability/reach_factor": 1.0, "stability/hold_factor": 1.0, "stability/score": survival}
    bad = _badness(q, lower)
    best = float(bad.min())
    # 1 / setback over every evaluation (with one or two it can only be final / best); a diverged run
    # is scored as if its last evaluation had returned the worst one measured.
    setback = float(bad.max()) / best if diverged else float(np.max(bad / np.minimum.accumulate(bad)))
    hold = 1.0 / setback
    reach = 1.0
    if has_reference:
        reach = float(min(1.0, float(_badness(np.array([reference]), lower)[0]) / best))
    return {
        "stability/reach_factor": reach,
        "stability/hold_factor": hold,
        "stability/score": float(survival * reach * hold),
    }


def _drift_figures(
    values: np.ndarray, name: str, higher: bool, change: str, min_evals: int
) -> dict[str, float]:
    """`<name>_final`, `<name>_best` and `<name>_<change>`: the largest shortfall from the best so far."""
    best = (values.max() if higher else values.min()) if len(values) else _NAN
    out = {
        f"stability/{name}_final": float(values[-1]) if len(values) else _NAN,
        f"stability/{name}_best": float(best),
        f"stability/{name}_{change}": _NAN,
    }
    if len(values) >= min_evals:
        out[f"stability/{name}_{change}"] = float(_shortfall(values, higher=higher).max())
    return out


def _coverage_figures(history: History, key: str, min_evals: int) -> dict[str, float]:
    steps, c = _series(history, key)
    out = _drift_figures(c, "coverage", True, "drop", min_evals)
    out["stability/collapse"] = out["stability/collapse_step"] = _NAN
    if len(c) >= min_evals:
        collapsed = np.flatnonzero(_shortfall(c, higher=True) >= COLLAPSE_DROP)
        out["stability/collapse"] = float(len(collapsed) > 0)
        if len(collapsed):
            out["stability/collapse_step"] = float(steps[collapsed[0]])
    return out


def _ndb_figures(history: History, key: str, min_evals: int) -> dict[str, float]:
    return _drift_figures(_series(history, key)[1], "ndb", False, "rise", min_evals)


def _summary(history: History, key: str, name: str, stats: Sequence[str]) -> dict[str, float]:
    _, v = _series(history, key)
    funcs = {"final": lambda x: x[-1], "median": np.median, "max": np.max}
    return {f"stability/{name}_{s}": float(funcs[s](v)) if len(v) else _NAN for s in stats}


def run_stability(
    history: History,
    outcome: str,
    diverged_step: int | None,
    max_steps: int,
    quality_key: str = "eval/frechet_distance",
    reference: float | None = None,
    window: int = 5,
    coverage_key: str = "eval/class_coverage",
    ndb_key: str = "eval/ndb_over_k",
    output_change_key: str = "eval/output_change",
    min_evals: int = MIN_EVALS,
) -> dict[str, float]:
    """The run's `stability/...` figures; every figure, the score's formula and the reasons are in the
    module doc.

    `outcome`: "completed", "diverged", "pruned", ...; a run is diverged when the outcome says so or a
    `diverged_step` is given (without a step: the last step recorded). `reference`: the quality metric
    for held-out real data; None reads the last `eval/reference/<metric>` value from the history.
    `window`: logged points per rolling window of the loss diagnostics. NaN marks what the history
    cannot tell.
    """
    max_steps = max(1, int(max_steps))
    diverged = outcome == "diverged" or diverged_step is not None
    steps_seen = [int(s) for series in history.values() for s, _ in series]
    if diverged and diverged_step is None:  # outcome says diverged but not when: the last step recorded
        diverged_step = max(steps_seen) if steps_seen else max_steps
    if diverged:
        progress = min(1.0, max(0.0, float(diverged_step) / max_steps))  # type: ignore[arg-type]
    elif outcome == "completed" or not steps_seen:
        progress = 1.0
    else:  # stopped early on purpose (pruned, ...): not a failure, but say how far it got
        progress = min(1.0, max(0.0, max(steps_seen) / max_steps))
    survival = progress if diverged else 1.0

    out: dict[str, float] = {
        "stability/diverged": float(diverged),
        "stability/diverged_step": float(diverged_step if diverged else max_steps),  # type: ignore[arg-type]
        "stability/progress": progress,
        "stability/survival": survival,
    }
    quality = _quality_figures(history, quality_key, reference, int(min_evals))
    out |= quality
    out |= _score(history, quality_key, quality, diverged, survival)
    out |= _coverage_figures(history, coverage_key, int(min_evals))
    out |= _ndb_figures(history, ndb_key, int(min_evals))
    out |= _summary(history, output_change_key, "output_change", ("final", "median", "max"))
    out |= _summary(history, "train/d_grad_norm", "d_grad_norm", ("median", "max"))
    out |= _summary(history, "train/g_grad_norm", "g_grad_norm", ("median", "max"))
    out["stability/d_loss_osc"] = _oscillation(_series(history, "train/d_loss")[1], window)
    out["stability/g_loss_osc"] = _oscillation(_series(history, "train/g_loss")[1], window)
    return out
