"""A study as the runner uses it (`SweepSpec`), built from a composed, schema-checked `sweep` node.

The study file's keys, types and defaults are wavegan/study/schema.py (format: sweeps/README.md); how a
study file is found and composed is wavegan/study/compose.py. Here: the checks that involve several keys
(grace_period > heartbeat_interval, unique seeds and objectives), ranges, the storage URL, and the
objectives' arithmetic.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from wavegan.caching import text_digest
from wavegan.cli.app import omegaconf_error_text
from wavegan.errors import ConfigError
from wavegan.secret_masking import mask_override, mask_text, mask_url
from wavegan.study.schema import ObjectiveSchema, check_study, checked
from wavegan.study.search_space import SearchSpace, parse_space
from wavegan.study.targets import TARGET, check_targets, display_name, normalize

RESULTS_ROOT = Path("sweeps") / "results"
STORAGE_ENV = "WAVEGAN_SWEEP_STORAGE"
DIVERGENCE_RATE = "divergence_rate"  # an objective the sweep computes itself: diverged seeds / seeds run
NO_PRUNER = "optuna.pruners.NopPruner"

AGGREGATES = {  # the names of schema.Aggregate
    "median": np.median,
    "mean": np.mean,
    "min": np.min,
    "max": np.max,
    "std": np.std,
    "iqr": lambda x: float(np.percentile(x, 75) - np.percentile(x, 25)),
}


@dataclass(frozen=True)
class Objective:
    """One objective: `reduce` a run's logged `metric` history to one number per seed, then `aggregate`
    the seeds. `metric: divergence_rate` is the fraction of a trial's seeds that diverged."""

    metric: str
    direction: str = "minimize"
    aggregate: str = "median"
    reduce: str = "last"

    @property
    def name(self) -> str:
        if self.metric == DIVERGENCE_RATE:
            return DIVERGENCE_RATE
        inner = self.metric if self.reduce == "last" else f"{self.reduce} {self.metric}"
        return f"{self.aggregate} of {inner}"

    @property
    def worst(self) -> float:
        return float("inf") if self.direction == "minimize" else float("-inf")

    def run_value(
        self, metrics: dict[str, float], history: dict[str, list[tuple[int, float]]]
    ) -> float | None:
        """This objective's number for one finished run (None when the run never logged the metric)."""
        if self.reduce == "last":
            return metrics.get(self.metric)
        values = [v for _, v in history.get(self.metric, [])]
        if not values:
            return None
        return float({"mean": np.mean, "min": np.min, "max": np.max, "std": np.std}[self.reduce](values))

    def combine(self, seed_values: list[float | None], n_diverged: int, policy: str) -> float:
        """Aggregate per-seed values (None = a diverged seed): worst-valued or left out, per `policy`."""
        n_runs = len(seed_values)
        if self.metric == DIVERGENCE_RATE:
            return n_diverged / max(n_runs, 1)
        if policy == "worst":
            xs = [self.worst if v is None else v for v in seed_values]
        else:
            xs = [v for v in seed_values if v is not None]
        if not xs:
            return float("nan")
        with np.errstate(invalid="ignore"):
            return float(AGGREGATES[self.aggregate](np.asarray(xs, dtype=float)))


@dataclass
class SweepSpec:
    name: str
    source: str
    study_name: str
    description: str
    overrides: list[str]
    space: SearchSpace
    seeds: list[int]
    objectives: list[Objective]
    divergence: dict[str, Any]
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    n_trials: int
    n_jobs: int
    storage: str
    results_dir: Path
    heartbeat_interval: int
    grace_period: int
    max_retry: int | None
    finding: dict[str, Any] | None = None

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def pruner_name(self) -> str:
        return display_name(self.pruner)

    @property
    def prune_metric(self) -> str | None:
        """The logged metric the pruner sees (None: no pruning)."""
        if self.pruner[TARGET] == NO_PRUNER or len(self.objectives) > 1:
            return None
        metric = self.pruner.get("metric") or self.objectives[0].metric
        return None if metric == DIVERGENCE_RATE else metric

    def summary(self) -> dict[str, Any]:
        """The study as plain data with every secret masked (the storage URL's password, secret keys in
        overrides, secret environment values pasted anywhere): for MLflow, the report and study attrs."""
        return {
            "name": self.name,
            "study_name": self.study_name,
            "description": mask_text(self.description),
            "overrides": [mask_override(o) for o in self.overrides],
            "search_space": self.space.describe(),
            "fixed": {k: v for k, v in self.space.fixed.items()},
            "seeds": list(self.seeds),
            "objectives": [o.__dict__ | {"name": o.name} for o in self.objectives],
            "divergence": dict(self.divergence),
            "sampler": dict(self.sampler),
            "pruner": dict(self.pruner),
            "n_trials": self.n_trials,
            "n_jobs": self.n_jobs,
            "storage": mask_url(self.storage),
            "results_dir": str(self.results_dir),
            "finding": self.finding,
        }


def fingerprint(text: str) -> str:
    return text_digest(text, 16)


# --- building -------------------------------------------------------------------------------------


def _at_least(raw: dict, key: str, minimum: int) -> int | None:
    value = raw[key]
    if value is not None and value < minimum:
        raise ConfigError(f"sweep.{key}={value!r} must be an integer >= {minimum}.")
    return value


def _flat(space: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{optimizer: {lr: ...}}` (how `sweep.search_space.optimizer.lr=...` on the command line arrives)
    as `{optimizer.lr: ...}`; a later entry for the same key wins."""
    flat: dict[str, Any] = {}
    for key, value in space.items():
        key = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flat(value, key))
        else:
            flat[key] = value
    return flat


def _seeds(raw: Any) -> list[int]:
    seeds = list(range(raw)) if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1 else raw
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise ConfigError(f"sweep.seeds={raw!r}: a count K >= 1 (seeds 0..K-1) or a list of integers.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"sweep.seeds={seeds}: a seed is listed twice.")
    return seeds


def _objectives(raw: Any) -> list[Objective]:
    objectives = []
    for entry in raw if isinstance(raw, list) else [raw]:
        entry = {"metric": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "metric" not in entry:
            raise ConfigError(
                f"sweep.objective: {entry!r} needs at least `metric:` (e.g. train/wasserstein)."
            )
        fields = OmegaConf.to_container(checked(ObjectiveSchema, entry, "sweep.objective."), enum_to_str=True)
        objectives.append(Objective(**fields))
    if len({o.name for o in objectives}) != len(objectives):
        raise ConfigError("sweep.objective: the same objective is listed twice.")
    return objectives


def _storage(raw: Any, results_dir: Path) -> str:
    storage = str(raw or os.environ.get(STORAGE_ENV) or f"sqlite:///{results_dir / 'optuna.db'}")
    if storage.startswith("sqlite:///") and storage != "sqlite:///:memory:":
        # An absolute path: the lock file and MLflow's study fingerprint must not depend on the cwd.
        db = Path(storage[len("sqlite:///") :]).expanduser()
        storage = f"sqlite:///{db.resolve()}"
    elif "://" not in storage:
        raise ConfigError(
            f"sweep.storage={mask_url(storage)!r} is not a database URL. Fix: sqlite:///path/to/study.db "
            "(one machine) or postgresql://user:password@host/db (several machines)."
        )
    return storage


def build_spec(name: str, source: str, node: DictConfig | dict) -> SweepSpec:
    """The study `name` (its file: `source`) from its composed `sweep` node, checked."""
    try:
        raw = OmegaConf.to_container(check_study(node), resolve=True, enum_to_str=True)
    except OmegaConfBaseException as exc:  # an interpolation that does not resolve
        raise ConfigError(f"{omegaconf_error_text(exc, prefix='sweep')}.") from None
    check_targets(raw)
    study_name = str(raw["study_name"] or name)
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", study_name):
        raise ConfigError(f"sweep.study_name={study_name!r}: use letters, digits, '_', '-', '.'.")
    space = parse_space(_flat(raw["search_space"]))
    if not space.params:
        raise ConfigError(f"{source}: search_space is empty; a study needs at least one searched key.")
    results_dir = Path(str(raw["results_dir"] or RESULTS_ROOT / study_name)).expanduser()
    heartbeat = _at_least(raw, "heartbeat_interval", 1)
    grace = _at_least(raw, "grace_period", 1)
    if grace <= heartbeat:
        raise ConfigError(
            f"sweep.grace_period={grace} must exceed sweep.heartbeat_interval={heartbeat} (else live trials "
            "look dead)."
        )
    return SweepSpec(
        name=name,
        source=source,
        study_name=study_name,
        description=str(raw["description"] or "").strip(),
        overrides=list(raw["overrides"]),
        space=space,
        seeds=_seeds(raw["seeds"]),
        objectives=_objectives(raw["objective"]),
        divergence=dict(raw["divergence"]),
        sampler=normalize("sampler", raw["sampler"]),
        pruner=normalize("pruner", raw["pruner"]),
        n_trials=_at_least(raw, "n_trials", 1),
        n_jobs=_at_least(raw, "n_jobs", 1),
        storage=_storage(raw["storage"], results_dir),
        results_dir=results_dir,
        heartbeat_interval=heartbeat,
        grace_period=grace,
        max_retry=_at_least(raw, "max_retry", 0),
        finding=_finding(raw["finding"], space),
    )


def _finding(raw: dict[str, Any] | None, space: SearchSpace) -> dict[str, Any] | None:
    """The finding the report checks; its baseline must name searched keys."""
    if raw is None:
        return None
    raw = {**raw, "baseline": _flat(raw["baseline"])}
    unknown = sorted(set(raw["baseline"]) - set(space.params))
    if not raw["baseline"] or unknown:
        raise ConfigError(
            f"sweep.finding.baseline must give a value for searched keys only (not {unknown or 'nothing'}). "
            f"Fix: e.g. baseline: {{{next(iter(space.params))}: <one of its choices>}}."
        )
    return raw
