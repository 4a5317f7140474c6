"""The report of an Optuna study, as files and in the study's MLflow run (the command: wavegan/cli/report.py).

build_report(study, folder) writes to the study's results folder (sweeps/results/<study_name>/ by default):
    summary.md                 the text summary: trials by state, which settings can be told apart (and
                               only then which is better), what matters for the objective and for
                               stability, the real-data reference, the per-setting table      (summary.py)
    trials.csv                 one row per trial: state, outcome, objective(s), params, seeds planned and
                               run (truncated trials), divergences, wall-clock seconds          (tables.py)
    runs.csv                   one row per seed run: trial, seed, outcome, its objective value, its
                               real-data reference, seconds, params
    settings.csv               per setting (each categorical choice, their combinations, numeric params in
                               terciles): seed runs, divergence rate with its Wilson 95 % interval, median
                               of the objective with its bootstrap 95 % interval, IQR, the reference,
                               median wall-clock seconds per seed run
    comparisons.csv            every pair of settings of one parameter (or combination): whether their
                               quality-median intervals and their divergence-rate intervals overlap
                                                                                           (comparisons.py)
    finding.csv                with a study file's `finding:`, each cell against the baseline cell on
                               quality, divergence and collapse rates, and the verdict (finding.py)
    optimization_history.png, parallel_coordinate.png, slice.png, param_importances.png
                               Optuna's matplotlib plots; the quality plots carry the real-data
                               reference line                                                   (plots.py)
    optimization_history.html, parallel_coordinate.html, slice.html, param_importances.html
                               the same as Optuna's Plotly figures, self-contained pages that are
                               interactive in the MLflow UI                                (html_pages.py)
    objective_by_<key>.png     box + strip plot of the per-seed objective per setting, the median's
                               interval, and the real-data reference (the reachable ceiling)
    divergence_by_<key>.png    divergence rate per setting with its Wilson interval
(a multi-objective study also gets pareto_front.png/.html). log_report logs these files to the study's
MLflow parent run (parent_run_for) under report/. Too few trials for a plot or for importances
(importances.py) is a line in the summary, not an error.

Uncertainty (wavegan/metrics/intervals.py): divergence rates count every seed run of a setting (a trial
that stopped its seeds early, divergence.stop_trial, counts only the seeds it ran and is reported as
truncated); the quality median's interval is a percentile bootstrap over the seed runs that did not
diverge (none from fewer than two). Two settings are "distinguishable" only when their 95 % intervals do
not overlap; otherwise the report says "not distinguishable with N seeds" and ranks nothing.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from wavegan.secret_masking import mask_url
from wavegan.study.report.comparisons import comparisons_table
from wavegan.study.report.finding import finding_section
from wavegan.study.report.html_pages import plotly_pages
from wavegan.study.report.plots import optuna_plots, setting_plots
from wavegan.study.report.summary import summary_text
from wavegan.study.report.tables import (
    objective_names,
    quality_minimized,
    runs_table,
    settings_table,
    trials_table,
)
from wavegan.study.spec import fingerprint

__all__ = ["Report", "build_report", "log_report", "parent_run_for"]


@dataclass
class Report:
    out_dir: Path
    text: str
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    # What each plot drew, by file name (e.g. its reference line): for tests and other reports.
    plots: dict[str, dict[str, Any]] = field(default_factory=dict)


def build_report(study: optuna.Study, out_dir: Path | str) -> Report:
    """Every table, plot and the summary for `study`, written to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    notes: list[str] = []
    trials = trials_table(study)
    runs, quality = runs_table(study)
    settings = settings_table(study, runs)
    comparisons = comparisons_table(settings, quality_minimized(study, quality))
    _, _, finding = finding_section(study, settings, quality_minimized(study, quality))
    for name, df in (
        ("trials", trials),
        ("runs", runs),
        ("settings", settings),
        ("comparisons", comparisons),
        ("finding", finding),
    ):
        if name == "finding" and df.empty:
            continue
        df.to_csv(out / f"{name}.csv", index=False)
        files.append(out / f"{name}.csv")
    references = None
    if quality and quality == objective_names(study)[0] and "reference" in runs:
        references = runs["reference"].dropna().tolist() or None
    drawn: dict[str, dict[str, Any]] = {}
    with contextlib.redirect_stderr(io.StringIO()):
        optuna_plots(study, out, files, notes, references, drawn)
        drawn |= plotly_pages(study, out, files, notes, references)
        drawn |= setting_plots(runs, quality, study, out, files)
    text, metrics = summary_text(study, trials, runs, settings, quality, notes, comparisons)
    (out / "summary.md").write_text(text)
    files.append(out / "summary.md")
    return Report(out, text, files, notes, metrics, drawn)


def log_report(report: Report, client, run_id: str) -> None:
    """The report's files as the run's report/ artifacts, and its headline numbers as metrics."""
    for path in report.files:  # only the report's files: the folder may also hold the study's database
        client.log_artifact(run_id, str(path), "report")
    for name, value in report.metrics.items():
        if math.isfinite(value):
            client.log_metric(run_id, name, value)


def parent_run_for(study: optuna.Study):
    """(MlflowClient, run id) of the study's MLflow parent run in this tracking store, or (None, None)
    when the study has none there (another store, or the run was deleted)."""
    from mlflow.tracking import MlflowClient

    from wavegan import tracking

    uri = tracking.configure()
    run_id = study.user_attrs.get("mlflow_parent_runs", {}).get(fingerprint(mask_url(uri)))
    if not run_id:
        return None, None
    client = MlflowClient()
    try:
        client.get_run(run_id)
    except Exception:
        return None, None
    return client, run_id
