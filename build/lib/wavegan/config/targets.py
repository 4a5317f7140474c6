"""`_target_` instantiation limited to an allow-list: a config (or a study file that sets training keys)
is data, so it may name a Keras optimizer but never `os.system`. The check runs before anything is
imported."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from wavegan.errors import ConfigError


def _targets(node: Any, path: str) -> list[tuple[str, str]]:
    """Every (`key`, `_target_` value) inside a config node, nested ones included."""
    found: list[tuple[str, str]] = []
    if isinstance(node, DictConfig | dict):
        for key, value in node.items():
            if key == "_target_":
                found.append((f"{path}._target_", str(value)))
            else:
                found += _targets(value, f"{path}.{key}")
    elif isinstance(node, ListConfig | list):
        for i, value in enumerate(node):
            found += _targets(value, f"{path}[{i}]")
    return found


def check_targets(node: Any, path: str, allowed: tuple[str, ...]) -> None:
    """Raise ConfigError when a `_target_` under `node` is not in `allowed` (exact names, or a module
    prefix ending in '.')."""
    for key, target in _targets(node, path):
        if not any(target == a or (a.endswith(".") and target.startswith(a)) for a in allowed):
            raise ConfigError(
                f"{key}={target} is not allowed: only {', '.join(allowed)} can be instantiated from a "
                "config. Fix: use one of those."
            )


def instantiate_allowed(node: Any, path: str, allowed: tuple[str, ...], **kwargs: Any) -> Any:
    """hydra.utils.instantiate(node, **kwargs) after `check_targets`."""
    from hydra.utils import instantiate

    check_targets(node, path, allowed)
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    return instantiate(node, **kwargs)
