"""The text of summary.md: trials by state, seed runs and divergences, the real-data reference, which
settings can be told apart (and only then which is better), the best trial, what matters for the objective
and for stability, the per-setting table, and the notes. Also the headline numbers logged as metrics."""

from __future__ import annotations

import math

import optuna
import pandas as pd
from optuna.trial import TrialState

from wavegan.metrics.intervals import wilson_interval
from wavegan.study.report.comparisons import (
    fmt_value,
    interval_text,
    pct_interval,
    ranking,
    stability_spread,
    trial_statement,
)
from wavegan.study.report.finding import finding_section
from wavegan.study.report.importances import objective_importances, stability_importances
from wavegan.study.report.plots import references_agree
from wavegan.study.report.tables import objective_names, primary_parameters, quality_minimized

# Below this many values a median's bootstrap interval covers less than 95 % (see the caution it prints).
SMALL_N = 6


def summary_text(
    study: optuna.Study,
    trials: pd.DataFrame,
    runs: pd.DataFrame,
    settings: pd.DataFrame,
    quality: str | None,
    notes: list[str],
    comparisons: pd.DataFrame | None = None,
) -> tuple[str, dict[str, float]]:
    """summary.md, and the headline numbers (trials by outcome, divergence rate, reference, pairs told
    apart, best value) for the study's MLflow run."""
    metrics: dict[str, float] = {}
    lower = quality_minimized(study, quality)
    primary = primary_parameters(study, settings)
    lines = _overview(study, trials, runs, metrics)
    finding, finding_metrics = [], {}
    if not settings.empty:
        finding, finding_metrics, _ = finding_section(study, settings, lower)
    if finding:
        lines += ["", *finding]
        metrics |= finding_metrics
    if quality and not settings.empty:
        lines += _reference_section(settings[settings["parameter"].isin(primary)], quality, lower, metrics)
    if primary and not settings.empty:
        lines += _comparison_section(settings, primary, quality, lower, comparisons, metrics)
    lines += _trials_section(study, runs, metrics)
    lines += _what_matters(study, runs, settings)
    if not settings.empty:
        lines += _settings_table(settings, quality)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n", metrics


def _overview(
    study: optuna.Study, trials: pd.DataFrame, runs: pd.DataFrame, metrics: dict[str, float]
) -> list[str]:
    """Title, description, trials by outcome, seed runs and divergences, truncated trials, wall-clock."""
    sweep = study.user_attrs.get("sweep", {})
    names = objective_names(study)
    outcomes = trials["outcome"].value_counts().to_dict() if not trials.empty else {}
    metrics.update({f"trials/{k}": float(v) for k, v in outcomes.items()})
    lines = [f"# Study {study.study_name}", ""]
    if sweep.get("description"):
        lines += [sweep["description"], ""]
    directions = [d.name.lower() for d in study.directions]
    lines.append(
        f"{len(trials)} trial(s): "
        + (", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "none")
        + f". Objective: {', '.join(f'{d} {n}' for d, n in zip(directions, names, strict=True))}."
    )
    if not runs.empty:
        k, n = int(runs["diverged"].sum()), len(runs)
        rate = k / n
        low, high = wilson_interval(k, n)
        metrics.update({"runs/divergence_rate": rate, "runs/divergence_rate_ci_low": low})
        metrics["runs/divergence_rate_ci_high"] = high
        lines.append(
            f"{n} seed run(s), {k} diverged ({rate:.0%}, 95 % interval {pct_interval(low, high)}); seeds per "
            f"trial: {sweep.get('seeds', '?')}."
        )
        truncated = trials[trials["truncated"] != ""] if "truncated" in trials else trials.iloc[0:0]
        metrics["trials/truncated"] = float(len(truncated))
        if len(truncated):
            why = ", ".join(f"{c} {w}" for w, c in truncated["truncated"].value_counts().items())
            lines.append(
                f"{len(truncated)} trial(s) ran fewer seeds than planned ({why}): divergence rates count "
                "only the seeds run, so a setting with truncated trials has its rate biased upward (its "
                "seeds stopped after divergences). For rates over a fixed number of seeds set "
                "divergence.stop_trial=false."
            )
        else:
            lines.append("Every trial ran all its planned seeds: rates are over a fixed number of seeds.")
        seconds = runs["seconds"].dropna() if "seconds" in runs else pd.Series(dtype=float)
        if len(seconds):
            lines.append(
                f"Wall-clock per seed run: median {seconds.median():.1f} s (range {seconds.min():.1f}-"
                f"{seconds.max():.1f} s); per setting in the table."
            )
    return lines


def _reference_section(rows: pd.DataFrame, quality: str, lower: bool, metrics: dict[str, float]) -> list[str]:
    """The real-data reference of the compared settings' `rows`, and how far their medians are from it."""
    lines = ["", f"## Real-data reference ({quality.split(' of ', 1)[-1]})", ""]
    refs = rows["reference"].dropna()
    if len(refs) == 0:
        lines.append(
            f"No real-data reference for {quality}: the plots and table have no ceiling (only "
            "eval/<name> metrics log an eval/reference/<name>)."
        )
    else:
        metrics["reference/median"] = float(refs.median())
        what = (
            "held-out real clips scored like generated ones (for a spectrogram model, after its "
            "representation's round trip): the value a perfect generator reaches"
        )
        if references_agree(refs.tolist()):
            lines.append(f"Reference {refs.median():.4g} for every setting: {what}.")
        else:
            lines.append(
                "Ceilings differ by setting, so compare each setting against its own: "
                + "; ".join(
                    f"{r['setting']} {r['reference']:.4g}"
                    for _, r in rows.iterrows()
                    if math.isfinite(r["reference"])
                )
                + f". Reference: {what}."
            )
        ratios = rows["x_reference"].dropna()
        if len(ratios):
            lines.append(
                f"Setting medians are {ratios.min():.3g}x-{ratios.max():.3g}x their reference"
                + (
                    ": far from the ceiling, so differences between settings at this budget may not hold "
                    "for longer training."
                    if lower and ratios.min() > 10
                    else "."
                )
            )
    return lines + _learning_lines(rows, metrics)


def _comparison_section(
    settings: pd.DataFrame,
    primary: list[str],
    quality: str | None,
    lower: bool,
    comparisons: pd.DataFrame | None,
    metrics: dict[str, float],
) -> list[str]:
    """Per compared parameter: the ranking statements on quality and divergence, and the pairwise verdicts."""
    lines = ["", f"## Settings compared ({', '.join(primary)})", ""]
    for parameter in primary:
        rows = settings[settings["parameter"] == parameter]
        if quality:
            lines.append(
                "- "
                + ranking(
                    rows,
                    f"{quality.split(' of ', 1)[-1]} (median over seed runs)",
                    "median",
                    "median_ci_low",
                    "median_ci_high",
                    "quality_runs",
                    lower,
                )
            )
        lines.append(
            "- "
            + ranking(rows, "Divergence rate", "divergence_rate", "rate_ci_low", "rate_ci_high", "runs", True)
        )
    few = settings[settings["parameter"].isin(primary)]["quality_runs"]
    if quality and len(few) and 0 < int(few.min()) < SMALL_N:
        n = int(few[few > 0].min())
        lines.append(
            f"- Caution: with {n} seed run(s) a bootstrap interval of a median is at most [min, max], "
            f"which covers the true median with probability 1 - 2^(1-N) ({1 - 2 ** (1 - n):.0%} at "
            f"N={n}), not 95 %: read 'distinguishable' on quality as weaker evidence (it takes "
            f"{SMALL_N} or more seeds per setting for [min, max] to reach 95 %)."
        )
    # an empty table (one trial: no pair to compare) has no columns
    has_pairs = comparisons is not None and "parameter" in comparisons
    pairs = comparisons[comparisons["parameter"].isin(primary)] if has_pairs else None
    if pairs is not None and len(pairs):
        lines += ["", "Pairwise (95 % intervals apart = distinguishable):", ""]
        shown = (
            pairs
            if len(pairs) <= 15
            else pairs[pairs["quality_distinguishable"] | pairs["divergence_distinguishable"]]
        )
        for _, p in shown.iterrows():
            q = p["quality"] + (f", better: {p['better_quality']}" if p["better_quality"] else "")
            r = p["divergence"] + (f", lower: {p['lower_divergence']}" if p["lower_divergence"] else "")
            lines.append(
                f"- {p['setting_a']} vs {p['setting_b']}: "
                + (f"quality {q}; " if quality else "")
                + f"divergence rate {r}."
            )
        if len(shown) < len(pairs):
            lines.append(
                f"- The other {len(pairs) - len(shown)} pair(s) are not distinguishable on either "
                "(comparisons.csv)."
            )
        metrics["comparisons/distinguishable"] = float(
            (pairs["quality_distinguishable"] | pairs["divergence_distinguishable"]).sum()
        )
        metrics["comparisons/pairs"] = float(len(pairs))
    return lines


def _trials_section(study: optuna.Study, runs: pd.DataFrame, metrics: dict[str, float]) -> list[str]:
    """The best trial (one objective) and whether it is apart from the others, or the Pareto front."""
    lines: list[str] = []
    names = objective_names(study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete and len(study.directions) == 1:
        lines += ["", "## Trials", ""]
        statement, _ = trial_statement(study, runs, names[0])
        metrics["best/value"] = float(study.best_trial.value)
        lines.append(statement)
    elif complete:
        lines += ["", "## Trials", ""]
        lines.append(
            f"Pareto front: trials {', '.join(f'#{t.number}' for t in study.best_trials)} (by their seed "
            "aggregates; each trial's seeds have their own spread, see runs.csv)."
        )
    return lines


def _what_matters(study: optuna.Study, runs: pd.DataFrame, settings: pd.DataFrame) -> list[str]:
    """fANOVA importances where the trial count supports them, and each parameter's gap in divergence."""
    names = objective_names(study)
    lines = ["", "## What matters", ""]
    imp, why = objective_importances(study)
    if imp:
        lines.append(
            f"For the objective ({names[0]}), fANOVA importance: "
            + ", ".join(f"{k} {v:.2f}" for k, v in imp.items())
            + "."
        )
    else:
        lines.append(f"For the objective: {why}.")
    simp, why = stability_importances(study)
    if simp:
        lines.append(
            "For stability (trial divergence rate), fANOVA importance: "
            + ", ".join(f"{k} {v:.2f}" for k, v in simp.items())
            + "."
        )
    else:
        lines.append(f"For stability: {why}.")
    spread = [s for s in stability_spread(settings) if s[1] > 0]
    if spread:
        lines.append(
            "Divergence rate by setting, largest gap first: "
            + "; ".join(
                f"{p}: {_rate(settings, p, w)} at {w} vs {_rate(settings, p, b)} at {b} "
                f"({'distinguishable' if apart else 'not distinguishable'})"
                for p, gap, w, b, apart in spread
            )
            + "."
        )
        top = [p for p, _, _, _, apart in spread if apart][:2]
        if top:
            lines.append(f"Most important for stability (rates distinguishable): {', '.join(top)}.")
        else:
            lines.append(
                "No parameter's settings have distinguishable divergence rates with these seeds: nothing "
                "is ranked for stability."
            )
    elif not runs.empty:
        lines.append("No setting diverged more often than another in these runs.")
    return lines


def _settings_table(settings: pd.DataFrame, quality: str | None) -> list[str]:
    """The per-setting table, as markdown, with its intervals as text."""
    lines = [
        "",
        f"## Per setting ({quality or 'objective'}: median over seed runs that did not diverge, 95 % "
        "bootstrap interval; divergence rate over seed runs, Wilson 95 % interval; x ref = median / "
        "real-data reference; final/first = median over seed runs of the last evaluation's quality over the "
        "first's; learned = runs at or below a third of it, Wilson 95 %; s/run = median wall-clock seconds "
        "per seed run)",
        "",
    ]
    table = settings.assign(
        **{
            "rate 95% CI": [
                pct_interval(a, b)
                for a, b in zip(settings["rate_ci_low"], settings["rate_ci_high"], strict=True)
            ],
            "median 95% CI": [
                interval_text(a, b)
                for a, b in zip(settings["median_ci_low"], settings["median_ci_high"], strict=True)
            ],
            "x ref": settings["x_reference"],
            "final/first": settings["final_over_first"],
            "learned": [_learned_text(row) for _, row in settings.iterrows()],
            "s/run": settings["seconds_per_run"],
            "truncated": settings["truncated_trials"],
            "n quality": settings["quality_runs"],
        }
    )
    cols = [
        "parameter",
        "setting",
        "trials",
        "truncated",
        "runs",
        "diverged",
        "divergence_rate",
        "rate 95% CI",
        "n quality",
        "median",
        "median 95% CI",
        "iqr",
        "reference",
        "x ref",
        "final/first",
        "learned",
        "s/run",
    ]
    lines.append(_markdown(table, cols))
    return lines


def _learned_text(row: pd.Series) -> str:
    """A setting's runs that met the learning bar, "k/n [low, high]" (empty without two evaluations)."""
    n = int(row["learning_runs"])
    if not n:
        return ""
    k = round(row["learned_rate"] * n)
    return f"{k}/{n} {pct_interval(row['learned_ci_low'], row['learned_ci_high'])}"


def _learning_lines(rows: pd.DataFrame, metrics: dict[str, float]) -> list[str]:
    """Did the compared settings' runs learn? The bar: final quality at most a third of the first."""
    n = int(rows["learning_runs"].sum())
    if not n:
        return []
    k = int(round((rows["learned_rate"].fillna(0) * rows["learning_runs"]).sum()))
    metrics["runs/learned_rate"] = k / n
    per_setting = "; ".join(
        f"{r['setting']} {_learned_text(r)}" for _, r in rows.iterrows() if r["learning_runs"]
    )
    verdict = (
        "most runs trained long enough to learn, so the settings are compared on runs that learned"
        if k / n >= 0.5
        else "most runs did not: the comparison is between runs that barely trained, and its differences "
        "may not hold for longer training"
    )
    return [
        f"Learning bar (the last evaluation's quality at most a third of the first's): {k} of {n} seed runs "
        f"met it; {verdict}. Per setting: {per_setting}."
    ]


def _rate(settings: pd.DataFrame, parameter: str, setting: str) -> str:
    """A setting's divergences as "k/n"."""
    row = settings[(settings["parameter"] == parameter) & (settings["setting"] == setting)].iloc[0]
    return f"{int(row['diverged'])}/{int(row['runs'])}"


def _markdown(df: pd.DataFrame, columns: list[str]) -> str:
    """`columns` of `df` as a markdown table, cells through fmt_value (pandas' to_markdown needs tabulate)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(fmt_value(row[c]) for c in columns) + " |")
    return "\n".join(lines)
