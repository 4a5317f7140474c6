"""A study checked against the training config before any trial: the trials' composed configs, the
searched config groups, the sampler and pruner (`Plan`, `plan_study`), and composing one trial's config."""

from __future__ import annotations

import difflib
import logging
import math
from dataclasses import dataclass, field

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import CategoricalDistribution

from wavegan import tracking
from wavegan.cli.app import CONF_DIR
from wavegan.errors import ConfigError, WaveganError, error_detail
from wavegan.study.search_space import describe, grid, override
from wavegan.study.spec import NO_PRUNER, SweepSpec
from wavegan.study.targets import TARGET, instantiate

log = logging.getLogger(__name__)

GRID_SAMPLER = "optuna.samplers.GridSampler"
# Applied before the study's own overrides (which may change them): a sweep's runs print no progress bars.
DRIVER_DEFAULTS = ["trainer.progress=false"]


@dataclass
class Plan:
    """A checked study: what every trial composes from, and how many trials the study holds."""

    spec: SweepSpec
    base_overrides: list[str]
    groups: list[str]  # searched keys that are config groups (loss, model, ...)
    experiment: str
    n_trials: int
    grid: dict[str, list] | None = None
    variants: list[DictConfig] = field(default_factory=list, repr=False)


def config_groups() -> list[str]:
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())


def compose_config(overrides: list[str]) -> DictConfig:
    """The training config as `python -m wavegan.train <overrides>` composes it; errors are ConfigErrors."""
    from wavegan.cli.app import compose

    try:
        return compose(overrides)
    except WaveganError:
        raise
    except Exception as exc:  # Hydra's messages name the offending override
        raise ConfigError(
            f"cannot compose the training config with {overrides}: {error_detail(exc, None)}"
        ) from None


def _override_keys(overrides: list[str]) -> dict[str, str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise ConfigError(f"bad training override in {overrides}: {str(exc).splitlines()[0]}") from None
    return {o.key_or_group: o.input_line or o.key_or_group for o in parsed}


def _flat_keys(cfg: DictConfig) -> list[str]:
    return list(tracking.flatten(cfg)) + list(tracking.NOT_PARAMS)


def plan_study(spec: SweepSpec, training_overrides: list[str] | None = None) -> Plan:
    """Check the study before any trial: unknown keys, conflicts, bad groups, sampler/pruner settings."""
    from wavegan.config.checks import validate_training_config
    from wavegan.representations import build_representation

    space = spec.space
    fixed = [*DRIVER_DEFAULTS, *spec.overrides, *(training_overrides or [])]
    fixed += [override(k, v) for k, v in space.fixed.items()]
    fixed_keys = _override_keys(fixed)
    if "seed" in space.params or "seed" in space.fixed:
        raise ConfigError(
            "search space: `seed` cannot be searched; seeds are per trial (sweep.seeds=[0, 1, 2])."
        )
    clash = sorted(set(space.params) & set(fixed_keys))
    if clash:
        key = clash[0]
        raise ConfigError(
            f"{', '.join(clash)} is both searched and fixed by an override ({fixed_keys[key]}). Fix: drop "
            f"one; to fix a searched key for this run pass sweep.search_space.{key}=<value> instead."
        )
    base = compose_config(fixed)
    groups = config_groups()
    searched_groups = [k for k in space.params if k in groups]
    variants = [base]
    for group in searched_groups:
        dist = space.params[group]
        if not isinstance(dist, CategoricalDistribution):
            raise ConfigError(
                f"search space: {group} is a config group; search it with choice(...), not {describe(dist)}."
            )
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        missing = [c for c in dist.choices if str(c) not in options]
        if missing:
            raise ConfigError(
                f"search space: {group}: no option(s) {', '.join(map(str, missing))} in conf/{group}/. "
                f"Options: {', '.join(options)}."
            )
        variants += [compose_config([*fixed, f"{group}={c}"]) for c in dist.choices]
    unknown = []
    for key in space.params:
        if key in searched_groups:
            continue
        absent = [v for v in variants if OmegaConf.select(v, key, default=_ABSENT) is _ABSENT]
        if absent:
            unknown.append(key)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, _flat_keys(base) + groups, n=1, cutoff=0.75)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        raise ConfigError(
            f"search space: unknown config key(s) {', '.join(hints)}: not in the composed training config"
            f"{' (for every searched ' + '/'.join(searched_groups) + ')' if searched_groups else ''}. "
            "Fix: use keys as `python -m wavegan.train --cfg job` prints them (e.g. optimizer.lr)."
        )
    check_bounds(space.params, searched_groups)
    for variant in variants:
        validate_training_config(variant)
        # The representation checks its own keys (cheap; the models are built by each trial).
        build_representation(
            variant.preprocessing, int(variant.data.slice_len), int(variant.data.sample_rate)
        )
    n_trials, grid_values = spec.n_trials, None
    if spec.sampler[TARGET] == GRID_SAMPLER:
        grid_values = grid(space)
        size = math.prod(len(v) for v in grid_values.values())
        if n_trials > size:
            log.info("the grid has %d points; running %d trials, not sweep.n_trials=%d", size, size, n_trials)
            n_trials = size
    plan = Plan(spec, fixed, searched_groups, str(base.tracking.experiment), n_trials, grid_values, variants)
    make_sampler(plan)  # a bad sampler/pruner keyword fails here, not in a worker
    make_pruner(spec)
    if spec.pruner[TARGET] != NO_PRUNER and spec.prune_metric is None:
        log.warning(
            "pruner %s is off: Optuna prunes single-objective studies only, on a logged metric (set "
            "sweep.pruner.metric when the objective is divergence_rate)",
            spec.pruner_name,
        )
    return plan


_ABSENT = object()


def check_bounds(params: dict, searched_groups: list[str]) -> None:
    """Both ends of a searched interval are inside the key's range (wavegan/config/checks.py): an interval
    up to trainer.batch_size=10^9 would fail most of its trials, so the study is refused before any.
    (A choice with one bad value fails only the trials that draw it, as a sampled config error does.)"""
    from wavegan.config.checks import check_value

    for key, dist in params.items():
        if key in searched_groups or not hasattr(dist, "low"):
            continue
        for value in (dist.low, dist.high):
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    check_value(key, value)
                except ConfigError as exc:
                    raise ConfigError(f"search space: {key}: {exc}") from None


def make_sampler(plan: Plan, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    extra = {}
    if plan.spec.sampler.get("seed") is not None:
        # Workers (and a resumed run) must not replay the same random stream: offset the seed.
        extra["seed"] = int(plan.spec.sampler["seed"]) + seed_offset
    if plan.grid is not None:
        extra["search_space"] = plan.grid
    return instantiate("sampler", plan.spec.sampler, **extra)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    return instantiate("pruner", spec.pruner)
