"""Optimizers for G and D from the `optimizer` config group (conf/optimizer/*.yaml).

The Keras optimizer is `optimizer.keras`, instantiated through its `_target_` with `learning_rate` set per
network (TTUR: `optimizer.g_lr` / `optimizer.d_lr`); only Keras optimizers may be named there. With
`optimizer.lr_decay_start` set, both rates stay constant for that fraction of the run and then fall
linearly to 0 at `trainer.max_steps` (LinearDecay).
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


@keras.saving.register_keras_serializable("wavegan")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate` for the first `start` fraction of `total_steps` optimizer updates, then a straight
    line to 0 at `total_steps` (the decay of pix2pix and CycleGAN: the end of a run settles on one
    generator instead of oscillating around it at full step size). The optimizer's update count is in
    its checkpoint, so a resumed run continues the line where it stopped."""

    def __init__(self, learning_rate: float, total_steps: int, start: float) -> None:
        self.learning_rate, self.total_steps = float(learning_rate), int(total_steps)
        self.start = float(start)

    def __call__(self, step):
        first = self.start * self.total_steps
        length = max(self.total_steps - first, 1.0)
        done = keras.ops.clip((keras.ops.cast(step, "float32") - first) / length, 0.0, 1.0)
        return self.learning_rate * (1.0 - done)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps, "start": self.start}


def build_optimizer(cfg: DictConfig, lr: float, total_steps: int | None = None) -> keras.optimizers.Optimizer:
    """One network's optimizer; `total_steps` (its updates over the run) enables optimizer.lr_decay_start."""
    start = cfg.get("lr_decay_start")
    rate = LinearDecay(lr, total_steps, start) if start is not None and total_steps else lr
    return instantiate_allowed(cfg.keras, "optimizer.keras", ALLOWED, learning_rate=rate)


def build_optimizers(cfg: DictConfig, mixed_precision: bool = False, max_steps: int = 0, n_critic: int = 1):
    """(G optimizer, D optimizer); under mixed precision each is wrapped for dynamic loss scaling. G makes
    `max_steps` updates and D `max_steps * n_critic`, which is what a learning-rate decay runs over."""
    g_lr, d_lr = learning_rates(cfg)
    pair = build_optimizer(cfg, g_lr, max_steps), build_optimizer(cfg, d_lr, max_steps * n_critic)
    if mixed_precision:
        pair = tuple(keras.optimizers.LossScaleOptimizer(opt) for opt in pair)
    return pair
