"""The report's matplotlib figures (PNG): Optuna's plots of the study, and per setting the objective of
each seed run (box + strip, the median's bootstrap interval) and the divergence rate (Wilson interval).

Quality axes carry the real-data reference, the reachable ceiling: a dashed line where every run has the
same one, else a band over their range (or, per setting, a line over each box). Optuna's Plotly versions
of its plots, for the MLflow UI, are written by html_pages.py from the same list (optuna_figures)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from wavegan.study.report.importances import importance_threshold, too_few  # noqa: E402
from wavegan.study.report.tables import (  # noqa: E402
    objective_names,
    searched_distributions,
    setting_groups,
    setting_stats,
)

REFERENCE_NAME = "real-data reference"
REFERENCE_COLOR = "#2ca02c"  # matplotlib's C2, also in the Plotly pages
# Optuna's plots whose y axis is the (first) objective: they carry the real-data reference.
QUALITY_AXIS_PLOTS = ("optimization_history", "slice")


def optuna_figures(study: optuna.Study, backend) -> dict[str, Callable[[], Any]]:
    """Optuna's plots of `study` by file stem, each a call that draws it with `backend`:
    optuna.visualization (Plotly figures) or optuna.visualization.matplotlib (Axes), whose functions
    take the same arguments. A multi-objective study is plotted on its first objective, plus its
    Pareto front (two or three objectives)."""
    from optuna.importance import FanovaImportanceEvaluator

    names = objective_names(study)
    single = len(study.directions) == 1
    target = None if single else (lambda t: t.values[0])
    target_name = names[0]
    plots = {
        "optimization_history": lambda: backend.plot_optimization_history(
            study, target=target, target_name=target_name
        ),
        "parallel_coordinate": lambda: backend.plot_parallel_coordinate(
            study, target=target, target_name=target_name
        ),
        "slice": lambda: backend.plot_slice(study, target=target, target_name=target_name),
        "param_importances": lambda: backend.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0), target=target, target_name=target_name
        ),
    }
    if not single and len(study.directions) in (2, 3):
        plots["pareto_front"] = lambda: backend.plot_pareto_front(study, target_names=names)
    return plots


def skip_reason(study: optuna.Study, name: str) -> str | None:
    """Why Optuna's plot `name` is not drawn: no complete trial yet, or (importances) too few trials."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return "no complete trial yet"
    if name == "param_importances" and len(complete) < importance_threshold(study):
        return too_few(study, len(complete), "complete")
    return None


def references_agree(values: list[float]) -> bool:
    """Whether the finite references are one value (within 1 %): then one line, else a band or one each."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and max(finite) - min(finite) <= 0.01 * max(abs(v) for v in finite)


def reference_span(references: list[float]) -> dict[str, Any] | None:
    """The references' median, range and legend label (a line's or a band's); None without any."""
    refs = [v for v in references if math.isfinite(v)]
    if not refs:
        return None
    low, high, median = min(refs), max(refs), float(np.median(refs))
    agree = references_agree(refs)
    label = (
        f"{REFERENCE_NAME} {median:.4g} (held-out real clips: the ceiling)"
        if agree
        else f"{REFERENCE_NAME}s {low:.4g}-{high:.4g} (ceilings differ by setting)"
    )
    return {"reference": median, "reference_low": low, "reference_high": high, "agree": agree, "label": label}


def _draw_reference(axes, references: list[float]) -> dict[str, Any] | None:
    """The real-data reference (the reachable ceiling) on quality axes: one dashed line when every run
    has the same reference, else a band over their range (spectrogram models' ceilings differ)."""
    span = reference_span(references)
    if span is None:
        return None
    for ax in np.ravel(axes):
        if span["agree"]:
            ax.axhline(span["reference"], color="C2", ls="--", lw=1.2, label=span["label"])
        else:
            ax.axhspan(
                span["reference_low"], span["reference_high"], color="C2", alpha=0.15, label=span["label"]
            )
        ax.legend(loc="best", fontsize=7)
    return {k: span[k] for k in ("reference", "reference_low", "reference_high")}


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
    """Optuna's plots as PNG; `references` (the first objective's per-run real-data references) are drawn
    on the plots whose y axis is that objective (optimization history, slice)."""
    from optuna.visualization import matplotlib as ovm

    n_params = len(searched_distributions(study))
    for name, make in optuna_figures(study, ovm).items():
        why = skip_reason(study, name)
        if why:
            notes.append(f"{name}.png skipped: {why}")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                width = {"parallel_coordinate": 1.8 * n_params + 4, "slice": 3.0 * n_params + 2}.get(
                    name, 8.0
                )
                plotted = make()
                if name in QUALITY_AXIS_PLOTS and references:
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
    runs: pd.DataFrame, quality: str | None, study: optuna.Study, out: Path, files: list[Path]
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
        stats = [setting_stats(group) for _, group in settings]
        width = max(6, 1.6 * len(settings))
        if quality and any(len(d) for d in data):
            name = f"objective_by_{_file_name(parameter)}.png"
            drawn[name] = _objective_plot(parameter, labels, data, stats, quality, width, out / name, files)
        name = f"divergence_by_{_file_name(parameter)}.png"
        drawn[name] = _divergence_plot(parameter, labels, stats, width, out / name, files)
    return drawn


def _objective_plot(
    parameter: str,
    labels: list[str],
    data: list[np.ndarray],
    stats: list[dict[str, Any]],
    quality: str,
    width: float,
    path: Path,
    files: list[Path],
) -> dict[str, Any]:
    """Box + strip plot of each setting's per-seed objective, its median's interval and its reference."""
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
    if references_agree(references):
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
    _save(fig, path, files)
    return info


def _divergence_plot(
    parameter: str,
    labels: list[str],
    stats: list[dict[str, Any]],
    width: float,
    path: Path,
    files: list[Path],
) -> dict[str, Any]:
    """Bars of each setting's divergence rate with its Wilson interval and its k/n."""
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
    _save(fig, path, files)
    return {"labels": labels, "rates": rates}
