"""Optimizers for G and D from the `optimizer` config group (conf/optimizer/*.yaml).

The Keras optimizer is `optimizer.keras`, instantiated through its `_target_` with `learning_rate` set per
network (TTUR: `optimizer.g_lr` / `optimizer.d_lr`); only Keras optimizers may be named there.
"""

from __future__ import annotations

import keras
from omegaconf import DictConfig

from wavegan.config.targets import instantiate_allowed

ALLOWED = ("keras.optimizers.",)


def learning_rates(cfg: DictConfig) -> tuple[float, float]:
    """(generator, discriminator) learning rates: `g_lr` / `d_lr` when set, else `lr`."""
    g = cfg.g_lr if cfg.get("g_lr") is not None else cfg.lr
    d = cfg.d_lr if cfg.get("d_lr") is not None else cfg.lr
    return float(g), float(d)


def build_optimizer(cfg: DictConfig, lr: float) -> keras.optimizers.Optimizer:
    return instantiate_allowed(cfg.keras, "optimizer.keras", ALLOWED, learning_rate=lr)


def build_optimizers(cfg: DictConfig, mixed_precision: bool = False):
    """(G optimizer, D optimizer); under mixed precision each is wrapped for dynamic loss scaling."""
    g_lr, d_lr = learning_rates(cfg)
    pair = build_optimizer(cfg, g_lr), build_optimizer(cfg, d_lr)
    if mixed_precision:
        pair = tuple(keras.optimizers.LossScaleOptimizer(opt) for opt in pair)
    return pair
