"""The study's tables: one row per trial, one per seed run, one per setting (each categorical choice, their
combination, numeric parameters in terciles) with its intervals. Pure pandas; no plotting, no text."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from wavegan.metrics.intervals import bootstrap_interval, wilson_interval
from wavegan.metrics.stability import LEARNING_BAR


def result_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that are results: not surplus claims, not dead processes that were retried."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return [
        t
        for t in trials
        if t.user_attrs.get("outcome") not in ("surplus", "aborted")
        and not (t.state == TrialState.FAIL and t.number in retried)
    ]


def _outcome(t: optuna.trial.FrozenTrial) -> str:
    if t.state == TrialState.COMPLETE:
        return "completed"
    if t.state == TrialState.FAIL:
        return "failed"
    if t.state in (TrialState.RUNNING, TrialState.WAITING):
        return t.state.name.lower()
    return str(t.user_attrs.get("outcome", t.state.name.lower()))


def objective_names(study: optuna.Study) -> list[str]:
    """The objectives' names (study.set_metric_names), or "objective i" for a study without them."""
    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    return list(names)


def quality_minimized(study: optuna.Study, quality: str | None) -> bool:
    """Whether lower is better for the per-seed `quality` (True unless it is an objective maximized)."""
    names = objective_names(study)
    if quality in names:
        return study.directions[names.index(quality)] == optuna.study.StudyDirection.MINIMIZE
    return True


def trials_table(study: optuna.Study) -> pd.DataFrame:
    names = objective_names(study)
    rows = []
    for t in result_trials(study):
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "outcome": _outcome(t)}
        for i, name in enumerate(names):  # a PRUNED trial's value is its last intermediate value: left out
            row[name] = t.values[i] if t.values and t.state == TrialState.COMPLETE else np.nan
        row |= {f"param {k}": v for k, v in t.params.items()}
        seeds_run = len(t.user_attrs.get("seed_outcomes", []))
        row["seeds_planned"] = t.user_attrs.get("seeds_planned", len(t.user_attrs.get("seeds", [])) or np.nan)
        row["seeds_run"] = t.user_attrs.get("seeds_run", seeds_run)
        row["truncated"] = _truncated(t)
        row["n_diverged"] = t.user_attrs.get("n_diverged", np.nan)
        row["divergence_rate"] = t.user_attrs.get("divergence_rate", np.nan)
        row["seconds"] = t.user_attrs.get("seconds", t.duration.total_seconds() if t.duration else np.nan)
        row["retry_of"] = t.system_attrs.get("failed_trial")
        row["error"] = t.user_attrs.get("error", "")
        row["mlflow_run_id"] = t.user_attrs.get("mlflow_run_id", "")
        rows.append(row)
    return pd.DataFrame(rows)


def _truncated(t: optuna.trial.FrozenTrial) -> str:
    """Why a trial ran fewer seeds than planned ("" when it ran them all, or for an older study that did
    not record seeds_planned: then a trial's seed count is all there is)."""
    attrs = t.user_attrs
    if "seeds_planned" not in attrs:
        return ""
    run = int(attrs.get("seeds_run", len(attrs.get("seed_outcomes", []))))
    if run >= int(attrs["seeds_planned"]) or t.state in (TrialState.RUNNING, TrialState.WAITING):
        return ""
    return str(attrs.get("truncated") or "stopped early")


def _at(values: list, i: int) -> float:
    v = values[i] if i < len(values) else None
    return float(v) if v is not None and math.isfinite(float(v)) else np.nan


def runs_table(study: optuna.Study) -> tuple[pd.DataFrame, str | None]:
    """One row per seed run, with the first per-seed objective (None: the study has only divergence_rate),
    its real-data reference and the seed's wall-clock seconds where the trial recorded them."""
    rows, quality = [], None
    for t in result_trials(study):
        seed_values = t.user_attrs.get("seed_values") or {}
        if quality is None and seed_values:
            quality = next(iter(seed_values))
        values = seed_values.get(quality, []) if quality else []
        references = (t.user_attrs.get("seed_references") or {}).get(quality, []) if quality else []
        seconds = t.user_attrs.get("seed_seconds") or []
        collapses = t.user_attrs.get("seed_collapses") or []
        learning = t.user_attrs.get("seed_learning") or []
        for i, outcome in enumerate(t.user_attrs.get("seed_outcomes", [])):
            row = {
                "trial": t.number,
                "seed": t.user_attrs.get("seeds", [None] * (i + 1))[i],
                "outcome": outcome,
            }
            row["diverged"] = outcome == "diverged"
            row["value"] = _at(values, i)
            row["reference"] = _at(references, i)
            row["seconds"] = _at(seconds, i)
            row["collapsed"] = _at(collapses, i)
            row["final_over_first"] = _at(learning, i)
            row["truncated"] = _truncated(t)
            row |= {f"param {k}": v for k, v in t.params.items()}
            rows.append(row)
    return pd.DataFrame(rows), quality


def searched_distributions(study: optuna.Study) -> dict[str, optuna.distributions.BaseDistribution]:
    """Each searched parameter's distribution, as the first trial that has it recorded it."""
    dists: dict[str, optuna.distributions.BaseDistribution] = {}
    for t in study.get_trials(deepcopy=False):
        for key, dist in t.distributions.items():
            dists.setdefault(key, dist)
    return dists


def _setting_column(runs: pd.DataFrame, key: str, dist) -> tuple[pd.Series, pd.Series]:
    """The setting each run belongs to for `key` (its choice or value, or for a numeric parameter with
    many values its tercile, labelled by the range of values in it) and a rank that orders settings."""
    values = runs[f"param {key}"]
    if isinstance(dist, CategoricalDistribution):
        order = {repr(c): i for i, c in enumerate(dist.choices)}
        return values.map(str), values.map(lambda v: order.get(repr(v), len(order)))
    numeric = values.astype(float)
    few = 6 if isinstance(dist, IntDistribution) else 3
    if numeric.nunique() <= few:
        return values.map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)), numeric
    log = bool(getattr(dist, "log", False))
    codes = pd.Series(
        pd.qcut(np.log10(numeric) if log else numeric, q=3, duplicates="drop").cat.codes, index=runs.index
    )
    ranges = numeric.groupby(codes).agg(["min", "max"])
    labels = {code: f"{low:.3g}..{high:.3g}" for code, (low, high) in ranges.iterrows()}
    return codes.map(labels), codes


def setting_stats(group: pd.DataFrame) -> dict[str, Any]:
    """One setting's figures: seed runs, divergence rate with its Wilson interval, the objective's median
    with its bootstrap interval (no interval from fewer than two values), spread, reference, seconds."""
    finite = group["value"].dropna()
    k, n = int(group["diverged"].sum()), len(group)
    rate_low, rate_high = wilson_interval(k, n)
    med_low, med_high = (
        bootstrap_interval(finite.to_numpy(), np.median) if len(finite) >= 2 else (np.nan,) * 2
    )
    median = float(finite.median()) if len(finite) else np.nan
    refs = group["reference"].dropna() if "reference" in group else pd.Series(dtype=float)
    reference = float(refs.median()) if len(refs) else np.nan
    seconds = group["seconds"].dropna() if "seconds" in group else pd.Series(dtype=float)
    truncated = group[group["truncated"] != ""]["trial"].nunique() if "truncated" in group else 0
    # Collapse rate over the runs that were evaluated often enough to tell (stability/collapse recorded);
    # a diverged run is counted under divergence, not here.
    collapsed = group["collapsed"].dropna() if "collapsed" in group else pd.Series(dtype=float)
    c_low, c_high = wilson_interval(int(collapsed.sum()), len(collapsed))
    # The learning bar (final quality at most a third of the first, lower-is-better orientation) over the
    # runs evaluated at least twice: a study whose runs mostly miss it compares settings that barely trained.
    ratios = group["final_over_first"].dropna() if "final_over_first" in group else pd.Series(dtype=float)
    learned = int((ratios <= LEARNING_BAR).sum())
    l_low, l_high = wilson_interval(learned, len(ratios))
    return {
        "trials": int(group["trial"].nunique()) if "trial" in group else np.nan,
        "truncated_trials": int(truncated),
        "runs": n,
        "diverged": k,
        "divergence_rate": k / n if n else np.nan,
        "rate_ci_low": rate_low,
        "rate_ci_high": rate_high,
        "quality_runs": len(finite),
        "median": median,
        "median_ci_low": med_low,
        "median_ci_high": med_high,
        "q25": float(finite.quantile(0.25)) if len(finite) else np.nan,
        "q75": float(finite.quantile(0.75)) if len(finite) else np.nan,
        "iqr": float(finite.quantile(0.75) - finite.quantile(0.25)) if len(finite) else np.nan,
        "best": np.nan,
        "reference": reference,
        "x_reference": median / reference if math.isfinite(reference) and reference > 0 else np.nan,
        "seconds_per_run": float(seconds.median()) if len(seconds) else np.nan,
        "collapse_runs": len(collapsed),
        "collapse_rate": float(collapsed.mean()) if len(collapsed) else np.nan,
        "collapse_ci_low": c_low if len(collapsed) else np.nan,
        "collapse_ci_high": c_high if len(collapsed) else np.nan,
        "learning_runs": len(ratios),
        "learned_rate": learned / len(ratios) if len(ratios) else np.nan,
        "learned_ci_low": l_low if len(ratios) else np.nan,
        "learned_ci_high": l_high if len(ratios) else np.nan,
        "final_over_first": float(ratios.median()) if len(ratios) else np.nan,
    }


def setting_groups(
    study: optuna.Study, runs: pd.DataFrame
) -> list[tuple[str, list[tuple[str, pd.DataFrame]]]]:
    """(parameter, [(setting, its runs), ...]) for each parameter (choices, or terciles of a numeric
    one) and for the combination of the categorical parameters (e.g. loss x model), settings in order."""
    if runs.empty:
        return []
    columns, ranks = {}, {}
    dists = searched_distributions(study)
    for key, dist in dists.items():
        if f"param {key}" in runs:
            columns[key], ranks[key] = _setting_column(runs, key, dist)
    categorical = [k for k, d in dists.items() if isinstance(d, CategoricalDistribution) and k in columns]
    groupings = [[k] for k in columns]
    if len(categorical) >= 2:
        groupings.insert(0, categorical)
    groups = []
    for keys in groupings:
        labels = pd.Series(
            [" ".join(parts) for parts in zip(*(f"{k}=" + columns[k] for k in keys), strict=True)],
            index=runs.index,
        )
        rank = pd.Series(list(zip(*(ranks[k] for k in keys), strict=True)), index=runs.index)
        order = sorted(labels.unique(), key=lambda lab: min(rank[labels == lab]))
        groups.append((" x ".join(keys), [(label, runs[labels == label]) for label in order]))
    return groups


def settings_table(study: optuna.Study, runs: pd.DataFrame) -> pd.DataFrame:
    """Per setting: runs, divergences, and the median, IQR and best of the per-seed objective."""
    minimize = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    rows = []
    for parameter, settings in setting_groups(study, runs):
        for label, group in settings:
            stats = setting_stats(group)
            finite = group["value"].dropna()
            if len(finite):
                stats["best"] = float(finite.min() if minimize else finite.max())
            rows.append({"parameter": parameter, "setting": label, **stats})
    return pd.DataFrame(rows)


def primary_parameters(study: optuna.Study, settings: pd.DataFrame) -> list[str]:
    """The groupings the summary compares pairwise: the combination of the categorical parameters (each
    cell of a loss x model grid), the one categorical parameter, or, without any, each numeric one."""
    if settings.empty:
        return []
    present = list(dict.fromkeys(settings["parameter"]))
    categorical = [
        k
        for k, d in searched_distributions(study).items()
        if isinstance(d, CategoricalDistribution) and k in present
    ]
    if categorical:
        combined = " x ".join(categorical)
        return [combined] if combined in present else categorical[:1]
    return [p for p in present if " x " not in p]
