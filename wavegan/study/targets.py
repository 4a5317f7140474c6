"""Optuna samplers and pruners from a study file, and the allow-list that keeps a study file data.

    sampler: tpe                                           # a short name
    sampler: {name: tpe, seed: 0, n_startup_trials: 8}     # a short name and the class's keywords
    sampler: {_target_: optuna.samplers.TPESampler, seed: 0, n_startup_trials: 8}

`_target_` is instantiated by `hydra.utils.instantiate`, but only for classes in `optuna.samplers` (under
`sampler`) and `optuna.pruners` (under `pruner`): any other `_target_` anywhere in a study (os.system,
subprocess.Popen, builtins.eval, a module of the user's) is rejected by `check_targets` before anything
is imported or instantiated. A study file is data, not code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from wavegan.errors import ConfigError

TARGET = "_target_"
MODULES = {"sampler": "optuna.samplers", "pruner": "optuna.pruners"}  # the allow-list, per study key
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
SHORT_NAMES = {"sampler": SAMPLERS, "pruner": PRUNERS}
DEFAULTS = {"sampler": {"name": "tpe", "seed": 0}, "pruner": {"name": "median"}}  # for `null`
NOT_ARGUMENTS = {"sampler": {"name"}, "pruner": {"name", "metric"}}  # keys that are not constructor args
_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")


def _targets(tree: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == TARGET:
                yield path, value
            else:
                yield from _targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _targets(value, f"{path}[{i}]")


def allowed(target: Any, kind: str | None) -> bool:
    """Whether `_target_: target` under study key `kind` names a class of the allowed Optuna module."""
    if kind not in MODULES or not isinstance(target, str):
        return False
    module, _, name = target.rpartition(".")
    return module == MODULES[kind] and bool(_CLASS_NAME.fullmatch(name))


def check_targets(study: Any, where: str = "sweep.") -> None:
    """Reject any `_target_` outside the allow-list, anywhere in a study (a plain dict), importing nothing;
    the message names the key after `where` (`sweep.` or a file's path)."""
    for path, target in _targets(study, ""):
        kind = path.split(".", 1)[0].split("[", 1)[0]
        if not allowed(target, kind):
            places = " or ".join(f"{m}.<Class> under {k}" for k, m in MODULES.items())
            raise ConfigError(
                f"{where}{path}._target_={target!r} is not allowed: a study file may only name {places}. "
                "Fix: use a sampler or pruner name (tpe, random, grid, median, none, ...) or an Optuna class."
            )


def normalize(kind: str, value: Any) -> dict[str, Any]:
    """`sweep.sampler` / `sweep.pruner` as a mapping with `_target_` (a plain dict from the study)."""
    entry = DEFAULTS[kind] if value is None else {"name": value} if isinstance(value, str) else value
    if not isinstance(entry, dict):
        raise ConfigError(f"sweep.{kind}={value!r}: a name or a mapping (name: or _target_:, and keywords).")
    entry = dict(entry)
    if TARGET in entry:
        if "name" in entry:
            raise ConfigError(f"sweep.{kind}: give `name` or `{TARGET}`, not both.")
    else:
        name = str(entry.get("name", "tpe" if kind == "sampler" else "none"))
        if name not in SHORT_NAMES[kind]:
            raise ConfigError(
                f"sweep.{kind}.name={name!r}: one of {', '.join(SHORT_NAMES[kind])}, or "
                f"{TARGET}: {MODULES[kind]}.<Class>."
            )
        entry = {"name": name, TARGET: f"{MODULES[kind]}.{SHORT_NAMES[kind][name]}"} | entry
    check_targets({kind: entry})
    return entry


def display_name(entry: dict[str, Any]) -> str:
    """The short name (`tpe`, `none`) or the class name of a normalized sampler or pruner."""
    return str(entry.get("name") or entry[TARGET].rpartition(".")[2])


def instantiate(kind: str, entry: dict[str, Any], **extra: Any) -> Any:
    """The Optuna object a normalized entry describes (`extra` keywords override the entry's)."""
    import hydra.utils
    import optuna

    check_targets({kind: entry})  # again: nothing outside the allow-list is ever instantiated
    config = {k: v for k, v in entry.items() if k not in NOT_ARGUMENTS[kind]} | extra
    base = optuna.samplers.BaseSampler if kind == "sampler" else optuna.pruners.BasePruner
    try:
        made = hydra.utils.instantiate(config, _convert_="all")
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(f"sweep.{kind}={entry}: {cause.__class__.__name__}: {cause}") from None
    if not isinstance(made, base):
        raise ConfigError(f"sweep.{kind}={entry}: {entry[TARGET]} is not an Optuna {kind}.")
    return made
