"""Hydra callbacks. `SeedSummary` turns a multirun over seeds into the across-seed stability figures
of each configuration (divergence rate, median and spread of the final quality), logged as one MLflow
run per configuration and printed as a table when the multirun ends."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def sweep_id_for(sweep_dir: str) -> str:
    """The id the training jobs of one multirun tag their runs with (see wavegan.train.sweep_tags)."""
    return hashlib.sha256(str(Path(sweep_dir).resolve()).encode()).hexdigest()[:12]


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
            mlflow.log_metrics({k: v for k, v in summary.items() if v is not None})
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
        for row in rows:
            figures = ", ".join(
                f"{k.split('/')[-1]}={v:.4g}"
                for k, v in row.items()
                if k != "setting" and isinstance(v, float)
            )
            print(f"{row['setting']}: {figures}")
