"""Search spaces for `sweeps/<name>.yaml`, in Hydra's sweeper syntax, turned into Optuna distributions.

    optimizer.lr:     tag(log, interval(1e-5, 1e-2))    # float, log-uniform
    optimizer.beta1:  interval(0.0, 0.9)                # float, uniform
    trainer.n_critic: int(interval(1, 5))               # int, uniform (both ends included)
    model.dim:        tag(log, int(interval(4, 64)))    # int, log-uniform
    loss:             choice(bce, wgan_gp)              # categorical; a config group or a config key
    trainer.batch_size: 8,16,32                         # same as choice(8, 16, 32)
    seed_offset:      range(0, 3)                       # categorical 0, 1, 2 (end excluded, as Hydra)
    a YAML list [a, b, c] is a choice; a plain value (5, bce) is a fixed override, not searched.

The expressions are parsed by Hydra's own override grammar, so anything that works with Hydra's Optuna
sweeper parses the same way here (and a typo gets Hydra's message). Keys are checked against the
composed training config by `wavegan.study.plan` before any trial runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from wavegan.errors import ConfigError

GRID_LIMIT = 10_000  # points; a bigger grid is a mistake (a float interval with a tiny step, say)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./\-+:]*")


@dataclass(frozen=True)
class SearchSpace:
    """Searched keys -> distributions (in file order), and plain values given in the space (fixed)."""

    params: dict[str, BaseDistribution]
    fixed: dict[str, Any]

    def describe(self) -> dict[str, str]:
        return {key: describe(dist) for key, dist in self.params.items()}


def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def parse_expression(key: str, expression: Any) -> BaseDistribution | Any:
    """One search-space entry: a distribution, or the plain value itself when it is not a sweep."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    if isinstance(expression, list | tuple):
        expression = f"choice({', '.join(format_value(v) for v in expression)})"
    if not isinstance(expression, str):
        return expression  # a number, bool or null from YAML: fixed
    try:
        value = _parser().parse_override(f"{key}={expression}").value()
    except Exception as exc:
        raise ConfigError(
            f"search space: cannot parse {key}: {expression!r} ({str(exc).splitlines()[0]}). Fix: use "
            "interval(a, b), int(interval(a, b)), tag(log, interval(a, b)), choice(a, b, c), range(a, b) "
            "or a,b,c."
        ) from None
    tags = set(getattr(value, "tags", set()) or set())
    unknown_tags = tags - {"log"}
    if unknown_tags:
        raise ConfigError(
            f"search space: {key}: unknown tag(s) {sorted(unknown_tags)} in {expression!r}; the only tag is "
            "`log`. Fix: tag(log, interval(a, b)), or int(interval(a, b)) for integers."
        )
    if isinstance(value, IntervalSweep):
        return _interval(key, expression, value.start, value.end, "log" in tags)
    if "log" in tags:
        raise ConfigError(
            f"search space: {key}: tag(log, ...) applies to interval(...) only, not {expression!r}."
        )
    if isinstance(value, ChoiceSweep):
        choices = list(value.list)
    elif isinstance(value, RangeSweep):
        choices = _range_values(value.start, value.stop, value.step)
    else:
        return value  # not a sweep: a fixed value
    bad = [c for c in choices if not (c is None or isinstance(c, str | int | float | bool))]
    if bad or not choices:
        raise ConfigError(
            f"search space: {key}: choices must be numbers, strings or booleans, got {expression!r}."
        )
    if len(set(map(repr, choices))) != len(choices):
        raise ConfigError(f"search space: {key}: {expression!r} lists a value twice.")
    return CategoricalDistribution(choices)


def _interval(key: str, expression: str, low, high, log: bool) -> BaseDistribution:
    if not low < high:
        raise ConfigError(f"search space: {key}: {expression!r} needs low < high.")
    if log and low <= 0:
        raise ConfigError(f"search space: {key}: {expression!r}: a log interval needs a positive low end.")
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def _range_values(start, stop, step) -> list:
    if step == 0 or (stop - start) / step > GRID_LIMIT:
        raise ConfigError(f"range({start}, {stop}, {step}) is empty or too long.")
    values, x = [], start
    while (step > 0 and x < stop) or (step < 0 and x > stop):
        values.append(x)
        x = start + step * len(values)  # no accumulated float error
    return values


def parse_space(entries: Mapping[str, Any] | None) -> SearchSpace:
    """The whole `search_space:` mapping (keys are config keys or config groups, e.g. `loss`)."""
    params: dict[str, BaseDistribution] = {}
    fixed: dict[str, Any] = {}
    for key, expression in (entries or {}).items():
        key = str(key)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-/]*", key):
            raise ConfigError(f"search space: {key!r} is not a config key (like optimizer.lr or loss).")
        parsed = parse_expression(key, expression)
        if isinstance(parsed, BaseDistribution):
            params[key] = parsed
        else:
            fixed[key] = parsed
    return SearchSpace(params, fixed)


def format_value(value: Any) -> str:
    """A value as Hydra override syntax, so `key=<this>` reproduces exactly that value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else f"{value:+}")
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in ("true", "false", "null", "nan", "inf"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def override(key: str, value: Any) -> str:
    return f"{key}={format_value(value)}"


def describe(dist: BaseDistribution) -> str:
    """The distribution back in the sweep syntax (for logs, MLflow params and the report)."""
    if isinstance(dist, CategoricalDistribution):
        return f"choice({', '.join(format_value(c) for c in dist.choices)})"
    if isinstance(dist, IntDistribution):
        inner = f"int(interval({dist.low}, {dist.high}))"
    elif isinstance(dist, FloatDistribution):
        inner = f"interval({dist.low!r}, {dist.high!r})"
    else:  # pragma: no cover - only the three kinds above are ever built
        return repr(dist)
    return f"tag(log, {inner})" if getattr(dist, "log", False) else inner


def suggest(trial, key: str, dist: BaseDistribution) -> Any:
    """The trial's value for one key, through the public suggest_* API (works for enqueued trials)."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"unsupported distribution {dist!r}")  # pragma: no cover


def grid(space: SearchSpace) -> dict[str, list]:
    """Values per key for Optuna's GridSampler: choices, or every integer of an int interval."""
    values: dict[str, list] = {}
    for key, dist in space.params.items():
        if isinstance(dist, CategoricalDistribution):
            values[key] = list(dist.choices)
        elif (
            isinstance(dist, IntDistribution) and not dist.log and (dist.high - dist.low) // dist.step < 1000
        ):
            values[key] = list(range(dist.low, dist.high + 1, dist.step))
        else:
            raise ConfigError(
                f"sampler: grid needs a finite set of values, but {key} is {describe(dist)}. Fix: use "
                f"choice(...) for {key}, or another sampler (tpe, random)."
            )
    size = math.prod(len(v) for v in values.values())
    if size > GRID_LIMIT:
        raise ConfigError(f"sampler: grid has {size} points (more than {GRID_LIMIT}); use fewer values.")
    return values
