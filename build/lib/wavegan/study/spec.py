"""What a study file `sweeps/<name>.yaml` says, checked, with the command line's `sweep.*` overrides.

Format (every key but `search_space` optional; see sweeps/README.md):

    description: one line shown in logs and in the report
    study_name: optimizer_stability     # default: the file's name
    overrides: [model=wavegan, loss=wgan_gp, trainer.max_steps=100]   # fixed training overrides
    search_space: {optimizer.lr: "tag(log, interval(1e-5, 1e-2))", loss: "choice(bce, wgan_gp)"}
    seeds: 2                            # K -> seeds 0..K-1, or a list [0, 1, 7]
    objective: {metric: train/wasserstein, direction: minimize, aggregate: median, reduce: last}
                                        # or a list of such mappings (multi-objective)
    divergence: {seed_value: worst, stop_trial: true}
    sampler: {name: tpe, seed: 0, ...}  # any keyword of the Optuna sampler class
    pruner: {name: median, metric: null, ...}   # metric: the intermediate value (default: the objective's)
    n_trials: 16                        # the study's total; a resumed run only runs what is missing
    n_jobs: 1                           # worker processes on this machine
    storage: null                       # default sqlite:///<results_dir>/optuna.db; or $WAVEGAN_SWEEP_STORAGE
    results_dir: null                   # default sweeps/results/<study_name>
    heartbeat_interval: 10              # seconds; a trial silent for grace_period is retried
    grace_period: 30
    max_retry: 3                        # retries of a trial whose process died
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from wavegan.caching import text_digest
from wavegan.cli.app import CONF_DIR
from wavegan.errors import ConfigError
from wavegan.secret_masking import mask_url
from wavegan.study.search_space import SearchSpace, describe, parse_space

SWEEPS_DIR = CONF_DIR.parent / "sweeps"
RESULTS_ROOT = Path("sweeps") / "results"
STORAGE_ENV = "WAVEGAN_SWEEP_STORAGE"
DIVERGENCE_RATE = "divergence_rate"  # an objective the sweep computes itself: diverged seeds / seeds run

AGGREGATES = {
    "median": np.median,
    "mean": np.mean,
    "min": np.min,
    "max": np.max,
    "std": np.std,
    "iqr": lambda x: float(np.percentile(x, 75) - np.percentile(x, 25)),
}
REDUCES = ("last", "mean", "min", "max", "std")
SAMPLERS = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "grid": "GridSampler",
    "cmaes": "CmaEsSampler",
    "nsga2": "NSGAIISampler",
    "qmc": "QMCSampler",
    "gp": "GPSampler",
    "bruteforce": "BruteForceSampler",
}
PRUNERS = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
    "threshold": "ThresholdPruner",
    "wilcoxon": "WilcoxonPruner",
}
DEFAULTS: dict[str, Any] = {
    "description": "",
    "study_name": None,
    "overrides": [],
    "search_space": {},
    "seeds": 1,
    "objective": {"metric": "train/wasserstein", "direction": "minimize"},
    "divergence": {"seed_value": "worst", "stop_trial": True},
    "sampler": {"name": "tpe", "seed": 0},
    "pruner": {"name": "median"},
    "n_trials": 10,
    "n_jobs": 1,
    "storage": None,
    "results_dir": None,
    "heartbeat_interval": 10,
    "grace_period": 30,
    "max_retry": 3,
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
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def prune_metric(self) -> str | None:
        """The logged metric the pruner sees (None: no pruning)."""
        if self.pruner["name"] == "none" or len(self.objectives) > 1:
            return None
        metric = self.pruner.get("metric") or self.objectives[0].metric
        return None if metric == DIVERGENCE_RATE else metric

    def summary(self) -> dict[str, Any]:
        """The study as plain data with the storage URL masked: for MLflow, the report and study attrs."""
        return {
            "name": self.name,
            "study_name": self.study_name,
            "description": self.description,
            "overrides": list(self.overrides),
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
        }


def fingerprint(text: str) -> str:
    return text_digest(text, 16)


# --- loading --------------------------------------------------------------------------------------


def find_sweep_file(name: str) -> Path:
    """`sweep=<name>`: sweeps/<name>.yaml (working directory first, then the project's), or a path."""
    candidates = [Path(name)] if name.endswith((".yaml", ".yml")) or os.sep in name else []
    candidates += [Path("sweeps") / f"{name}.yaml", SWEEPS_DIR / f"{name}.yaml"]
    for path in candidates:
        if path.is_file():
            return path
    known = sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))
    raise ConfigError(
        f"sweep={name}: no study file {candidates[-1]}. Fix: pass one of {', '.join(known) or '(none yet)'}, "
        "or a path to a YAML file (sweep=path/to/study.yaml)."
    )


def _set(tree: dict, path: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts; under search_space the rest of the path is one (dotted) key."""
    head, _, rest = path.partition(".")
    if head not in DEFAULTS:
        raise ConfigError(f"sweep.{path}: unknown sweep key {head!r}. Known: {', '.join(DEFAULTS)}.")
    if not rest:
        tree[head] = value
        return
    if head == "search_space":
        tree.setdefault(head, {})[rest] = value
        return
    node = tree.get(head)
    if not isinstance(node, dict):
        raise ConfigError(
            f"sweep.{path}: sweep.{head} is not a mapping here; set sweep.{head}=... as a whole."
        )
    parts = rest.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def parse_value(text: str) -> Any:
    """A command-line value as YAML (numbers, booleans, null, lists, mappings); a sweep expression or
    any other text stays a string."""
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def load_spec(name: str, sweep_overrides: dict[str, str] | None = None) -> SweepSpec:
    """Read sweeps/<name>.yaml, apply `sweep.*` overrides, check everything that needs no training config."""
    path = find_sweep_file(name)
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a study file is a mapping of keys (search_space:, overrides:, ...).")
    unknown = sorted(set(loaded) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}. Known: {', '.join(DEFAULTS)}.")
    raw = copy.deepcopy(DEFAULTS) | copy.deepcopy(loaded)
    for key, value in (sweep_overrides or {}).items():
        _set(raw, key, parse_value(value) if key.partition(".")[0] != "search_space" else value)
    return build_spec(path.stem, str(path), raw)


def _int(raw: dict, key: str, minimum: int, allow_none: bool = False) -> int | None:
    value = raw[key]
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"sweep.{key}={value!r} must be an integer >= {minimum}.")
    return value


def _objectives(raw: Any) -> list[Objective]:
    entries = raw if isinstance(raw, list) else [raw]
    objectives = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"metric": entry}
        if not isinstance(entry, dict) or "metric" not in entry:
            raise ConfigError(
                f"sweep.objective: {entry!r} needs at least `metric:` (e.g. train/wasserstein)."
            )
        extra = set(entry) - {"metric", "direction", "aggregate", "reduce"}
        if extra:
            raise ConfigError(
                f"sweep.objective: unknown key(s) {sorted(extra)} (metric, direction, aggregate, reduce)."
            )
        objective = Objective(**{k: str(v) for k, v in entry.items()})
        if objective.direction not in ("minimize", "maximize"):
            raise ConfigError(f"sweep.objective.direction={objective.direction!r}: minimize or maximize.")
        if objective.aggregate not in AGGREGATES:
            raise ConfigError(
                f"sweep.objective.aggregate={objective.aggregate!r}: one of {', '.join(AGGREGATES)}."
            )
        if objective.reduce not in REDUCES:
            raise ConfigError(f"sweep.objective.reduce={objective.reduce!r}: one of {', '.join(REDUCES)}.")
        objectives.append(objective)
    if len({o.name for o in objectives}) != len(objectives):
        raise ConfigError("sweep.objective: the same objective is listed twice.")
    return objectives


def _named(raw: Any, key: str, table: dict[str, str]) -> dict[str, Any]:
    entry = {"name": raw} if isinstance(raw, str) else dict(raw or {})
    name = str(entry.get("name", "none" if key == "pruner" else "tpe"))
    if name not in table:
        raise ConfigError(f"sweep.{key}.name={name!r}: one of {', '.join(table)}.")
    entry["name"] = name
    return entry


def _storage(raw: Any, results_dir: Path) -> str:
    storage = raw or os.environ.get(STORAGE_ENV) or f"sqlite:///{results_dir / 'optuna.db'}"
    storage = str(storage)
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


def build_spec(name: str, source: str, raw: dict[str, Any]) -> SweepSpec:
    study_name = str(raw["study_name"] or name)
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", study_name):
        raise ConfigError(f"sweep.study_name={study_name!r}: use letters, digits, '_', '-', '.'.")
    overrides = raw["overrides"] or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(
            "sweep.overrides must be a list of Hydra overrides, e.g. [model=wavegan, trainer.max_steps=100]."
        )
    if not isinstance(raw["search_space"], dict):
        raise ConfigError("sweep.search_space must be a mapping of config keys to expressions.")
    space = parse_space(raw["search_space"])
    seeds = raw["seeds"]
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(
            f"sweep.seeds={raw['seeds']!r}: a count K >= 1 (seeds 0..K-1) or a list of integers."
        )
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"sweep.seeds={seeds}: a seed is listed twice.")
    divergence = {"seed_value": "worst", "stop_trial": True} | dict(raw["divergence"] or {})
    if divergence["seed_value"] not in ("worst", "ignore") or set(divergence) != {"seed_value", "stop_trial"}:
        raise ConfigError(
            f"sweep.divergence={raw['divergence']!r}: keys seed_value (worst | ignore) and stop_trial "
            "(true | false)."
        )
    results_dir = Path(str(raw["results_dir"] or RESULTS_ROOT / study_name)).expanduser()
    heartbeat = _int(raw, "heartbeat_interval", 1)
    grace = _int(raw, "grace_period", 1)
    if grace <= heartbeat:
        raise ConfigError(
            f"sweep.grace_period={grace} must exceed sweep.heartbeat_interval={heartbeat} (else live trials "
            "look dead)."
        )
    spec = SweepSpec(
        name=name,
        source=source,
        study_name=study_name,
        description=str(raw["description"] or "").strip(),
        overrides=list(overrides),
        space=space,
        seeds=seeds,
        objectives=_objectives(raw["objective"]),
        divergence=divergence,
        sampler=_named(raw["sampler"], "sampler", SAMPLERS),
        pruner=_named(raw["pruner"], "pruner", PRUNERS),
        n_trials=_int(raw, "n_trials", 1),
        n_jobs=_int(raw, "n_jobs", 1),
        storage=_storage(raw["storage"], results_dir),
        results_dir=results_dir,
        heartbeat_interval=heartbeat,
        grace_period=grace,
        max_retry=_int(raw, "max_retry", 0, allow_none=True),
        raw=raw,
    )
    if not space.params:
        raise ConfigError(f"{source}: search_space is empty; a study needs at least one searched key.")
    return spec


def describe_space(spec: SweepSpec) -> str:
    return "\n".join(f"  {k}: {describe(d)}" for k, d in spec.space.params.items())
