"""Checks on a composed config that Hydra's schema-less YAML cannot make: each failure names the key
and the fix, and all of them run before any data is ingested or any step is trained."""

from __future__ import annotations

from omegaconf import DictConfig

from wavegan.errors import ConfigError

# Which representation each model trains on (a model config brings it; an override must agree).
MODEL_REPRESENTATIONS = {
    "wavegan": ("waveform",),
    "dcgan": ("spectrogram", "specgan"),
    "audiosynth": ("spectrogram", "specgan"),
}


def _positive(value, key: str, integer: bool = False) -> None:
    if value is None or (integer and int(value) != value) or float(value) <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{key}={value} must be {kind}. Fix: pass {key}=<{kind}>.")


def validate_training_config(cfg: DictConfig) -> None:
    opt = cfg.optimizer
    for key in ("lr", "g_lr", "d_lr"):
        if key == "lr" or opt.get(key) is not None:
            _positive(opt.get(key), f"optimizer.{key}")
    for key in ("beta1", "beta2"):
        if key in opt and not 0.0 <= float(opt[key]) < 1.0:
            raise ConfigError(f"optimizer.{key}={opt[key]} must be in [0, 1). Fix: e.g. optimizer.{key}=0.5.")
    for key in (
        "max_steps",
        "batch_size",
        "n_critic",
        "log_every",
        "preview_every",
        "checkpoint_every",
        "num_previews",
    ):
        _positive(cfg.trainer[key], f"trainer.{key}", integer=True)
    _positive(cfg.model.dim, "model.dim", integer=True)
    allowed = MODEL_REPRESENTATIONS.get(cfg.model.name)
    if allowed and cfg.preprocessing.name not in allowed:
        raise ConfigError(
            f"model={cfg.model.name} trains on {' or '.join(allowed)}, "
            f"not preprocessing={cfg.preprocessing.name}. "
            f"Fix: drop the preprocessing override or pass preprocessing={allowed[0]}."
        )
