"""Across-seed summary of one configuration (`seeds/...`): a pure function for the Hydra multirun
callback and the Optuna objective.

Following Lucic et al. (2018) and Kurach et al. (2019), one seed says little about a GAN setting: the
summary reports how often it diverges and the distribution (median, interquartile range, range) of its
final quality over the seeds that did not, and one across-seed stability score:

    seeds/stability_score = (1 - divergence_rate) x 1 / (1 + IQR / |median|)

The first factor is the share of seeds that trained to the end; the second penalises spread relative
to the typical value (unit-free: a Fréchet distance of 10 +- 5 spreads as much as 100 +- 50), 1 when
every seed reaches the same quality, 1/2 when the IQR equals the median. "More stable" in the papers'
sense, fewer failures and less spread at equal budget, is a higher score. With fewer than two finite
quality values (or none: evaluation off) the spread factor is 1.

Outcomes: `diverged` counts as a divergence; `failed` (a crash, which says nothing about stability)
is left out of the count and reported as `seeds/failed`; any other outcome (completed, pruned, ...)
counts as not diverged. Quality figures use only runs that did not diverge and have a finite value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from wavegan.metrics.quality import lower_is_better as _lower_is_better

__all__ = ["summarize_seeds"]


def summarize_seeds(
    runs: Sequence[Mapping[str, object]],
    quality_key: str = "eval/frechet_distance",
    lower_is_better: bool | None = None,
) -> dict[str, float]:
    """`seeds/...` figures over one dict per seed: {"outcome": ..., <final metrics>...}.

    `lower_is_better`: the quality's direction; None infers it from the key (IS, coverage and entropy
    are higher-is-better, the rest lower). `seeds/quality_best` is the best value in that direction;
    `seeds/run_score_median` is the median of the runs' own `stability/score` where they have one.
    """
    lower = _lower_is_better(quality_key) if lower_is_better is None else bool(lower_is_better)
    counted = [r for r in runs if r.get("outcome") != "failed"]
    diverged = [r for r in counted if r.get("outcome") == "diverged"]
    quality = np.array(
        [v for r in counted if r.get("outcome") != "diverged" if _finite(v := r.get(quality_key))],
        dtype=float,
    )
    count = len(counted)
    divergence_rate = len(diverged) / count if count else float("nan")

    nan = float("nan")
    median = float(np.median(quality)) if len(quality) else nan
    iqr = float(np.subtract(*np.percentile(quality, [75, 25]))) if len(quality) else nan
    spread_factor = 1.0
    if len(quality) >= 2:
        spread_factor = 1.0 / (1.0 + iqr / abs(median)) if abs(median) > 1e-12 else (1.0 if iqr == 0 else 0.0)
    run_scores = [float(v) for r in counted if _finite(v := r.get("stability/score"))]

    return {
        "seeds/count": float(count),
        "seeds/failed": float(len(runs) - count),
        "seeds/diverged": float(len(diverged)),
        "seeds/divergence_rate": divergence_rate,
        "seeds/quality_count": float(len(quality)),
        "seeds/quality_median": median,
        "seeds/quality_iqr": iqr,
        "seeds/quality_min": float(quality.min()) if len(quality) else nan,
        "seeds/quality_max": float(quality.max()) if len(quality) else nan,
        "seeds/quality_best": float(quality.min() if lower else quality.max()) if len(quality) else nan,
        "seeds/run_score_median": float(np.median(run_scores)) if run_scores else nan,
        "seeds/stability_score": (1.0 - divergence_rate) * spread_factor if count else nan,
    }


def _finite(value: object) -> bool:
    try:
        return value is not None and math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
