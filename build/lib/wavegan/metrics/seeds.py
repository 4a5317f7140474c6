"""Across-seed summary of one configuration (`seeds/...`): a pure function for the Hydra multirun
callback and the Optuna study report.

Following Lucic et al. (2018) and Kurach et al. (2019), one seed says little about a GAN setting: the
summary reports how often it diverges and the distribution of its final quality over the seeds that did
not, each with a 95 % interval (wavegan/metrics/intervals.py), and how many seeds it rests on:

    seeds/count                         seeds that ran (crashes left out: they say nothing about stability)
    seeds/divergence_rate [_ci_low, _ci_high]
                                        diverged / count, Wilson score interval (keeps its coverage at the
                                        3-10 seeds of a study and at rates of 0 or 1)
    seeds/quality_count                 seeds with a finite quality that did not diverge
    seeds/quality_median [_ci_low, _ci_high]
                                        their median, percentile-bootstrap interval of the median; no
                                        interval from fewer than two values (nothing to resample: one seed
                                        says nothing about the spread)
    seeds/quality_iqr, _rel_iqr, _min, _max, _best
                                        the spread (rel_iqr = IQR / |median|, unit-free) and range
    seeds/reference_median              the median of the runs' real-data reference for the quality
                                        (`eval/reference/<name>` for `eval/<name>`: held-out real clips
                                        scored like generated ones; for a spectrogram model, the clips
                                        after the representation's round trip): what a perfect generator
                                        reaches
    seeds/run_score_median              the median of the runs' own `stability/score` (wavegan/metrics/
                                        stability.py) where they logged one

Two settings differ only where their intervals do not overlap (`intervals.distinguishable`). With the
few seeds of a CPU study the percentile bootstrap of a median is optimistic (with N <= 5 seeds even
[min, max] covers the true median with probability 1 - 2^(1-N) < 95 %), so read overlapping intervals as
"not distinguishable with N seeds", never as "equal".

There is no single across-seed score. An earlier `seeds/stability_score` = (1 - rate) / (1 + IQR/|median|)
folded a rate and a spread into one number without an interval, so it ranked settings that could not be
told apart; its IQR/|median| assumes the metric's zero is meaningful (true for a Fréchet distance, not
for an Inception Score, whose floor is 1); and the IQR of 2-3 seeds is mostly noise. Its two parts are
reported separately instead (divergence rate and quality, each with its interval; rel_iqr for spread).

Outcomes: `diverged` counts as a divergence; `failed` (a crash) is left out of the count and reported
as `seeds/failed`; any other outcome (completed, pruned, ...) counts as not diverged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from wavegan.metrics.intervals import bootstrap_interval, wilson_interval
from wavegan.metrics.quality import lower_is_better as _lower_is_better

__all__ = ["format_summary", "reference_key", "summarize_seeds"]


def reference_key(metric: str) -> str | None:
    """The real-data reference logged next to a quality metric: `eval/<name>` -> `eval/reference/<name>`
    (None for metrics without one, e.g. train/... or stability/score)."""
    if metric.startswith("eval/") and not metric.startswith("eval/reference/"):
        return "eval/reference/" + metric[len("eval/") :]
    return None


def summarize_seeds(
    runs: Sequence[Mapping[str, object]],
    quality_key: str = "eval/frechet_distance",
    lower_is_better: bool | None = None,
) -> dict[str, float]:
    """`seeds/...` figures over one dict per seed: {"outcome": ..., <final metrics>...}.

    `lower_is_better`: the quality's direction; None infers it from the key (IS, coverage and entropy
    are higher-is-better, the rest lower). `seeds/quality_best` is the best value in that direction.
    """
    lower = _lower_is_better(quality_key) if lower_is_better is None else bool(lower_is_better)
    counted = [r for r in runs if r.get("outcome") != "failed"]
    diverged = [r for r in counted if r.get("outcome") == "diverged"]
    quality = np.array(
        [v for r in counted if r.get("outcome") != "diverged" if _finite(v := r.get(quality_key))],
        dtype=float,
    )
    count = len(counted)
    nan = float("nan")
    rate = len(diverged) / count if count else nan
    rate_low, rate_high = wilson_interval(len(diverged), count)

    median = float(np.median(quality)) if len(quality) else nan
    iqr = float(np.subtract(*np.percentile(quality, [75, 25]))) if len(quality) else nan
    med_low, med_high = bootstrap_interval(quality, np.median) if len(quality) >= 2 else (nan, nan)
    rel_iqr = iqr / abs(median) if len(quality) and abs(median) > 1e-12 else nan
    ref = reference_key(quality_key)
    references = [float(v) for r in counted if ref and _finite(v := r.get(ref))]
    run_scores = [float(v) for r in counted if _finite(v := r.get("stability/score"))]

    return {
        "seeds/count": float(count),
        "seeds/failed": float(len(runs) - count),
        "seeds/diverged": float(len(diverged)),
        "seeds/divergence_rate": rate,
        "seeds/divergence_rate_ci_low": rate_low,
        "seeds/divergence_rate_ci_high": rate_high,
        "seeds/quality_count": float(len(quality)),
        "seeds/quality_median": median,
        "seeds/quality_median_ci_low": med_low,
        "seeds/quality_median_ci_high": med_high,
        "seeds/quality_iqr": iqr,
        "seeds/quality_rel_iqr": rel_iqr,
        "seeds/quality_min": float(quality.min()) if len(quality) else nan,
        "seeds/quality_max": float(quality.max()) if len(quality) else nan,
        "seeds/quality_best": float(quality.min() if lower else quality.max()) if len(quality) else nan,
        "seeds/reference_median": float(np.median(references)) if references else nan,
        "seeds/run_score_median": float(np.median(run_scores)) if run_scores else nan,
    }


def format_summary(summary: Mapping[str, float], quality_key: str = "quality") -> str:
    """One line: N, divergence rate with its interval, quality median with its interval, the reference."""
    n, k = int(summary["seeds/count"]), int(summary["seeds/diverged"])
    text = f"N={n} seed(s); diverged {k}/{n}"
    if n:
        text += (
            f" = {summary['seeds/divergence_rate']:.0%} [95% CI {summary['seeds/divergence_rate_ci_low']:.0%}"
            f"-{summary['seeds/divergence_rate_ci_high']:.0%}]"
        )
    name = quality_key.split("/")[-1]
    q = int(summary["seeds/quality_count"])
    if q:
        text += f"; {name} median {summary['seeds/quality_median']:.4g}"
        low, high = summary["seeds/quality_median_ci_low"], summary["seeds/quality_median_ci_high"]
        text += f" [95% CI {low:.4g}-{high:.4g}]" if _finite(low) else " (no interval from one seed)"
        text += f" over {q} seed(s)"
    else:
        text += f"; no finite {name}"
    if _finite(ref := summary.get("seeds/reference_median")):
        text += f"; real-data reference {ref:.4g}"
    return text


def _finite(value: object) -> bool:
    try:
        return value is not None and math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
