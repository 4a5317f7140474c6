"""Secrets never leave the machine: what counts as one, and the config as MLflow may see it.

A value is secret when
* its config key is marked secret (`SECRET_KEYS`, e.g. `data.token`),
* the config reads it from an environment variable whose name contains TOKEN, SECRET, PASSWORD, PASSWD
  or KEY (`${oc.env:ACTIVELOOP_TOKEN}`), or
* it is the `user:password@` part of a URL, or a `password=`/`token=` query value.
Besides, the value of every such environment variable is masked wherever it turns up in a string (a
token pasted into an override or a URL by hand).

`masked_config(cfg)` is what MLflow gets (params and the `config.yaml` artifact). What resume needs
lives in the checkpoint folder, never in MLflow. Hydra's record of a job (`.hydra/config.yaml`,
`hydra.yaml`, `overrides.yaml`) is masked too (`mask_hydra_record`): it keeps `${oc.env:...}`
references, which say where a secret is, not what it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = [
    "MASK",
    "SECRET_KEYS",
    "mask_override",
    "mask_text",
    "mask_url",
    "mask_hydra_record",
    "masked_config",
    "secret_env_values",
]

MASK = "***"
SECRET_KEYS = frozenset({"data.token"})  # config keys whose value is a credential, whatever its source
SECRET_NAME = re.compile(r"(?i)TOKEN|SECRET|PASSWORD|PASSWD|KEY")
_ENV_REF = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)")
_MIN_SECRET_LEN = 4  # shorter environment values ("1", "on") are not masked inside other strings
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")
_SECRET_QUERY = re.compile(r"(?i)((?:password|passwd|pwd|token|secret)=)(?!\$\{)[^&\s]+")  # not ${oc.env:...}


def mask_url(url: str | None) -> str:
    """The URL with `user:password@` (and password= query values) replaced by *** for display."""
    if url is None:
        return ""
    return _SECRET_QUERY.sub(rf"\1{MASK}", _USERINFO.sub(rf"\g<scheme>{MASK}@", str(url)))


def mask_text(text: str, url: str | None = None) -> str:
    """Any text (an error message, a log line) with URL credentials and secret env values masked."""
    text = str(text)
    if url:
        text = text.replace(str(url), mask_url(url))
        match = _USERINFO.search(str(url))
        if match:
            for secret in sorted(set(match.group("userinfo").split(":")), key=len, reverse=True):
                if len(secret) >= 3:
                    text = text.replace(secret, MASK)
    for secret in secret_env_values():
        text = text.replace(secret, MASK)
    return mask_url(text)


def mask_override(override: str) -> str:
    """A command-line override (`key=value`) as it may be shown: the value of a secret key masked (a
    reference `${oc.env:NAME}` says where the secret is, not what it is, and stays), then mask_text."""
    key, eq, value = override.partition("=")
    if eq and key.lstrip("+~") in SECRET_KEYS and not _ENV_REF.match(value):
        return f"{key}={MASK}"
    return mask_text(override)


# `data.token=<literal>` in an override list or Hydra's `override_dirname`: the literal is masked.
_SECRET_KEY_NAMES = "|".join(re.escape(k) for k in sorted(SECRET_KEYS))
_SECRET_ASSIGNMENT = re.compile(
    rf"((?:^|[\s,'\"\[])[+~]*(?:{_SECRET_KEY_NAMES})=)(?![\"']?\$\{{)('[^']*'|\"[^\"]*\"|[^\s,'\"\]]+)", re.M
)


def mask_hydra_record(folder: Path) -> None:
    """Rewrite the YAML files of Hydra's record of a job (its `.hydra` folder) with every secret masked."""
    from omegaconf import OmegaConf

    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text()
        masked = mask_text(_SECRET_ASSIGNMENT.sub(rf"\1{MASK}", text))
        if path.name == "config.yaml":
            tree = OmegaConf.to_container(OmegaConf.create(masked), resolve=False)
            for key in SECRET_KEYS:
                *parents, leaf = key.split(".")
                node = tree
                for part in parents:
                    node = node.get(part) if isinstance(node, dict) else None
                value = node.get(leaf) if isinstance(node, dict) else None
                if isinstance(value, str) and not value.startswith("${"):
                    node[leaf] = MASK
                    masked = OmegaConf.to_yaml(OmegaConf.create(tree))
        if masked != text:
            partial = path.with_name(f".{path.name}.masking")
            partial.write_text(masked)
            os.replace(partial, path)


def secret_env_values() -> list[str]:
    """Values of environment variables named like a secret, longest first (so none masks part of another)."""
    values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def masked_config(cfg: DictConfig | Mapping) -> dict[str, Any]:
    """The resolved config as a plain dict with every secret value replaced by ***."""
    if isinstance(cfg, DictConfig):
        resolved = OmegaConf.to_container(cfg, resolve=True)
        raw = OmegaConf.to_container(cfg, resolve=False)
    else:
        resolved = raw = dict(cfg)
    return _mask(resolved, raw, "", secret_env_values())


def _mask(resolved: Any, raw: Any, path: str, env_secrets: list[str]) -> Any:
    if isinstance(resolved, Mapping):
        raw = raw if isinstance(raw, Mapping) else {}
        return {k: _mask(v, raw.get(k), _join(path, k), env_secrets) for k, v in resolved.items()}
    if isinstance(resolved, list):
        raw = raw if isinstance(raw, list) and len(raw) == len(resolved) else [None] * len(resolved)
        pairs = zip(resolved, raw, strict=True)
        return [_mask(v, r, f"{path}[{i}]", env_secrets) for i, (v, r) in enumerate(pairs)]
    if resolved is None:
        return None
    if path in SECRET_KEYS or (isinstance(raw, str) and _reads_secret_env(raw)):
        return MASK
    if isinstance(resolved, str):
        for secret in env_secrets:
            resolved = resolved.replace(secret, MASK)
        return mask_url(resolved)
    return resolved


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _reads_secret_env(raw: str) -> bool:
    return any(SECRET_NAME.search(name) for name in _ENV_REF.findall(raw))
