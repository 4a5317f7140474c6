"""`python -m wavegan.report`: the report of an Optuna study, as files and in the study's MLflow run.

    python -m wavegan.report sweep=optimizer_stability               # storage/name/folder from the study file
    python -m wavegan.report sweep=loss_comparison sweep.storage=postgresql://u:pw@db/optuna
    python -m wavegan.report --storage sqlite:///sweeps/results/x/optuna.db --study x [--out D] [--no-mlflow]

Writes to the study's results folder (sweeps/results/<study_name>/ by default):
    summary.md                 the text summary: trials by state, best trial, what matters for the
                               objective and for stability, the per-setting table
    trials.csv                 one row per trial: state, outcome, objective(s), params, seeds, divergences
    runs.csv                   one row per seed run: trial, seed, outcome, its objective value, params
    settings.csv               per setting (each categorical choice, their combinations, numeric params in
                               terciles): runs, divergence rate, median and IQR of the objective
    optimization_history.png, param_importances.png, parallel_coordinate.png, slice.png
                               Optuna's matplotlib plots (plotly is not needed)
    objective_by_<key>.png     box + strip plot of the per-seed objective per categorical choice
    divergence_by_<key>.png    divergence rate per setting
The same folder is logged to the study's MLflow parent run under report/ when it can be found.
Too few trials for a plot or for importances is a line in the summary, not an error.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import sys
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

from wavegan.errors import ConfigError, WaveganError  # noqa: E402
from wavegan.sweep_spec import fingerprint, mask_text, mask_url  # noqa: E402

log = logging.getLogger("wavegan.report")
MIN_TRIALS_FOR_IMPORTANCE = 4


@dataclass
class Report:
    out_dir: Path
    text: str
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


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
        row["seeds_run"] = len(t.user_attrs.get("seed_outcomes", []))
        row["n_diverged"] = t.user_attrs.get("n_diverged", np.nan)
        row["divergence_rate"] = t.user_attrs.get("divergence_rate", np.nan)
        row["seconds"] = t.duration.total_seconds() if t.duration else np.nan
        row["retry_of"] = t.system_attrs.get("failed_trial")
        row["error"] = t.user_attrs.get("error", "")
        row["mlflow_run_id"] = t.user_attrs.get("mlflow_run_id", "")
        rows.append(row)
    return pd.DataFrame(rows)


def runs_table(study: optuna.Study) -> tuple[pd.DataFrame, str | None]:
    """One row per seed run, with the first per-seed objective (None: the study has only divergence_rate)."""
    rows, quality = [], None
    for t in _results(study):
        seed_values = t.user_attrs.get("seed_values") or {}
        if quality is None and seed_values:
            quality = next(iter(seed_values))
        values = seed_values.get(quality, []) if quality else []
        for i, outcome in enumerate(t.user_attrs.get("seed_outcomes", [])):
            row = {
                "trial": t.number,
                "seed": t.user_attrs.get("seeds", [None] * (i + 1))[i],
                "outcome": outcome,
            }
            row["diverged"] = outcome == "diverged"
            row["value"] = values[i] if i < len(values) and values[i] is not None else np.nan
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
    finite = group["value"].dropna()
    return {
        "runs": len(group),
        "diverged": int(group["diverged"].sum()),
        "divergence_rate": float(group["diverged"].mean()) if len(group) else np.nan,
        "median": float(finite.median()) if len(finite) else np.nan,
        "q25": float(finite.quantile(0.25)) if len(finite) else np.nan,
        "q75": float(finite.quantile(0.75)) if len(finite) else np.nan,
        "iqr": float(finite.quantile(0.75) - finite.quantile(0.25)) if len(finite) else np.nan,
        "best": np.nan,
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


# --- importances ----------------------------------------------------------------------------------


def _importances(study: optuna.Study, target=None) -> dict[str, float]:
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), target=target)


def objective_importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return (
            None,
            f"{len(complete)} complete trial(s): importances need at least {MIN_TRIALS_FOR_IMPORTANCE}",
        )
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
    if len(trained) < MIN_TRIALS_FOR_IMPORTANCE:
        return (
            None,
            f"{len(trained)} trained trial(s): stability importances need {MIN_TRIALS_FOR_IMPORTANCE}",
        )
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


def stability_spread(settings: pd.DataFrame) -> list[tuple[str, float, str, str]]:
    """Per parameter: the gap in divergence rate between its least and most stable setting."""
    spread = []
    if settings.empty:
        return spread
    for parameter, rows in settings[~settings["parameter"].str.contains(" x ")].groupby("parameter"):
        rows = rows[rows["runs"] > 0]
        if len(rows) < 2:
            continue
        worst, best = rows.loc[rows["divergence_rate"].idxmax()], rows.loc[rows["divergence_rate"].idxmin()]
        gap = float(worst["divergence_rate"] - best["divergence_rate"])
        spread.append((parameter, gap, str(worst["setting"]), str(best["setting"])))
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


def optuna_plots(study: optuna.Study, out: Path, files: list[Path], notes: list[str]) -> None:
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
        if name == "param_importances" and len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
            notes.append(
                f"{name}.png skipped: {len(complete)} complete trial(s), need {MIN_TRIALS_FOR_IMPORTANCE}"
            )
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                n_params = len(_distributions(study))
                width = {"parallel_coordinate": 1.8 * n_params + 4, "slice": 3.0 * n_params + 2}.get(
                    name, 8.0
                )
                _save(make(), out / f"{name}.png", files, layout=False, width=width)
        except Exception as exc:
            plt.close("all")
            notes.append(f"{name}.png skipped: {exc.__class__.__name__}: {str(exc)[:200]}")


def _file_name(parameter: str) -> str:
    return parameter.replace(" x ", "_").replace("/", "_")


def setting_plots(runs: pd.DataFrame, quality: str | None, study, out: Path, files: list[Path]) -> None:
    """Per parameter (and categorical combination): the per-seed objective as box + strip plot, and
    the divergence rate, per setting."""
    for parameter, settings in setting_groups(study, runs):
        labels = [
            label.replace(f"{parameter}=", "") if " x " not in parameter else label for label, _ in settings
        ]
        data = [group["value"].dropna().to_numpy() for _, group in settings]
        width = max(6, 1.6 * len(settings))
        if quality and any(len(d) for d in data):
            fig, ax = plt.subplots(figsize=(width, 4.5))
            ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
            ax.set_xticks(range(1, len(labels) + 1), labels, rotation=15 if len(labels) > 3 else 0)
            rng = np.random.default_rng(0)
            for i, d in enumerate(data, start=1):
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(d)), d, s=18, alpha=0.7, color="C1", zorder=3)
            ax.set_xlabel(parameter)
            ax.set_ylabel(quality.split(" of ", 1)[-1])
            ax.set_title(f"objective per seed run by {parameter} (diverged runs left out)")
            _save(fig, out / f"objective_by_{_file_name(parameter)}.png", files)
        rates = [float(group["diverged"].mean()) for _, group in settings]
        counts = [(int(group["diverged"].sum()), len(group)) for _, group in settings]
        fig, ax = plt.subplots(figsize=(width, 4))
        ax.bar(range(len(labels)), rates, color="C3")
        ax.set_xticks(range(len(labels)), labels, rotation=15 if len(labels) > 3 else 0)
        for i, (rate, (k, n)) in enumerate(zip(rates, counts, strict=True)):
            ax.text(i, rate + 0.02, f"{k}/{n}", ha="center", fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_xlabel(parameter)
        ax.set_ylabel("divergence rate (seed runs)")
        ax.set_title(f"divergence rate by {parameter}")
        _save(fig, out / f"divergence_by_{_file_name(parameter)}.png", files)


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


def summary_text(
    study: optuna.Study,
    trials: pd.DataFrame,
    runs: pd.DataFrame,
    settings: pd.DataFrame,
    quality: str | None,
    notes: list[str],
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
    if not runs.empty:
        rate = float(runs["diverged"].mean())
        metrics["runs/divergence_rate"] = rate
        lines.append(
            f"{len(runs)} seed run(s), {int(runs['diverged'].sum())} diverged ({rate:.0%}); seeds per trial: "
            f"{sweep.get('seeds', '?')}."
        )
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete and len(study.directions) == 1:
        best = study.best_trial
        metrics["best/value"] = float(best.value)
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
        lines.append(f"Best trial #{best.number}: {names[0]} = {_fmt(best.value)} ({params}).")
    elif complete:
        lines.append(f"Pareto front: trials {', '.join(f'#{t.number}' for t in study.best_trials)}.")
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
    spread = stability_spread(settings)
    if spread and spread[0][1] > 0:
        lines.append(
            "Divergence rate by setting, largest gap first: "
            + "; ".join(
                f"{p}: {_rate(settings, p, w)} at {w} vs {_rate(settings, p, b)} at {b}"
                for p, gap, w, b in spread
                if gap > 0
            )
            + "."
        )
        top = [p for p, gap, _, _ in spread if gap > 0][:2]
        lines.append(f"Most important for stability: {', '.join(top)}.")
    elif not runs.empty:
        lines.append("No setting diverged more often than another in these runs.")
    if not settings.empty:
        lines += [
            "",
            f"## Per setting ({quality or 'objective'}: median and IQR over seed runs that did not diverge)",
            "",
        ]
        cols = ["parameter", "setting", "runs", "diverged", "divergence_rate", "median", "q25", "q75", "best"]
        lines.append(_markdown(settings, cols))
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
    for name, df in (("trials", trials), ("runs", runs), ("settings", settings)):
        df.to_csv(out / f"{name}.csv", index=False)
        files.append(out / f"{name}.csv")
    with contextlib.redirect_stderr(io.StringIO()):
        optuna_plots(study, out, files, notes)
        setting_plots(runs, quality, study, out, files)
    text, metrics = summary_text(study, trials, runs, settings, quality, notes)
    (out / "summary.md").write_text(text)
    files.append(out / "summary.md")
    return Report(out, text, files, notes, metrics)


def log_report(report: Report, client, run_id: str) -> None:
    """The report folder as the run's report/ artifacts, and its headline numbers as metrics."""
    for path in report.files:  # only the report's files: the folder may also hold the study's database
        client.log_artifact(run_id, str(path), "report")
    for name, value in report.metrics.items():
        if math.isfinite(value):
            client.log_metric(run_id, name, value)


def _parent_run(study: optuna.Study):
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


USAGE = __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    argv = sys.argv[1:] if argv is None else list(argv)
    storage = None
    try:
        sweep, sweep_overrides, study_name, out, use_mlflow, show = None, {}, None, None, True, False
        items = iter(argv)
        for item in items:
            if item in ("-h", "--help"):
                print(USAGE)
                return 0
            if item in ("--cfg", "-c"):
                next(items, None)
                show = True
            elif item == "--storage":
                storage = next(items, None)
            elif item == "--study":
                study_name = next(items, None)
            elif item == "--out":
                out = next(items, None)
            elif item == "--no-mlflow":
                use_mlflow = False
            elif item.startswith("sweep="):
                sweep = item.partition("=")[2]
            elif item.startswith("sweep.") and "=" in item:
                key, _, value = item.partition("=")
                sweep_overrides[key[len("sweep.") :]] = value
            else:
                raise ConfigError(f"unexpected argument {item!r}. Usage:\n{USAGE}")
        if show and not sweep:
            print(USAGE)
            return 0
        if sweep:
            from wavegan.sweep_spec import load_spec

            spec = load_spec(sweep, sweep_overrides)
            storage, study_name = storage or spec.storage, study_name or spec.study_name
            out = out or spec.results_dir
        if not storage or not study_name:
            raise ConfigError(
                f"which study? Pass sweep=<name>, or --storage URL --study NAME. Usage:\n{USAGE}"
            )
        if show:
            print(f"storage: {mask_url(storage)}\nstudy: {study_name}\nout: {out}")
            return 0
        from wavegan.sweep_spec import RESULTS_ROOT

        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
        except KeyError:
            raise ConfigError(
                f"no study {study_name!r} in {mask_url(storage)}. Known: "
                f"{', '.join(optuna.get_all_study_names(storage)) or '(none)'}. Fix: run it first "
                "(python -m wavegan.sweep sweep=<name>) or pass the right --study / sweep.study_name."
            ) from None
        except Exception as exc:
            raise WaveganError(
                f"cannot open {mask_url(storage)}: {exc.__class__.__name__}: {mask_text(str(exc), storage)}"
            ) from None
        report = build_report(study, Path(out or RESULTS_ROOT / study_name))
        print(report.text)
        if use_mlflow:
            client, run_id = _parent_run(study)
            if run_id:
                log_report(report, client, run_id)
                print(f"logged to MLflow run {run_id}")
            else:
                print("(no MLflow parent run for this study in this tracking store: not logged)")
        print(f"report: {report.out_dir}")
        return 0
    except WaveganError as exc:
        message = mask_text(str(exc), storage)
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
