"""The study file's schema: what `sweeps/<name>.yaml` may say, its types and defaults, in one place.

Every composed study is merged onto `SweepSchema` (Hydra does it for the `sweep` group of `wavegan sweep`
and `wavegan report`; `check_study` does it for anything else), so an unknown key or a value of the wrong
type is rejected by OmegaConf with the key named. Checks that involve several keys or the training
config stay in code (wavegan/study/spec.py, wavegan/study/plan.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from wavegan.cli.app import omegaconf_error_text
from wavegan.errors import ConfigError

SCHEMA_NAME = "sweep_schema"  # the schema's name in Hydra's ConfigStore, merged at package `sweep`


class Direction(Enum):
    minimize = "minimize"
    maximize = "maximize"


class Aggregate(Enum):
    """How a trial's per-seed values become its objective."""

    median = "median"
    mean = "mean"
    min = "min"
    max = "max"
    std = "std"
    iqr = "iqr"


class Reduce(Enum):
    """How a run's logged history of the metric becomes one number."""

    last = "last"
    mean = "mean"
    min = "min"
    max = "max"
    std = "std"


class SeedValue(Enum):
    """What a diverged seed contributes to its trial's aggregate."""

    worst = "worst"
    ignore = "ignore"


@dataclass
class ObjectiveSchema:
    """One objective; `metric: divergence_rate` is the fraction of a trial's seeds that diverged."""

    metric: str = MISSING  # a logged metric (train/wasserstein, eval/frechet_distance, stability/score)
    direction: Direction = Direction.minimize
    aggregate: Aggregate = Aggregate.median
    reduce: Reduce = Reduce.last


@dataclass
class DivergenceSchema:
    seed_value: SeedValue = SeedValue.worst
    # Stop a trial's seeds once divergences decide its aggregate (faster; its rate is then over fewer seeds).
    stop_trial: bool = True


class Expect(Enum):
    """Which way the finding says the other cells differ from the baseline."""

    better = "better"
    worse = "worse"


@dataclass
class FindingSchema:
    """A published (qualitative) finding the study tests: the report compares every cell of the study's
    categorical grid with the `baseline` cell on quality, divergence rate and collapse rate, and says
    whether the finding was reproduced, not reproduced, or undecided with the seeds run."""

    statement: str = MISSING  # the finding in words
    source: str = ""  # where it was published
    baseline: dict[str, Any] = field(default_factory=dict)  # searched key -> the baseline cell's value
    expect: Expect = Expect.better  # the other cells than the baseline


@dataclass
class SweepSchema:
    """A study. `sampler` and `pruner` are a short name (`tpe`, `median`, ...), a mapping with `name:` and
    the class's keyword arguments, or a mapping with `_target_: optuna.samplers.<Class>` /
    `optuna.pruners.<Class>` (wavegan/study/targets.py); null means TPE with seed 0 / the median pruner."""

    description: str = ""  # one line shown in logs and in the report
    study_name: str | None = None  # default: the study file's name
    overrides: list[str] = field(default_factory=list)  # fixed training overrides of every trial
    search_space: dict[str, Any] = field(default_factory=dict)  # config key or group -> sweep expression
    seeds: Any = 1  # K (seeds 0..K-1) or a list of seeds
    objective: Any = field(default_factory=lambda: {"metric": "train/wasserstein", "direction": "minimize"})
    divergence: DivergenceSchema = field(default_factory=DivergenceSchema)
    sampler: Any = None
    pruner: Any = None
    n_trials: int = 10  # the study's total; a resumed run only runs what is missing
    n_jobs: int = 1  # worker processes on this machine
    storage: str | None = None  # default sqlite:///<results_dir>/optuna.db, or $WAVEGAN_SWEEP_STORAGE
    results_dir: str | None = None  # default sweeps/results/<study_name>
    heartbeat_interval: int = 10  # seconds; a trial silent for grace_period seconds is failed and retried
    grace_period: int = 30
    max_retry: int | None = 3  # retries of a trial whose process died
    finding: FindingSchema | None = None  # a published finding the report checks (see FindingSchema)


@dataclass
class ReportOptions:
    """`wavegan report`'s own keys (`report.<key>=value`); the study comes from `sweep=` or these."""

    storage: str | None = None  # default: the study's sweep.storage
    study: str | None = None  # default: the study's study_name
    out: str | None = None  # default: the study's results_dir (sweeps/results/<study>)
    mlflow: bool = True  # log the report to the study's MLflow parent run


ConfigStore.instance().store(name=SCHEMA_NAME, node=SweepSchema)


def checked(schema: type, node: Any, where: str) -> DictConfig:
    """`node` merged onto `schema`: OmegaConf rejects unknown keys and wrong types, naming the key (after
    `where`: `sweep.` or a file's `path: `)."""
    if OmegaConf.is_config(node):  # as plain data: a typed node may have had keys added with `+`
        node = OmegaConf.to_container(node, resolve=False)
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as exc:
        problem = omegaconf_error_text(exc)
        place = where if exc.full_key else where.rstrip(".: ") + ": "
        raise ConfigError(f"{place}{problem}. Fix: see sweeps/README.md for the study keys.") from None


def check_study(node: Any) -> DictConfig:
    """A whole study (the `sweep` node) checked against `SweepSchema`."""
    return checked(SweepSchema, node, "sweep.")
