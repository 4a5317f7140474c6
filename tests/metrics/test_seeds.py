"""`wavegan.metrics.seeds.summarize_seeds` and the multirun summary lines: known cases, intervals, N."""

import math

import pytest

from wavegan.metrics.seeds import format_summary, reference_key, summarize_seeds
from wavegan.training.callbacks import summary_lines

FD = "eval/frechet_distance"


def runs(*pairs, key=FD, **extra):
    return [{"outcome": o, key: v, "stability/score": 0.5, **extra} for o, v in pairs]


def test_counts_quantiles_and_intervals():
    out = summarize_seeds(runs(("completed", 10), ("completed", 12), ("completed", 14), ("diverged", 900)))
    assert out["seeds/count"] == 4 and out["seeds/diverged"] == 1 and out["seeds/quality_count"] == 3
    assert out["seeds/divergence_rate"] == 0.25
    assert out["seeds/quality_median"] == 12 and out["seeds/quality_iqr"] == pytest.approx(2.0)
    assert out["seeds/quality_rel_iqr"] == pytest.approx(2 / 12)
    assert (out["seeds/quality_min"], out["seeds/quality_max"], out["seeds/quality_best"]) == (10, 14, 10)
    assert out["seeds/run_score_median"] == 0.5
    # Wilson 1/4: (0.0456, 0.6994); the diverged seed's 900 is not a quality value.
    assert out["seeds/divergence_rate_ci_low"] == pytest.approx(0.0456, abs=1e-3)
    assert out["seeds/divergence_rate_ci_high"] == pytest.approx(0.6994, abs=1e-3)
    low, high = out["seeds/quality_median_ci_low"], out["seeds/quality_median_ci_high"]
    assert 10 <= low <= 12 <= high <= 14  # the bootstrap interval of a median contains the median
    assert "seeds/stability_score" not in out  # folded rate and spread without an interval: removed


def test_no_divergence_in_five_seeds_still_allows_a_rate_up_to_43_percent():
    out = summarize_seeds(runs(*[("completed", v) for v in (30, 31, 29, 35, 28)]))
    assert out["seeds/divergence_rate"] == 0 and out["seeds/divergence_rate_ci_low"] == 0
    assert out["seeds/divergence_rate_ci_high"] == pytest.approx(0.4345, abs=1e-3)
    assert out["seeds/quality_median_ci_low"] <= 30 <= out["seeds/quality_median_ci_high"]


def test_one_seed_has_a_rate_interval_but_no_quality_interval():
    out = summarize_seeds(runs(("completed", 10)))
    assert out["seeds/count"] == 1 and out["seeds/quality_median"] == 10 and out["seeds/quality_iqr"] == 0
    assert out["seeds/divergence_rate_ci_high"] == pytest.approx(0.7935, abs=1e-3)  # Wilson 0/1
    assert math.isnan(out["seeds/quality_median_ci_low"]) and math.isnan(out["seeds/quality_median_ci_high"])
    assert "no interval from one seed" in format_summary(out, FD)


def test_failed_runs_are_left_out_and_directions_and_empty():
    out = summarize_seeds(runs(("completed", 10), ("failed", float("nan"))))
    assert out["seeds/count"] == 1 and out["seeds/failed"] == 1 and out["seeds/divergence_rate"] == 0
    ins = runs(("completed", 2.0), ("completed", 5.0), key="eval/inception_score")
    assert summarize_seeds(ins, quality_key="eval/inception_score")["seeds/quality_best"] == 5.0
    assert (
        summarize_seeds(ins, quality_key="eval/inception_score", lower_is_better=True)["seeds/quality_best"]
        == 2.0
    )
    empty = summarize_seeds([])
    assert empty["seeds/count"] == 0 and math.isnan(empty["seeds/divergence_rate"])
    assert math.isnan(empty["seeds/divergence_rate_ci_low"]) and math.isnan(empty["seeds/quality_median"])
    every = summarize_seeds(runs(("diverged", 1), ("diverged", 2)))
    assert every["seeds/divergence_rate"] == 1 and every["seeds/divergence_rate_ci_high"] == 1
    assert every["seeds/quality_count"] == 0


def test_reference_is_the_runs_real_data_figure():
    assert reference_key(FD) == "eval/reference/frechet_distance"
    assert reference_key("eval/reference/frechet_distance") is None
    assert reference_key("stability/score") is None and reference_key("train/wasserstein") is None
    members = runs(
        ("completed", 900), ("completed", 1100), ("diverged", 5), **{"eval/reference/frechet_distance": 27}
    )
    out = summarize_seeds(members)
    assert out["seeds/reference_median"] == 27
    line = format_summary(out, FD)
    assert "N=3 seed(s)" in line and "diverged 1/3" in line and "real-data reference 27" in line
    assert math.isnan(summarize_seeds(runs(("completed", 1.0)))["seeds/reference_median"])


def test_summary_lines_say_which_settings_can_be_told_apart():
    tight = {"setting": "a", **summarize_seeds(runs(*[("completed", v) for v in (10, 11, 12, 10.5, 11.5)]))}
    far = {"setting": "b", **summarize_seeds(runs(*[("completed", v) for v in (100, 110, 120, 105, 115)]))}
    near = {"setting": "c", **summarize_seeds(runs(*[("completed", v) for v in (9, 11, 30, 12, 10)]))}
    lines = summary_lines([tight, far, near], FD)
    assert lines[0].startswith("a: N=5 seed(s)") and "[95% CI" in lines[0]
    pairs = {line.split(":")[0]: line for line in lines[3:]}
    assert "frechet_distance median distinguishable" in pairs["a vs b"]
    assert "frechet_distance median not distinguishable with 5 and 5 seeds" in pairs["a vs c"]
    assert "divergence rate not distinguishable with 5 and 5 seeds" in pairs["a vs b"]  # 0/5 vs 0/5
