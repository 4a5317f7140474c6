"""`python -m wavegan.report`: the report of an Optuna study, as files and in the study's MLflow run.

    python -m wavegan.report sweep=optimizer_stability               # storage/name/folder from the study file
    python -m wavegan.report sweep=loss_comparison sweep.storage=postgresql://u:pw@db/optuna
    python -m wavegan.report --storage sqlite:///sweeps/results/x/optuna.db --study x [--out D] [--no-mlflow]

Writes to the study's results folder (sweeps/results/<study_name>/ by default):
    summary.md                 the text summary: trials by state, which settings can be told apart (and
                               only then which is better), what matters for the objective and for
                               stability, the real-data reference, the per-setting table
    trials.csv                 one row per trial: state, outcome, objective(s), params, seeds planned and
                               run (truncated trials), divergences, wall-clock seconds
    runs.csv                   one row per seed run: trial, seed, outcome, its objective value, its
                               real-data reference, seconds, params
    settings.csv               per setting (each categorical choice, their combinations, numeric params in
                               terciles): seed runs, divergence rate with its Wilson 95 % interval, median
                               of the objective with its bootstrap 95 % interval, IQR, the reference,
                               median wall-clock seconds per seed run
    comparisons.csv            every pair of settings of one parameter (or combination): whether their
                               quality-median intervals and their divergence-rate intervals overlap
    optimization_history.png, param_importances.png, parallel_coordinate.png, slice.png
                               Optuna's matplotlib plots (plotly is not needed); the quality plots carry
                               the real-data reference line
    objective_by_<key>.png     box + strip plot of the per-seed objective per setting, the median's
                               interval, and the real-data reference (the reachable ceiling)
    divergence_by_<key>.png    divergence rate per setting with its Wilson interval
The same folder is logged to the study's MLflow parent run under report/ when it can be found.
Too few trials for a plot or for importances is a line in the summary, not an error.

Uncertainty (wavegan/metrics/intervals.py): divergence rates count every seed run of a setting (a trial
that stopped its seeds early, divergence.stop_trial, counts only the seeds it ran and is reported as
truncated); the quality median's interval is a percentile bootstrap over the seed runs that did not
diverge (none from fewer than two). Two settings are "distinguishable" only when their 95 % intervals do
not overlap; otherwise the report says "not distinguishable with N seeds" and ranks nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from optuna.distributions import CategoricalDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from wavegan.metrics.intervals import bootstrap_interval, distinguishable, wilson_interval  # noqa: E402
from wavegan.secret_masking import mask_url  # noqa: E402
from wavegan.study.spec import fingerprint  # noqa: E402

log = logging.getLogger("wavegan.report")
# fANOVA importances (Hutter et al. 2014, Optuna's default evaluator) fit a random forest from parameters
# to the objective and split its variance; Optuna's docs say they are only as reliable as that forest's
# fit and need the search space covered widely, and give no interval. With a handful of trials the forest
# interpolates between a few points and the split reflects seed noise as much as the parameters. We ask
# for the regression rule of thumb of 10 observations per predictor (Peduzzi et al. 1996; Harrell,
# "Regression Modeling Strategies"): 10 completed trials per searched parameter, and never fewer than 20.
# A 2 x 2 grid (4 trials) therefore gets no importances; its per-setting comparisons are the evidence.
MIN_TRIALS_PER_PARAMETER = 10
MIN_TRIALS_FOR_IMPORTANCE = 20
REFERENCE_NAME = "real-data reference"
# Below this many values a median's bootstrap interval covers less than 95 % (see the caution it prints).
SMALL_N = 6


@dataclass
class Report:
    out_dir: Path
    text: str
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    # What each plot drew, by file name (e.g. its reference line): for tests and other reports.
    plots: dict[str, dict[str, Any]] = field(default_factory=dict)


# --- tables ---------------------------------------------------------------------------------------


def _results(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
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
    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    return list(names)


def trials_table(study: optuna.Study) -> pd.DataFrame:
    names = objective_names(study)
    rows = []
    for t in _results(study):
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
    for t in _results(study):
        seed_values = t.user_attrs.get("seed_values") or {}
        if quality is None and seed_values:
            quality = next(iter(seed_values))
        values = seed_values.get(quality, []) if quality else []
        references = (t.user_attrs.get("seed_references") or {}).get(quality, []) if quality else []
        seconds = t.user_attrs.get("seed_seconds") or []
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
            row["truncated"] = _truncated(t)
            row |= {f"param {k}": v for k, v in t.params.items()}
            rows.append(row)
    return pd.DataFrame(rows), quality


def _distributions(study: optuna.Study) -> dict[str, optuna.distributions.BaseDistribution]:
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
    labels = {}
    for code in sorted(codes.unique()):
        members = numeric[codes == code]
        labels[code] = f"{members.min():.3g}..{members.max():.3g}"
    return codes.map(labels), codes


def _stats(group: pd.DataFrame) -> dict[str, Any]:
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
    }


def setting_groups(
    study: optuna.Study, runs: pd.DataFrame
) -> list[tuple[str, list[tuple[str, pd.DataFrame]]]]:
    """(parameter, [(setting, its runs), ...]) for each parameter (choices, or terciles of a numeric
    one) and for the combination of the categorical parameters (e.g. loss x model), settings in order."""
    if runs.empty:
        return []
    columns, ranks = {}, {}
    dists = _distributions(study)
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
            stats = _stats(group)
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
        k for k, d in _distributions(study).items() if isinstance(d, CategoricalDistribution) and k in present
    ]
    if categorical:
        combined = " x ".join(categorical)
        return [combined] if combined in present else categorical[:1]
    return [p for p in present if " x " not in p]


def _interval(row, low: str, high: str) -> tuple[float, float]:
    return float(row[low]), float(row[high])


def _seeds_phrase(na: int, nb: int) -> str:
    return f"with {na} seeds each" if na == nb else f"with {na} and {nb} seeds"


def _verdict(a, b, low: str, high: str, n: str) -> tuple[bool, str]:
    na, nb = int(a[n]), int(b[n])
    if min(na, nb) < 2 and n == "quality_runs":
        return False, f"not distinguishable: no interval from {min(na, nb)} seed(s)"
    if distinguishable(_interval(a, low, high), _interval(b, low, high)):
        return True, "distinguishable"
    return False, f"not distinguishable {_seeds_phrase(na, nb)}"


def comparisons_table(settings: pd.DataFrame, minimize: bool = True) -> pd.DataFrame:
    """Every pair of settings of one parameter (or combination): do their quality-median intervals and
    their divergence-rate intervals overlap, and where they do not, which side is better."""
    rows = []
    if settings.empty:
        return pd.DataFrame(rows)
    for parameter, group in settings.groupby("parameter", sort=False):
        members = [r for _, r in group.iterrows()]
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                q_ok, q_text = _verdict(a, b, "median_ci_low", "median_ci_high", "quality_runs")
                r_ok, r_text = _verdict(a, b, "rate_ci_low", "rate_ci_high", "runs")
                better = ""
                if q_ok:
                    better = a["setting"] if (a["median"] < b["median"]) == minimize else b["setting"]
                lower = ""
                if r_ok:
                    lower = a["setting"] if a["divergence_rate"] < b["divergence_rate"] else b["setting"]
                rows.append(
                    {
                        "parameter": parameter,
                        "setting_a": a["setting"],
                        "setting_b": b["setting"],
                        "quality_distinguishable": q_ok,
                        "quality": q_text,
                        "better_quality": better,
                        "divergence_distinguishable": r_ok,
                        "divergence": r_text,
                        "lower_divergence": lower,
                    }
                )
    return pd.DataFrame(rows)


# --- importances ----------------------------------------------------------------------------------


def importance_threshold(study: optuna.Study) -> int:
    """Completed trials needed before importances are reported (see MIN_TRIALS_PER_PARAMETER)."""
    return max(MIN_TRIALS_FOR_IMPORTANCE, MIN_TRIALS_PER_PARAMETER * len(_distributions(study)))


def _too_few(study: optuna.Study, n: int, what: str) -> str:
    needed = importance_threshold(study)
    text = (
        f"not reported: {n} {what} trial(s) is too few for importances (fANOVA needs about "
        f"{MIN_TRIALS_PER_PARAMETER} per searched parameter, here {needed})"
    )
    if (study.user_attrs.get("sweep", {}).get("sampler") or {}).get("name") == "grid":
        text += "; a grid study runs every combination once, so compare its settings above instead"
    return text


def _importances(study: optuna.Study, target=None) -> dict[str, float]:
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), target=target)


def objective_importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < importance_threshold(study):
        return None, _too_few(study, len(complete), "complete")
    values = [t.values[0] for t in complete]
    if np.ptp(values) == 0:
        return None, "every complete trial has the same objective value: no importances"
    try:
        return _importances(study, target=lambda t: t.values[0]), ""
    except Exception as exc:  # e.g. a parameter that never varied
        return None, f"importances unavailable ({exc.__class__.__name__}: {exc})"


def stability_importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    """fANOVA of the divergence rate over every trial that trained (diverged trials included: Optuna's
    own importances see only COMPLETE trials, so they are copied into a scratch study)."""
    trained = [
        t
        for t in _results(study)
        if t.user_attrs.get("outcome") in ("completed", "diverged") and "divergence_rate" in t.user_attrs
    ]
    rates = [float(t.user_attrs["divergence_rate"]) for t in trained]
    if len(trained) < importance_threshold(study):
        return None, _too_few(study, len(trained), "trained")
    if np.ptp(rates) == 0:
        return None, f"every trial has divergence rate {rates[0]:.0%}: nothing to attribute"
    scratch = optuna.create_study(direction="minimize")
    for t, rate in zip(trained, rates, strict=True):
        scratch.add_trial(
            optuna.trial.create_trial(params=t.params, distributions=t.distributions, value=rate)
        )
    try:
        return _importances(scratch), ""
    except Exception as exc:
        return None, f"stability importances unavailable ({exc.__class__.__name__}: {exc})"


def stability_spread(settings: pd.DataFrame) -> list[tuple[str, float, str, str, bool]]:
    """Per parameter: the gap in divergence rate between its least and most stable setting, and whether
    their Wilson intervals are apart (distinguishable)."""
    spread = []
    if settings.empty:
        return spread
    for parameter, rows in settings[~settings["parameter"].str.contains(" x ")].groupby("parameter"):
        rows = rows[rows["runs"] > 0]
        if len(rows) < 2:
            continue
        worst, best = rows.loc[rows["divergence_rate"].idxmax()], rows.loc[rows["divergence_rate"].idxmin()]
        gap = float(worst["divergence_rate"] - best["divergence_rate"])
        apart = distinguishable(
            _interval(worst, "rate_ci_low", "rate_ci_high"), _interval(best, "rate_ci_low", "rate_ci_high")
        )
        spread.append((parameter, gap, str(worst["setting"]), str(best["setting"]), apart))
    return sorted(spread, key=lambda x: -x[1])


# --- plots ----------------------------------------------------------------------------------------


def _figure(plotted) -> plt.Figure:
    """Optuna's matplotlib plots return an Axes, or an array of them (slice plots)."""
    if isinstance(plotted, plt.Figure):
        return plotted
    if isinstance(plotted, np.ndarray):
        return plotted.ravel()[0].figure
    return plotted.figure


def _save(plotted, path: Path, files: list[Path], layout: bool = True, width: float = 0.0) -> None:
    fig = _figure(plotted)
    if width:  # Optuna's plots: wider for many parameters (axes positions are relative, so they scale)
        fig.set_size_inches(max(fig.get_size_inches()[0], width), max(fig.get_size_inches()[1], 5.0))
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    files.append(path)


def _same(values: list[float]) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and max(finite) - min(finite) <= 0.01 * max(abs(v) for v in finite)


def _draw_reference(axes, references: list[float]) -> dict[str, Any] | None:
    """The real-data reference (the reachable ceiling) on quality axes: one dashed line when every run
    has the same reference, else a band over their range (spectrogram models' ceilings differ)."""
    refs = [v for v in references if math.isfinite(v)]
    if not refs:
        return None
    low, high = min(refs), max(refs)
    for ax in np.ravel(axes):
        if _same(refs):
            ax.axhline(
                float(np.median(refs)),
                color="C2",
                ls="--",
                lw=1.2,
                label=f"{REFERENCE_NAME} {np.median(refs):.4g} (held-out real clips: the ceiling)",
            )
        else:
            ax.axhspan(
                low,
                high,
                color="C2",
                alpha=0.15,
                label=f"{REFERENCE_NAME}s {low:.4g}-{high:.4g} (ceilings differ by setting)",
            )
        ax.legend(loc="best", fontsize=7)
    return {"reference": float(np.median(refs)), "reference_low": low, "reference_high": high}


def _log_scale(ax, values: list[float]) -> bool:
    """A log y axis when the values span more than 30x (generated FD ~1000 against a reference ~25)."""
    finite = [v for v in values if math.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 30:
        ax.set_yscale("log")
        return True
    return False


def optuna_plots(
    study: optuna.Study,
    out: Path,
    files: list[Path],
    notes: list[str],
    references: list[float] | None = None,
    drawn: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Optuna's plots; `references` (the first objective's per-run real-data references) are drawn on
    the plots whose y axis is that objective (optimization history, slice)."""
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as ovm

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = objective_names(study)
    single = len(study.directions) == 1
    target = None if single else (lambda t: t.values[0])
    target_name = names[0]
    plots = {
        "optimization_history": lambda: ovm.plot_optimization_history(
            study, target=target, target_name=target_name
        ),
        "parallel_coordinate": lambda: ovm.plot_parallel_coordinate(
            study, target=target, target_name=target_name
        ),
        "slice": lambda: ovm.plot_slice(study, target=target, target_name=target_name),
        "param_importances": lambda: ovm.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0), target=target, target_name=target_name
        ),
    }
    if not single and len(study.directions) in (2, 3):
        plots["pareto_front"] = lambda: ovm.plot_pareto_front(study, target_names=names)
    for name, make in plots.items():
        if not complete:
            notes.append(f"{name}.png skipped: no complete trial yet")
            continue
        if name == "param_importances" and len(complete) < importance_threshold(study):
            notes.append(f"{name}.png skipped: {_too_few(study, len(complete), 'complete')}")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                n_params = len(_distributions(study))
                width = {"parallel_coordinate": 1.8 * n_params + 4, "slice": 3.0 * n_params + 2}.get(
                    name, 8.0
                )
                plotted = make()
                if name in ("optimization_history", "slice") and references:
                    axes = plotted if isinstance(plotted, np.ndarray) else np.array([plotted])
                    info = _draw_reference(axes, references)
                    if info and drawn is not None:
                        drawn[f"{name}.png"] = info
                _save(plotted, out / f"{name}.png", files, layout=False, width=width)
        except Exception as exc:
            plt.close("all")
            notes.append(f"{name}.png skipped: {exc.__class__.__name__}: {str(exc)[:200]}")


def _file_name(parameter: str) -> str:
    return parameter.replace(" x ", "_").replace("/", "_")


def setting_plots(
    runs: pd.DataFrame, quality: str | None, study, out: Path, files: list[Path]
) -> dict[str, dict[str, Any]]:
    """Per parameter (and categorical combination): the per-seed objective as box + strip plot with the
    median's bootstrap interval and each setting's real-data reference (the ceiling), and the divergence
    rate with its Wilson interval, per setting. Returns what each plot drew, by file name."""
    drawn: dict[str, dict[str, Any]] = {}
    for parameter, settings in setting_groups(study, runs):
        labels = [
            label.replace(f"{parameter}=", "") if " x " not in parameter else label for label, _ in settings
        ]
        data = [group["value"].dropna().to_numpy() for _, group in settings]
        stats = [_stats(group) for _, group in settings]
        width = max(6, 1.6 * len(settings))
        if quality and any(len(d) for d in data):
            name = f"objective_by_{_file_name(parameter)}.png"
            fig, ax = plt.subplots(figsize=(width, 4.5))
            ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
            ax.set_xticks(range(1, len(labels) + 1), labels, rotation=15 if len(labels) > 3 else 0)
            rng = np.random.default_rng(0)
            for i, d in enumerate(data, start=1):
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(d)), d, s=18, alpha=0.7, color="C1", zorder=3)
            for i, st in enumerate(stats, start=1):
                if math.isfinite(st["median_ci_low"]):
                    ax.errorbar(
                        i + 0.25,
                        st["median"],
                        yerr=[
                            [max(0.0, st["median"] - st["median_ci_low"])],
                            [max(0.0, st["median_ci_high"] - st["median"])],
                        ],
                        fmt="o",
                        color="k",
                        ms=4,
                        capsize=3,
                        zorder=4,
                        label="median, 95% bootstrap interval" if i == 1 else None,
                    )
            references = [st["reference"] for st in stats]
            info: dict[str, Any] = {"labels": labels, "references": references}
            if _same(references):
                info |= _draw_reference(ax, references) or {}
            elif any(math.isfinite(r) for r in references):  # each setting against its own ceiling
                for i, ref in enumerate(references, start=1):
                    if math.isfinite(ref):
                        ax.hlines(
                            ref,
                            i - 0.4,
                            i + 0.4,
                            color="C2",
                            ls="--",
                            lw=1.5,
                            label=f"{REFERENCE_NAME} per setting (the ceiling)" if i == 1 else None,
                        )
                ax.legend(loc="best", fontsize=7)
            elif ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize=7)
            info["log_scale"] = _log_scale(ax, [*np.concatenate(data).tolist(), *references])
            ax.set_xlabel(parameter)
            ax.set_ylabel(quality.split(" of ", 1)[-1])
            ax.set_title(f"objective per seed run by {parameter} (diverged runs left out)")
            _save(fig, out / name, files)
            drawn[name] = info
        rates = [st["divergence_rate"] for st in stats]
        counts = [(st["diverged"], st["runs"]) for st in stats]
        fig, ax = plt.subplots(figsize=(width, 4))
        ax.bar(range(len(labels)), rates, color="C3")
        ax.errorbar(
            range(len(labels)),
            rates,
            yerr=[
                [max(0.0, r - st["rate_ci_low"]) for r, st in zip(rates, stats, strict=True)],
                [max(0.0, st["rate_ci_high"] - r) for r, st in zip(rates, stats, strict=True)],
            ],
            fmt="none",
            ecolor="k",
            capsize=3,
            label="Wilson 95% interval",
        )
        ax.set_xticks(range(len(labels)), labels, rotation=15 if len(labels) > 3 else 0)
        for i, (st, (k, n)) in enumerate(zip(stats, counts, strict=True)):
            ax.text(i + 0.08, st["rate_ci_high"] + 0.02, f"{k}/{n}", ha="left", fontsize=8)
        ax.set_ylim(0, 1.15)
        ax.set_xlabel(parameter)
        ax.set_ylabel("divergence rate (seed runs)")
        ax.set_title(f"divergence rate by {parameter}")
        ax.legend(loc="upper right", fontsize=7)
        _save(fig, out / f"divergence_by_{_file_name(parameter)}.png", files)
        drawn[f"divergence_by_{_file_name(parameter)}.png"] = {"labels": labels, "rates": rates}
    return drawn


# --- the report -----------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _markdown(df: pd.DataFrame, columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def _ci(low: float, high: float) -> str:
    return "-" if not (math.isfinite(low) and math.isfinite(high)) else f"[{low:.4g}, {high:.4g}]"


def _pct_ci(low: float, high: float) -> str:
    return "-" if not (math.isfinite(low) and math.isfinite(high)) else f"[{low:.0%}, {high:.0%}]"


def _seed_counts(ns: list[int]) -> str:
    ns = sorted(set(int(n) for n in ns))
    return f"{ns[0]} seed run(s)" if len(ns) == 1 else f"{ns[0]}-{ns[-1]} seed runs"


def _ranking(rows: pd.DataFrame, what: str, value: str, low: str, high: str, n: str, lower: bool) -> str:
    """A statement that names a best setting only when its interval is apart from every other's."""
    rows = rows[rows[value].map(lambda v: isinstance(v, float) and math.isfinite(v))]
    if len(rows) < 2:
        return f"{what}: fewer than two settings have a value; nothing to compare."
    best = rows.loc[rows[value].idxmin() if lower else rows[value].idxmax()]
    others = [r for i, r in rows.iterrows() if i != best.name]
    fmt = (
        (lambda r: f"{r[value]:.0%} {_pct_ci(r[low], r[high])}")
        if "rate" in value
        else (lambda r: f"{r[value]:.4g} {_ci(r[low], r[high])}")
    )

    def apart(r) -> bool:
        if n == "quality_runs" and min(int(r[n]), int(best[n])) < 2:
            return False
        return distinguishable(_interval(best, low, high), _interval(r, low, high))

    tied = [r for r in others if not apart(r)]
    counts = _seed_counts([int(r[n]) for _, r in rows.iterrows()])
    word = "lowest" if lower else "highest"
    if not tied:
        return (
            f"{what}: {best['setting']} is best, {fmt(best)}; its 95 % interval is apart from every other "
            f"setting's ({counts} per setting)."
        )
    if len(tied) == len(others):
        return (
            f"{what}: not distinguishable with {counts} per setting: every setting's 95 % interval "
            f"overlaps that of the {word} ({best['setting']}, {fmt(best)}), so no setting is ranked."
        )
    return (
        f"{what}: {word} at {best['setting']}, {fmt(best)}; not distinguishable with {counts} per setting "
        f"from {', '.join(str(r['setting']) for r in tied)}; the others are distinguishably worse."
    )


def _trial_statement(study: optuna.Study, runs: pd.DataFrame, name: str) -> tuple[str, float]:
    """The best trial by the objective, and whether its seeds' interval is apart from other trials'."""
    best = study.best_trial
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
    intervals = {}
    if not runs.empty:
        complete = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        for number, group in runs[runs["trial"].isin(complete)].groupby("trial"):
            values = group["value"].dropna().to_numpy()
            intervals[number] = bootstrap_interval(values) if len(values) >= 2 else (np.nan, np.nan)
    own = intervals.get(best.number, (np.nan, np.nan))
    head = f"Trial #{best.number} ({params}) has the best {name}, {_fmt(float(best.value))}"
    if not math.isfinite(own[0]):
        return (
            head + "; with fewer than two finite seeds it has no interval, so this is not a ranking.",
            np.nan,
        )
    tied = [k for k, iv in intervals.items() if k != best.number and not distinguishable(own, iv)]
    head += f" (its seeds' median {_ci(*own)})"
    if not tied:
        return head + "; its interval is apart from every other complete trial's.", own[0]
    return (
        head
        + f"; not distinguishable from trial(s) {', '.join(f'#{k}' for k in tied)} (intervals overlap, or no "
        "interval), so it is not ranked above them.",
        own[0],
    )


def summary_text(
    study: optuna.Study,
    trials: pd.DataFrame,
    runs: pd.DataFrame,
    settings: pd.DataFrame,
    quality: str | None,
    notes: list[str],
    comparisons: pd.DataFrame | None = None,
) -> tuple[str, dict[str, float]]:
    sweep = study.user_attrs.get("sweep", {})
    names = objective_names(study)
    outcomes = trials["outcome"].value_counts().to_dict() if not trials.empty else {}
    metrics: dict[str, float] = {f"trials/{k}": float(v) for k, v in outcomes.items()}
    lines = [f"# Study {study.study_name}", ""]
    if sweep.get("description"):
        lines += [sweep["description"], ""]
    directions = [d.name.lower() for d in study.directions]
    lines.append(
        f"{len(trials)} trial(s): "
        + (", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "none")
        + f". Objective: {', '.join(f'{d} {n}' for d, n in zip(directions, names, strict=True))}."
    )
    lower = True
    if quality in names:
        lower = study.directions[names.index(quality)] == optuna.study.StudyDirection.MINIMIZE
    if not runs.empty:
        k, n = int(runs["diverged"].sum()), len(runs)
        rate = k / n
        low, high = wilson_interval(k, n)
        metrics |= {"runs/divergence_rate": rate, "runs/divergence_rate_ci_low": low}
        metrics["runs/divergence_rate_ci_high"] = high
        lines.append(
            f"{n} seed run(s), {k} diverged ({rate:.0%}, 95 % interval {_pct_ci(low, high)}); seeds per "
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
    primary = primary_parameters(study, settings)
    if quality and not settings.empty:
        lines += ["", f"## Real-data reference ({quality.split(' of ', 1)[-1]})", ""]
        rows = settings[settings["parameter"].isin(primary)]
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
            if _same(refs.tolist()):
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
                        ": far from the ceiling, so these runs learned little and differences between "
                        "settings at this budget may not hold for longer training."
                        if lower and ratios.min() > 10
                        else "."
                    )
                )
    if primary and not settings.empty:
        lines += ["", f"## Settings compared ({', '.join(primary)})", ""]
        for parameter in primary:
            rows = settings[settings["parameter"] == parameter]
            if quality:
                lines.append(
                    "- "
                    + _ranking(
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
                + _ranking(
                    rows, "Divergence rate", "divergence_rate", "rate_ci_low", "rate_ci_high", "runs", True
                )
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
        pairs = comparisons[comparisons["parameter"].isin(primary)] if comparisons is not None else None
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
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete and len(study.directions) == 1:
        lines += ["", "## Trials", ""]
        statement, _ = _trial_statement(study, runs, names[0])
        metrics["best/value"] = float(study.best_trial.value)
        lines.append(statement)
    elif complete:
        lines += ["", "## Trials", ""]
        lines.append(
            f"Pareto front: trials {', '.join(f'#{t.number}' for t in study.best_trials)} (by their seed "
            "aggregates; each trial's seeds have their own spread, see runs.csv)."
        )
    lines += ["", "## What matters", ""]
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
    if not settings.empty:
        lines += [
            "",
            f"## Per setting ({quality or 'objective'}: median over seed runs that did not diverge, 95 % "
            "bootstrap interval; divergence rate over seed runs, Wilson 95 % interval; x ref = median / "
            "real-data reference; s/run = median wall-clock seconds per seed run)",
            "",
        ]
        table = settings.assign(
            **{
                "rate 95% CI": [
                    _pct_ci(a, b)
                    for a, b in zip(settings["rate_ci_low"], settings["rate_ci_high"], strict=True)
                ],
                "median 95% CI": [
                    _ci(a, b)
                    for a, b in zip(settings["median_ci_low"], settings["median_ci_high"], strict=True)
                ],
                "x ref": settings["x_reference"],
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
            "s/run",
        ]
        lines.append(_markdown(table, cols))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n", metrics


def _rate(settings: pd.DataFrame, parameter: str, setting: str) -> str:
    row = settings[(settings["parameter"] == parameter) & (settings["setting"] == setting)].iloc[0]
    return f"{int(row['diverged'])}/{int(row['runs'])}"


def build_report(study: optuna.Study, out_dir: Path | str) -> Report:
    """Every table, plot and the summary for `study`, written to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    notes: list[str] = []
    trials = trials_table(study)
    runs, quality = runs_table(study)
    settings = settings_table(study, runs)
    minimize = True
    names = objective_names(study)
    if quality in names:
        minimize = study.directions[names.index(quality)] == optuna.study.StudyDirection.MINIMIZE
    comparisons = comparisons_table(settings, minimize)
    for name, df in (
        ("trials", trials),
        ("runs", runs),
        ("settings", settings),
        ("comparisons", comparisons),
    ):
        df.to_csv(out / f"{name}.csv", index=False)
        files.append(out / f"{name}.csv")
    references = None
    if quality and quality == names[0] and "reference" in runs:
        references = runs["reference"].dropna().tolist() or None
    drawn: dict[str, dict[str, Any]] = {}
    with contextlib.redirect_stderr(io.StringIO()):
        optuna_plots(study, out, files, notes, references, drawn)
        drawn |= setting_plots(runs, quality, study, out, files)
    text, metrics = summary_text(study, trials, runs, settings, quality, notes, comparisons)
    (out / "summary.md").write_text(text)
    files.append(out / "summary.md")
    return Report(out, text, files, notes, metrics, drawn)


def log_report(report: Report, client, run_id: str) -> None:
    """The report folder as the run's report/ artifacts, and its headline numbers as metrics."""
    for path in report.files:  # only the report's files: the folder may also hold the study's database
        client.log_artifact(run_id, str(path), "report")
    for name, value in report.metrics.items():
        if math.isfinite(value):
            client.log_metric(run_id, name, value)


def parent_run_for(study: optuna.Study):
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
