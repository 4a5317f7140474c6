"""Hydra callbacks. `SeedSummary` turns a multirun over seeds into the across-seed stability figures
of each configuration (divergence rate, median and spread of the final quality), logged as one MLflow
run per configuration and printed when the multirun ends: per setting the number of seeds, the divergence
rate with its Wilson 95 % interval, the quality median with its bootstrap 95 % interval and the real-data
reference (wavegan/metrics/seeds.py)."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from wavegan.caching import text_digest

log = logging.getLogger(__name__)


def sweep_id_for(sweep_dir: str) -> str:
    """The id the training jobs of one multirun tag their runs with (see wavegan.training.run.sweep_tags)."""
    return text_digest(str(Path(sweep_dir).resolve()), 12)


def group_by_setting(runs: list) -> dict[tuple, list]:
    """Runs that differ only in their seed form one setting."""
    groups: dict[tuple, list] = defaultdict(list)
    for run in runs:
        key = tuple(sorted((k, v) for k, v in run.data.params.items() if k != "seed"))
        groups[key].append(run)
    return groups


def log_seed_summaries(sweep_id: str, experiment: str, quality_key: str) -> list[dict[str, Any]]:
    """One summary run per setting with two or more seeds; returns the rows it logged."""
    import mlflow

    from wavegan import tracking
    from wavegan.metrics.seeds import summarize_seeds

    tracking.configure()
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = mlflow.search_runs(
        [exp.experiment_id], filter_string=f"tags.sweep_id = '{sweep_id}'", output_format="list"
    )
    runs = [r for r in runs if r.data.tags.get("kind") != "seed_summary"]
    rows = []
    for params, members in group_by_setting(runs).items():
        if len(members) < 2:
            continue
        per_seed = [{"outcome": r.data.tags.get("outcome", "failed"), **r.data.metrics} for r in members]
        summary = summarize_seeds(per_seed, quality_key=quality_key)
        setting = {k: v for k, v in params}
        name = f"seeds-{setting.get('model.name', '?')}-{setting.get('loss.name', '?')}"
        with mlflow.start_run(experiment_id=exp.experiment_id, run_name=name):
            mlflow.log_params({k: v for k, v in params})
            mlflow.set_tags(
                {
                    "kind": "seed_summary",
                    "sweep_id": sweep_id,
                    "seeds": ",".join(sorted(r.data.tags.get("seed", "?") for r in members)),
                    "member_runs": ",".join(r.info.run_id for r in members),
                }
            )
            mlflow.log_metrics({k: v for k, v in summary.items() if v is not None and math.isfinite(v)})
        rows.append({"setting": name, **summary})
    return rows


class SeedSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        quality_key = config.get("eval", {}).get("quality_key", "eval/frechet_distance")
        try:
            rows = log_seed_summaries(
                sweep_id_for(config.hydra.sweep.dir), config.tracking.experiment, quality_key
            )
        except Exception as exc:  # a summary must never turn a finished multirun into a failure
            log.warning("could not summarise seeds: %s", exc)
            return
        for line in summary_lines(rows, quality_key):
            print(line)


def summary_lines(rows: list[dict[str, Any]], quality_key: str) -> list[str]:
    """The printed table: one line per setting (N, divergence rate and quality median with their 95 %
    intervals, the reference), then which settings' intervals overlap."""
    from wavegan.metrics.intervals import distinguishable
    from wavegan.metrics.seeds import format_summary

    lines = [f"{row['setting']}: {format_summary(row, quality_key)}" for row in rows]
    name = quality_key.split("/")[-1]
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            parts = []
            for label, key in (("divergence rate", "divergence_rate"), (name + " median", "quality_median")):
                ia = (a[f"seeds/{key}_ci_low"], a[f"seeds/{key}_ci_high"])
                ib = (b[f"seeds/{key}_ci_low"], b[f"seeds/{key}_ci_high"])
                n = "quality_count" if key == "quality_median" else "count"
                verdict = (
                    "distinguishable"
                    if distinguishable(ia, ib)
                    else f"not distinguishable with {int(a['seeds/' + n])} and {int(b['seeds/' + n])} seeds"
                )
                parts.append(f"{label} {verdict}")
            lines.append(f"{a['setting']} vs {b['setting']}: {'; '.join(parts)}")
    return lines
