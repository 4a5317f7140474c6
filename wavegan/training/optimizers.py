"""Optimizers for G and D from the `optimizer` config group (conf/optimizer/*.yaml)."""

from __future__ import annotations

import keras
from omegaconf import DictConfig

from wavegan.errors import ConfigError


def learning_rates(cfg: DictConfig) -> tuple[float, float]:
    """(generator, discriminator) learning rates: `g_lr` / `d_lr` when set, else `lr`."""
    g = cfg.g_lr if cfg.get("g_lr") is not None else cfg.lr
    d = cfg.d_lr if cfg.get("d_lr") is not None else cfg.lr
    return float(g), float(d)


def build_optimizer(cfg: DictConfig, lr: float) -> keras.optimizers.Optimizer:
    if cfg.name == "adam":
        return keras.optimizers.Adam(
            learning_rate=lr, beta_1=float(cfg.beta1), beta_2=float(cfg.beta2), epsilon=float(cfg.epsilon)
        )
    if cfg.name == "rmsprop":
        return keras.optimizers.RMSprop(
            learning_rate=lr, rho=float(cfg.rho), momentum=float(cfg.momentum), epsilon=float(cfg.epsilon)
        )
    raise ConfigError(
        f"optimizer.name={cfg.name} is not supported. Fix: optimizer=adam or optimizer=rmsprop."
    )


def build_optimizers(cfg: DictConfig, mixed_precision: bool = False):
    """(G optimizer, D optimizer); under mixed precision each is wrapped for dynamic loss scaling."""
    g_lr, d_lr = learning_rates(cfg)
    pair = build_optimizer(cfg, g_lr), build_optimizer(cfg, d_lr)
    if mixed_precision:
        pair = tuple(keras.optimizers.LossScaleOptimizer(opt) for opt in pair)
    return pair
