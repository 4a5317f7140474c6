"""Optuna's Plotly figures of the study as self-contained HTML pages, so the plots are interactive in the
MLflow UI: optimization history, parallel coordinate, slice, param importances (where importances are
reported), Pareto front (two or three objectives). The same plots as PNG: plots.py.

Self-contained because MLflow (3.17) shows an HTML artifact in an iframe built from the page's text: a
page that loads plotly.js from a CDN or a relative path shows nothing there, and a study's machines may
have no network. Each page therefore inlines plotly.js (include_plotlyjs=True, about 4.7 MB a page).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna

from wavegan.study.report.plots import (
    QUALITY_AXIS_PLOTS,
    REFERENCE_COLOR,
    optuna_figures,
    reference_span,
    skip_reason,
)


def plotly_pages(
    study: optuna.Study, out: Path, files: list[Path], notes: list[str], references: list[float] | None
) -> dict[str, dict[str, Any]]:
    """One `<name>.html` per Optuna plot that has a PNG (a plot skipped there is skipped here, and the
    PNG's note says why); `references` drawn on the objective axes as on the PNGs. Returns what each page
    drew (its reference), by file name."""
    import optuna.visualization as ov

    drawn: dict[str, dict[str, Any]] = {}
    for name, make in optuna_figures(study, ov).items():
        if skip_reason(study, name):
            continue
        path = out / f"{name}.html"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = make()
            if name in QUALITY_AXIS_PLOTS and references:
                info = _draw_reference(fig, references)
                if info:
                    drawn[path.name] = info
            fig.write_html(path, include_plotlyjs=True, full_html=True)
        except Exception as exc:
            notes.append(f"{path.name} skipped: {exc.__class__.__name__}: {str(exc)[:200]}")
            continue
        files.append(path)
    return drawn


def _draw_reference(fig, references: list[float]) -> dict[str, Any] | None:
    """The real-data reference on every subplot: a dashed line, or a band where the references differ."""
    span = reference_span(references)
    if span is None:
        return None
    if span["agree"]:
        fig.add_hline(
            y=span["reference"],
            line={"color": REFERENCE_COLOR, "dash": "dash", "width": 1.5},
            annotation_text=span["label"],
            annotation_position="top left",
        )
    else:
        fig.add_hrect(
            y0=span["reference_low"],
            y1=span["reference_high"],
            fillcolor=REFERENCE_COLOR,
            opacity=0.15,
            line_width=0,
            annotation_text=span["label"],
            annotation_position="top left",
        )
    return {k: span[k] for k in ("reference", "reference_low", "reference_high")}
