"""A study's `finding:` checked by its report: each cell against the baseline on quality, divergence and
collapse rates with their intervals, and a verdict that says `undecided` when the seeds cannot tell."""

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from wavegan.study.report import build_report

QUALITY = "median of eval/frechet_distance"
DISTS = {
    "penalty": CategoricalDistribution(["none", "r1"]),
    "model.d_norm": CategoricalDistribution(["none", "spectral"]),
}
FINDING = {
    "statement": "With the non-saturating loss, a gradient penalty or spectral normalisation helps.",
    "source": "Kurach et al. 2019",
    "baseline": {"penalty": "none", "model.d_norm": "none"},
    "expect": "better",
}


def cell(study, penalty, d_norm, values, collapses):
    outcomes = ["diverged" if v is None else "completed" for v in values]
    finite = [v for v in values if v is not None]
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.COMPLETE if finite else TrialState.PRUNED,
            params={"penalty": penalty, "model.d_norm": d_norm},
            distributions=DISTS,
            value=float(np.median(finite)) if finite else None,
            user_attrs={
                "outcome": "completed" if finite else "diverged",
                "seeds": list(range(len(values))),
                "seed_outcomes": outcomes,
                "seed_values": {QUALITY: list(values)},
                "seed_collapses": list(collapses),
                "n_diverged": outcomes.count("diverged"),
                "divergence_rate": outcomes.count("diverged") / len(values),
            },
        )
    )


def study_with(cells) -> optuna.Study:
    study = optuna.create_study()
    study.set_metric_names([QUALITY])
    study.set_user_attr("sweep", {"description": "regularisation", "finding": FINDING})
    for args in cells:
        cell(study, *args)
    return study


def test_clear_gains_everywhere_reproduce_the_finding(tmp_path):
    n = 12
    study = study_with(
        [
            ("none", "none", [None] * 6 + [900 + i for i in range(6)], [1] * 6 + [1] * 6),
            ("r1", "none", [300 + i for i in range(n)], [0] * n),
            ("none", "spectral", [320 + i for i in range(n)], [0] * n),
            ("r1", "spectral", [280 + i for i in range(n)], [0] * n),
        ]
    )
    report = build_report(study, tmp_path)
    assert "## Published finding" in report.text and "Kurach et al. 2019" in report.text
    assert "**Verdict: reproduced.** 3 of 3 cells" in report.text
    assert report.metrics["finding/reproduced"] == 1.0
    assert (tmp_path / "finding.csv").is_file()


def test_a_cell_worse_than_the_baseline_means_not_reproduced(tmp_path):
    n = 10
    study = study_with(
        [
            ("none", "none", [300 + i for i in range(n)], [0] * n),
            ("r1", "none", [900 + i for i in range(n)], [0] * n),  # distinguishably worse quality
            ("none", "spectral", [305 + i for i in range(n)], [0] * n),
            ("r1", "spectral", [298 + i for i in range(n)], [0] * n),
        ]
    )
    report = build_report(study, tmp_path)
    assert "**Verdict: not reproduced.**" in report.text and report.metrics["finding/reproduced"] == 0.0
    assert "| penalty=r1 model.d_norm=none |" in report.text and "contradicts" in report.text


def test_overlapping_intervals_are_undecided_not_a_ranking(tmp_path):
    rng = np.random.default_rng(0)
    study = study_with(
        [
            (p, d, list(rng.normal(500, 80, 3)), [0, 0, 0])
            for p in ("none", "r1")
            for d in ("none", "spectral")
        ]
    )
    report = build_report(study, tmp_path)
    assert "**Verdict: undecided.** 0 of 3 cells" in report.text
    assert "More seeds narrow the intervals" in report.text
    assert np.isnan(report.metrics["finding/reproduced"])


def test_a_study_with_one_trial_still_gets_a_report(tmp_path):
    study = study_with([("none", "none", [500.0, 510.0], [0, 0])])
    report = build_report(study, tmp_path)
    assert "No results for" not in report.text and (tmp_path / "summary.md").is_file()
