"""Run-level stability figures (`stability/...`) from one run's metric history: pure functions.

A history is what the training loop records, {metric name: [(step, value), ...]}: `train/d_loss` and
`train/g_loss` (each logged value already averaged over trainer.log_every steps), and the `eval/...`
figures at evaluation steps, including `eval/reference/...` for held-out real data.

The stability score (`stability/score`, in [0, 1], higher is more stable) is a product of three
factors, each 1 for the ideal run, so that a run must be good on all three to score high and any one
failure pulls it down (a sum would let a smooth run that ended in NaNs look half-good):

    score = survival x calm x quality_factor

* survival = 1 for a run that did not diverge; 0.5 x (divergence step / max_steps) for one that did.
  Divergence is the failure a stability study exists to count, so a diverged run never scores above
  half of an otherwise equal completed run, and diverging later is less bad than diverging early.
* calm = 1 - 0.5 x mean over D and G of rho, rho = min(1, sigma_late / sigma_run): sigma_late is the
  median rolling standard deviation (window of `window` logged points) over the second half of the
  logged losses, sigma_run the standard deviation of the whole logged series. A run whose losses
  settle has late swings that are small next to the transient of its start (rho -> 0, calm -> 1); a
  run that keeps oscillating as much as it ever moved has rho -> 1, calm -> 1/2. Oscillation costs at
  most half, like divergence at the last step: an oscillating run still ends with a usable generator,
  so it must not score below a run that diverged. The ratio has no units, so BCE runs (losses ~1) and
  WGAN-GP runs (critic losses in the tens) are on one scale. Caveat: a loss that is flat noise from
  the first step reads as oscillating (nothing settled); the raw figures `stability/d_loss_osc` and
  `stability/g_loss_osc` (sigma_late, in loss units) are logged too.
* quality_factor = min(1, reference / final) for a lower-is-better quality figure (final / reference
  for higher-is-better), reference being the same metric for held-out real data: 1 once the generator
  is as close to the training data as unseen real data is, 0.1 at ten times that Fréchet distance.
  Without a reference or without any finite quality value the factor is 1 (unknown, not penalised;
  the survival factor already covers runs that diverged before being evaluated).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from wavegan.metrics.quality import lower_is_better

__all__ = ["History", "reference_key", "rolling_std", "run_stability"]

History = Mapping[str, Sequence[tuple[int, float]]]
_EPS = 1e-12


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


def _values(history: History, key: str) -> list[float]:
    return [float(v) for _, v in history.get(key, []) if v is not None and math.isfinite(float(v))]


def _oscillation(values: list[float], window: int) -> tuple[float, float | None]:
    """(median rolling std over the second half, rho = that / std of the whole series capped at 1)."""
    if len(values) < 2:
        return float("nan"), None
    late = rolling_std(values[len(values) // 2 :], window)
    if len(late) == 0:  # a second half of one value: use the last two
        late = rolling_std(values[-2:], window)
    sigma_late = float(np.median(late))
    sigma_run = float(np.std(values))
    return sigma_late, min(1.0, sigma_late / (sigma_run + _EPS)) if sigma_run > _EPS else 0.0


def run_stability(
    history: History,
    outcome: str,
    diverged_step: int | None,
    max_steps: int,
    quality_key: str = "eval/frechet_distance",
    reference: float | None = None,
    window: int = 5,
) -> dict[str, float]:
    """The run's `stability/...` figures; the score's formula and its reasons are in the module doc.

    `reference`: the quality metric for held-out real data; None reads the last
    `eval/reference/<metric>` value from the history. `window`: logged points per rolling window.
    Keys: diverged (0/1), diverged_step (max_steps when not diverged), final_quality, best_quality
    (NaN when never evaluated), d_loss_osc, g_loss_osc, survival, calm, quality_factor, score.
    """
    max_steps = max(1, int(max_steps))
    diverged = outcome == "diverged" or diverged_step is not None
    if diverged and diverged_step is None:  # outcome says diverged but not when: the last step logged
        steps = [s for series in history.values() for s, _ in series]
        diverged_step = max(steps) if steps else max_steps

    lower = lower_is_better(quality_key)
    quality = _values(history, quality_key)
    final = quality[-1] if quality else float("nan")
    best = (min(quality) if lower else max(quality)) if quality else float("nan")

    d_osc, d_rho = _oscillation(_values(history, "train/d_loss"), window)
    g_osc, g_rho = _oscillation(_values(history, "train/g_loss"), window)
    rhos = [r for r in (d_rho, g_rho) if r is not None]

    survival = 0.5 * min(1.0, max(0.0, diverged_step / max_steps)) if diverged else 1.0
    calm = 1.0 - 0.5 * float(np.mean(rhos)) if rhos else 1.0
    if reference is None:
        ref_values = _values(history, reference_key(quality_key))
        reference = ref_values[-1] if ref_values else None
    quality_factor = 1.0
    if reference is not None and math.isfinite(reference) and quality:
        ratio = (
            (reference / final if final > 0 else 1.0)
            if lower
            else (final / reference if reference > 0 else 1.0)
        )
        quality_factor = float(min(1.0, max(0.0, ratio)))

    return {
        "stability/diverged": float(diverged),
        "stability/diverged_step": float(diverged_step if diverged else max_steps),
        "stability/final_quality": float(final),
        "stability/best_quality": float(best),
        "stability/d_loss_osc": d_osc,
        "stability/g_loss_osc": g_osc,
        "stability/survival": survival,
        "stability/calm": calm,
        "stability/quality_factor": quality_factor,
        "stability/score": survival * calm * quality_factor,
    }
