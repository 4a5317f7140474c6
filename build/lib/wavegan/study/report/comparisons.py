"""Which settings can be told apart: every pair's verdict (comparisons.csv), each parameter's gap in
divergence rate, and the statements that name a best setting (or trial) only when its 95 % interval is
apart from every other's. Two intervals that overlap are "not distinguishable" (wavegan.metrics.intervals)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from wavegan.metrics.intervals import bootstrap_interval, distinguishable


def row_interval(row: pd.Series, low: str, high: str) -> tuple[float, float]:
    """A settings-table row's interval from its `low` and `high` columns."""
    return float(row[low]), float(row[high])


def _seeds_phrase(na: int, nb: int) -> str:
    return f"with {na} seeds each" if na == nb else f"with {na} and {nb} seeds"


def _verdict(a, b, low: str, high: str, n: str) -> tuple[bool, str]:
    na, nb = int(a[n]), int(b[n])
    if min(na, nb) < 2 and n == "quality_runs":
        return False, f"not distinguishable: no interval from {min(na, nb)} seed(s)"
    if distinguishable(row_interval(a, low, high), row_interval(b, low, high)):
        return True, "distinguishable"
    return False, f"not distinguishable {_seeds_phrase(na, nb)}"


def comparisons_table(settings: pd.DataFrame, minimize: bool = True) -> pd.DataFrame:
    """Every pair of settings of one parameter (or combination): do their quality-median intervals and
    their divergence-rate intervals overlap, and where they do not, which side is better."""
    rows = []
    if settings.empty:
        return pd.DataFrame(rows)
    for parameter, group in settings.groupby("parameter", sort=False):
        for (_, a), (_, b) in itertools.combinations(group.iterrows(), 2):
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
            row_interval(worst, "rate_ci_low", "rate_ci_high"),
            row_interval(best, "rate_ci_low", "rate_ci_high"),
        )
        spread.append((parameter, gap, str(worst["setting"]), str(best["setting"]), apart))
    return sorted(spread, key=lambda x: -x[1])


def fmt_value(value: Any) -> str:
    """A table cell or a parameter value: floats to 4 significant digits, NaN as "-"."""
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def interval_text(low: float, high: float) -> str:
    """An interval as "[low, high]" (4 significant digits), "-" when either end is missing."""
    return "-" if not (math.isfinite(low) and math.isfinite(high)) else f"[{low:.4g}, {high:.4g}]"


def pct_interval(low: float, high: float) -> str:
    """A rate's interval in percent, "-" when either end is missing."""
    return "-" if not (math.isfinite(low) and math.isfinite(high)) else f"[{low:.0%}, {high:.0%}]"


def seed_counts(ns: list[int]) -> str:
    """ "3 seed run(s)" when every setting has the same count, else the range, "2-5 seed runs"."""
    ns = sorted(set(int(n) for n in ns))
    return f"{ns[0]} seed run(s)" if len(ns) == 1 else f"{ns[0]}-{ns[-1]} seed runs"


def ranking(rows: pd.DataFrame, what: str, value: str, low: str, high: str, n: str, lower: bool) -> str:
    """A statement that names a best setting only when its interval is apart from every other's."""
    rows = rows[rows[value].map(lambda v: isinstance(v, float) and math.isfinite(v))]
    if len(rows) < 2:
        return f"{what}: fewer than two settings have a value; nothing to compare."
    best = rows.loc[rows[value].idxmin() if lower else rows[value].idxmax()]
    others = [r for i, r in rows.iterrows() if i != best.name]
    fmt = (
        (lambda r: f"{r[value]:.0%} {pct_interval(r[low], r[high])}")
        if "rate" in value
        else (lambda r: f"{r[value]:.4g} {interval_text(r[low], r[high])}")
    )

    def apart(r) -> bool:
        if n == "quality_runs" and min(int(r[n]), int(best[n])) < 2:
            return False
        return distinguishable(row_interval(best, low, high), row_interval(r, low, high))

    tied = [r for r in others if not apart(r)]
    counts = seed_counts([int(r[n]) for _, r in rows.iterrows()])
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


def trial_statement(study: optuna.Study, runs: pd.DataFrame, name: str) -> tuple[str, float]:
    """The best trial by the objective, and whether its seeds' interval is apart from other trials'."""
    best = study.best_trial
    params = ", ".join(f"{k}={fmt_value(v)}" for k, v in best.params.items())
    intervals = {}
    if not runs.empty:
        complete = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        for number, group in runs[runs["trial"].isin(complete)].groupby("trial"):
            values = group["value"].dropna().to_numpy()
            intervals[number] = bootstrap_interval(values) if len(values) >= 2 else (np.nan, np.nan)
    own = intervals.get(best.number, (np.nan, np.nan))
    head = f"Trial #{best.number} ({params}) has the best {name}, {fmt_value(float(best.value))}"
    if not math.isfinite(own[0]):
        return (
            head + "; with fewer than two finite seeds it has no interval, so this is not a ranking.",
            np.nan,
        )
    tied = [k for k, iv in intervals.items() if k != best.number and not distinguishable(own, iv)]
    head += f" (its seeds' median {interval_text(*own)})"
    if not tied:
        return head + "; its interval is apart from every other complete trial's.", own[0]
    return (
        head
        + f"; not distinguishable from trial(s) {', '.join(f'#{k}' for k in tied)} (intervals overlap, or no "
        "interval), so it is not ranked above them.",
        own[0],
    )
