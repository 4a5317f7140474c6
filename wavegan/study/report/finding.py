"""Does the study reproduce a published finding? (a study file's `finding:`, wavegan/study/schema.py)

Each cell of the study's categorical grid is compared with the `baseline` cell on three figures, each with
its 95 % interval: the quality median (bootstrap), the divergence rate and the collapse rate (Wilson).
A difference counts only where the two intervals do not overlap (wavegan/metrics/intervals.py), so with
few seeds most comparisons are "not distinguishable", and the verdict says so instead of guessing:

    supports     the cell is distinguishably better than the baseline on at least one figure (in the
                 direction the finding expects) and distinguishably worse on none
    contradicts  the cell is distinguishably worse on at least one figure
    undecided    no figure tells the two apart with the seeds run

    reproduced       every compared cell supports the finding
    not reproduced   some cell contradicts it
    undecided        otherwise (how many cells support it is given)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution

from wavegan.metrics.intervals import distinguishable
from wavegan.study.report.comparisons import interval_text, pct_interval
from wavegan.study.report.tables import searched_distributions

# (figure, its columns in settings.csv, lower is better?) -- quality's direction is the study's
FIGURES = (
    ("quality", "median", "median_ci_low", "median_ci_high", None),
    ("divergence rate", "divergence_rate", "rate_ci_low", "rate_ci_high", True),
    ("collapse rate", "collapse_rate", "collapse_ci_low", "collapse_ci_high", True),
)


def _grid(study: optuna.Study, settings: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """The categorical keys and the settings rows of their combination (one row per cell)."""
    keys = [k for k, d in searched_distributions(study).items() if isinstance(d, CategoricalDistribution)]
    parameter = " x ".join(keys)
    return keys, settings[settings["parameter"] == parameter] if keys else settings.iloc[0:0]


def _compare(cell: pd.Series, base: pd.Series, lower_is_better: bool) -> dict[str, str]:
    """For each figure: 'better', 'worse' or 'n.d.' (not distinguishable, or not measured)."""
    out = {}
    for name, value, low, high, lower in FIGURES:
        lower = lower_is_better if lower is None else lower
        a, b = (cell[low], cell[high]), (base[low], base[high])
        if not all(math.isfinite(float(v)) for v in (*a, *b)) or not distinguishable(a, b):
            out[name] = "n.d."
        else:
            out[name] = "better" if (cell[value] < base[value]) == lower else "worse"
    return out


def _cell_verdict(comparison: dict[str, str], expect: str) -> str:
    good, bad = ("better", "worse") if expect == "better" else ("worse", "better")
    if bad in comparison.values():
        return "contradicts"
    return "supports" if good in comparison.values() else "undecided"


def finding_section(
    study: optuna.Study, settings: pd.DataFrame, minimize: bool
) -> tuple[list[str], dict[str, float], pd.DataFrame]:
    """(summary lines, metrics, the per-cell table) for the study's finding; empty without one."""
    finding: dict[str, Any] | None = study.user_attrs.get("sweep", {}).get("finding")
    if not finding:
        return [], {}, pd.DataFrame()
    keys, cells = _grid(study, settings)
    baseline = finding["baseline"]
    label = " ".join(f"{k}={baseline[k]}" for k in keys if k in baseline)
    lines = [
        "## Published finding",
        "",
        f"> {finding['statement']}" + (f" ({finding['source']})" if finding.get("source") else ""),
        "",
    ]
    base_rows = cells[cells["setting"] == label]
    if base_rows.empty:
        lines += [f"No results for the baseline cell `{label}` yet: the finding cannot be checked."]
        return lines, {}, pd.DataFrame()
    base = base_rows.iloc[0]
    expect = str(finding.get("expect", "better"))
    rows = []
    for _, cell in cells[cells["setting"] != label].iterrows():
        comparison = _compare(cell, base, minimize)
        rows.append({"cell": cell["setting"], **comparison, "verdict": _cell_verdict(comparison, expect)})
    table = pd.DataFrame(rows, columns=["cell", *(name for name, *_ in FIGURES), "verdict"])
    verdicts = table["verdict"].tolist() if len(table) else []
    if verdicts and all(v == "supports" for v in verdicts):
        verdict = "reproduced"
    elif "contradicts" in verdicts:
        verdict = "not reproduced"
    else:
        verdict = "undecided"
    supporting = verdicts.count("supports")
    seeds = int(cells["runs"].min()) if len(cells) else 0
    lines += [
        f"Baseline: `{label}`; each other cell is compared with it on the quality median, the divergence "
        f"rate and the collapse rate, each with its 95 % interval (at least {seeds} seed runs per cell). "
        f"Expected: the other cells {expect} than the baseline.",
        "",
        "| cell | quality median [95 %] | divergence rate [95 %] | collapse rate [95 %] | vs baseline "
        "| verdict |",
        "|---|---|---|---|---|---|",
    ]
    for _, cell in pd.concat([base_rows, cells[cells["setting"] != label]]).iterrows():
        row = table[table["cell"] == cell["setting"]]
        versus = (
            ", ".join(f"{name} {row.iloc[0][name]}" for name, *_ in FIGURES) if len(row) else "(baseline)"
        )
        median = f"{cell['median']:.4g} {interval_text(cell['median_ci_low'], cell['median_ci_high'])}"
        rate = f"{cell['diverged']}/{cell['runs']} {pct_interval(cell['rate_ci_low'], cell['rate_ci_high'])}"
        verdict_text = row.iloc[0]["verdict"] if len(row) else "-"
        lines.append(
            f"| {cell['setting']} | {median} | {rate} | {_collapse_text(cell)} | {versus} | {verdict_text} |"
        )
    lines += [
        "",
        f"**Verdict: {verdict}.** {supporting} of {len(verdicts)} cells are distinguishably {expect} than "
        f"the baseline on at least one figure and worse on none; {verdicts.count('contradicts')} "
        "contradict it; "
        f"{verdicts.count('undecided')} cannot be told apart from it with these seeds.",
    ]
    if verdict == "undecided":
        lines.append(
            "More seeds narrow the intervals (a Wilson interval's half-width shrinks as 1/sqrt(n)); the "
            "study file's header gives the overrides for a GPU-sized run that can decide."
        )
    metrics = {
        "finding/reproduced": {"reproduced": 1.0, "not reproduced": 0.0}.get(verdict, np.nan),
        "finding/cells_supporting": float(supporting),
        "finding/cells_contradicting": float(verdicts.count("contradicts")),
        "finding/cells_undecided": float(verdicts.count("undecided")),
    }
    return lines, metrics, table


def _collapse_text(cell: pd.Series) -> str:
    if not cell.get("collapse_runs"):
        return "n/a"
    collapsed = round(cell["collapse_rate"] * cell["collapse_runs"])
    interval = pct_interval(cell["collapse_ci_low"], cell["collapse_ci_high"])
    return f"{collapsed}/{cell['collapse_runs']} {interval}"
